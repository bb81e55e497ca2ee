// RngCounter: a 64-bit Philox counter offset held in the context's own memory (device memory on CUDA), so
// that kernels read the per-step part of their offsets instead of taking it as an argument. A training step
// captured as a CUDA graph replays with its arguments frozen; with its offsets taken as counter.at(k) and the
// counter advanced by the step itself, every replay still draws fresh numbers, the same ones an uncaptured
// run draws at that step.
#pragma once

#include <cstdint>

#include "nsamp/core/philox.h"
#include "nsamp/core/tensor.h"

namespace nsamp {

class RngCounter {
 public:
  explicit RngCounter(Context& ctx, std::uint64_t value = 0);

  // The offset `offset` + (the counter's value when the kernel runs).
  philox::Offset at(std::uint64_t offset = 0) const { return philox::Offset(offset, ptr()); }
  const std::uint64_t* ptr() const { return static_cast<const std::uint64_t*>(buf_.raw_data()); }

  // Stream-ordered updates: work queued after them sees the new value. Both launch one tiny kernel on CUDA
  // (no host synchronisation), so they may be captured into a graph.
  void set(std::uint64_t value, Context& ctx);
  void advance(std::uint64_t n, Context& ctx);
  // Reads the value back (synchronises the stream).
  std::uint64_t value(Context& ctx) const;

  // While alive, the context's draws (Context::draw_rng: fill_normal, fill_uniform, MCMC steps) take offsets
  // relative to this counter; used() counts them. Scopes do not nest.
  class Scope {
   public:
    Scope(Context& ctx, const RngCounter& counter);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    std::uint64_t used() const;

   private:
    Context& ctx_;
  };

 private:
  Tensor buf_;  // int32[2]: the 8 bytes of one uint64
};

// The offset's value for a CPU loop. An offset relative to a counter in device memory (a CUDA context's
// RngCounter) cannot be read there: a host tensor filled on a CUDA context inside a counter scope is refused.
inline std::uint64_t host_offset(const philox::Offset& offset, const Context& ctx, const char* op) {
  NSAMP_CHECK(offset.base == nullptr || ctx.device().is_cpu(), op,
              ": a host tensor cannot draw at an offset relative to a device counter (inside an RngCounter "
              "scope or a captured step on ",
              ctx.device().str(), "); use a tensor on the context's device");
  return offset.value();
}

namespace detail {
void counter_update_cuda(std::uint64_t* p, bool add, std::uint64_t v, Context& ctx);
}

}  // namespace nsamp
