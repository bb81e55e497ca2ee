#include "nsamp/core/step_graph.h"

#include "cuda_runtime_internal.h"
#include "nsamp/core/config.h"
#include "nsamp/core/error.h"
#include "nsamp/core/nvtx.h"

namespace nsamp {

StepGraph::~StepGraph() {
  try {
    reset();
  } catch (...) {  // a destructor reports nothing; a fault in the graph's work surfaced at its replay
  }
}

void StepGraph::reset() {
  if (ctx_ && (exec_ || pool_)) {
    if constexpr (kCudaBuilt) {
      // The pool's blocks may go to others only once the graph's last replay is done with them.
      ctx_->synchronize();
      detail::cuda_graph_destroy(exec_, graph_);
    }
    ctx_->allocator().release_pool(pool_);
  }
  exec_ = nullptr;
  graph_ = nullptr;
  pool_ = 0;
  body_ = nullptr;
  replays_ = 0;
}

void StepGraph::capture(Context& ctx, std::function<void()> body) {
  NSAMP_CHECK(body, "StepGraph::capture: empty body");
  reset();
  ctx_ = &ctx;
  if (ctx.is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("graph/capture");
      ctx.make_current();
      pool_ = ctx.allocator().begin_pool();
      const std::uint64_t transfers = ctx.host_transfers();
      try {
        detail::cuda_capture_begin(ctx.stream());
        try {
          body();
        } catch (...) {
          detail::cuda_capture_end(ctx.stream(), false, nullptr);
          throw;
        }
        if (ctx.host_transfers() != transfers) {
          detail::cuda_capture_end(ctx.stream(), false, nullptr);
          NSAMP_FAIL("StepGraph: the step made ", ctx.host_transfers() - transfers,
                     " host transfer(s) of device tensors; it cannot be captured as a CUDA graph");
        }
        exec_ = detail::cuda_capture_end(ctx.stream(), true, &graph_);
      } catch (const std::exception& e) {
        ctx.allocator().end_pool();
        ctx.allocator().release_pool(pool_);  // nothing of the failed capture ever ran
        pool_ = 0;
        NSAMP_FAIL("StepGraph: capturing the step as a CUDA graph failed: ", e.what(),
                   " (set cuda_graph=false to run it uncaptured)");
      }
      ctx.allocator().end_pool();
    }
  }
  body_ = std::move(body);
}

void StepGraph::replay() {
  NSAMP_CHECK(captured(), "StepGraph::replay: nothing captured");
  ++replays_;
  if (exec_) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("graph/replay");
      detail::cuda_graph_launch(exec_, ctx_->stream());
    }
    return;
  }
  const std::uint64_t transfers = ctx_->host_transfers();
  body_();
  NSAMP_CHECK(ctx_->host_transfers() == transfers, "StepGraph: the step made ",
              ctx_->host_transfers() - transfers,
              " host transfer(s) of the context's tensors (to_vector/from_vector); on CUDA it could not be "
              "captured as a graph");
}

}  // namespace nsamp
