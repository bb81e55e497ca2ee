#include "nsamp/core/step_graph.h"

#include <exception>

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
  std::exception_ptr fault;
  if (ctx_ && (exec_ || pool_)) {
    if constexpr (kCudaBuilt) {
      // The pool's blocks may go to others only once the graph's last replay is done with them.
      try {
        ctx_->synchronize();
      } catch (...) {  // a sticky fault: the state is dropped all the same, then reported
        fault = std::current_exception();
      }
      detail::cuda_graph_destroy(exec_, graph_);
    }
    ctx_->allocator().release_pool(pool_);
  }
  exec_ = nullptr;
  graph_ = nullptr;
  pool_ = 0;
  body_ = nullptr;
  replays_ = 0;
  if (fault) std::rethrow_exception(fault);
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
      const std::uint64_t transfers = ctx.host_transfers(), rng = ctx.rng_offset();
      try {
        detail::cuda_capture_begin(ctx.stream());
        try {
          body();
        } catch (...) {
          detail::cuda_capture_end(ctx.stream(), false, nullptr);
          throw;
        }
        if (ctx.host_transfers() != transfers || ctx.rng_offset() != rng) {
          detail::cuda_capture_end(ctx.stream(), false, nullptr);
          NSAMP_FAIL("StepGraph: the step made ", ctx.host_transfers() - transfers,
                     " host transfer(s) of device tensors and reserved ", ctx.rng_offset() - rng,
                     " Philox counters on the host; it cannot be captured as a CUDA graph");
        }
        exec_ = detail::cuda_capture_end(ctx.stream(), true, &graph_);
      } catch (...) {
        ctx.allocator().end_pool();
        ctx.allocator().release_pool(pool_);  // nothing of the failed capture ever ran
        pool_ = 0;
        try {
          throw;
        } catch (const std::exception& e) {
          NSAMP_FAIL("StepGraph: capturing the step as a CUDA graph failed: ", e.what(),
                     " (set cuda_graph=false to run it uncaptured)");
        }
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
  const std::uint64_t transfers = ctx_->host_transfers(), rng = ctx_->rng_offset();
  body_();
  NSAMP_CHECK(ctx_->host_transfers() == transfers, "StepGraph: the step made ",
              ctx_->host_transfers() - transfers,
              " host transfer(s) of the context's tensors (to_vector/from_vector); on CUDA it could not be "
              "captured as a graph");
  NSAMP_CHECK(ctx_->rng_offset() == rng, "StepGraph: the step reserved ", ctx_->rng_offset() - rng,
              " Philox counters from the context on the host; a CUDA graph would replay the same numbers "
              "every time (take them from an RngCounter)");
}

DrawingStep::DrawingStep(Context& ctx, std::function<void()> body, bool graph)
    : ctx_(ctx), body_(std::move(body)), use_graph_(graph), rng_(ctx) {}

void DrawingStep::counted() {
  RngCounter::Scope scope(ctx_, rng_);
  body_();
  NSAMP_CHECK(runs_ == 0 || scope.used() == stride_, "DrawingStep: a run drew ", scope.used(),
              " Philox counters, the first ", stride_, " (a step must draw the same every run)");
  stride_ = scope.used();
}

void DrawingStep::run() {
  if (runs_ == 0) {
    rng_.set(ctx_.rng_offset(), ctx_);
    counted();
    ctx_.reserve_rng(stride_);
  } else {
    rng_.set(ctx_.reserve_rng(stride_), ctx_);
    if (use_graph_) {
      if (!graph_.captured()) graph_.capture(ctx_, [this] { counted(); });
      graph_.replay();
    } else {
      counted();
    }
  }
  ++runs_;
}

}  // namespace nsamp
