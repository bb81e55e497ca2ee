// StepGraph: a unit of work (a training step, a sampling loop's step) recorded once and replayed. On CUDA it
// is a CUDA graph captured from the context's stream: one launch replaces the step's hundreds or thousands of
// kernel launches, which is what bounds small-batch steps. On the CPU a replay runs the recorded body again.
//
// What a body must obey, on either backend (the CPU replay checks the first rule, the gpu suite's
// graph-versus-eager tests the others):
//  - no host transfer of the context's tensors (to_vector, from_vector): the host cannot read or write
//    device memory in the middle of a graph;
//  - every value that changes from step to step (Philox offsets, Adam's step count and learning rate, the
//    loss) lives in device memory that the body reads, and advances itself: kernel arguments are frozen at
//    capture;
//  - the tensors it reads or writes that were made outside it (parameters, gradients, optimiser state,
//    output buffers) outlive the graph.
// Buffers allocated inside the body come from a capture pool of the context's allocator that nothing else
// uses while the graph lives (allocator.h), so replays find them where the capture left them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "nsamp/core/context.h"
#include "nsamp/core/rng_counter.h"

struct CUgraph_st;
struct CUgraphExec_st;

namespace nsamp {

class StepGraph {
 public:
  StepGraph() = default;
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Records `body` on `ctx`, replacing any earlier recording. On CUDA the body's host code runs once, its
  // kernels are captured but not executed (run the body eagerly once before, so that lazily made constants
  // and workspaces exist); on the CPU it is kept to run at each replay.
  void capture(Context& ctx, std::function<void()> body);
  // Runs the recorded work once, queued on the context's stream. CPU: throws if the body made a host
  // transfer.
  void replay();
  // Drops the recording (waits for its work first).
  void reset();

  bool captured() const { return static_cast<bool>(body_); }
  std::int64_t replays() const { return replays_; }

 private:
  Context* ctx_ = nullptr;
  std::function<void()> body_;
  CUgraph_st* graph_ = nullptr;
  CUgraphExec_st* exec_ = nullptr;
  std::uint64_t pool_ = 0;
  std::int64_t replays_ = 0;
};

// A step that draws from the context's Philox stream (Context::draw_rng: fills, MCMC steps) and runs many
// times: its first run is eager and counts the counters it draws; every later run reserves that many from the
// context, sets a device counter to their start, and replays the step's graph (captured on the second run)
// or, with `graph` false, runs the body again. Inside, the draws are relative to the counter
// (RngCounter::Scope), so every run draws fresh numbers, the ones the same calls made uncaptured in sequence
// would draw, and graph and eager runs agree. A body must draw the same number of counters every run (checked
// on every host run of it: eager runs, the capture, CPU replays).
class DrawingStep {
 public:
  DrawingStep(Context& ctx, std::function<void()> body, bool graph);
  void run();
  // The next run captures again (a size or constant baked into the recorded work changed).
  void recapture() { graph_.reset(); }
  std::int64_t runs() const { return runs_; }
  std::uint64_t counters() const { return stride_; }

 private:
  void counted();
  Context& ctx_;
  std::function<void()> body_;
  bool use_graph_;
  RngCounter rng_;
  StepGraph graph_;
  std::uint64_t stride_ = 0;
  std::int64_t runs_ = 0;
};

}  // namespace nsamp
