// Context: a device, its CUDA stream and cuBLAS handle, its caching allocators and its Philox RNG state.
// Every op takes one explicitly; there is no hidden global state, so an embedding code can run several
// independent contexts side by side (each with its own stream, cache and random stream).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "nsamp/core/allocator.h"
#include "nsamp/core/philox.h"
#include "nsamp/core/types.h"

struct CUstream_st;
struct cublasContext;

namespace nsamp {

using StreamHandle = CUstream_st*;  // == cudaStream_t
using BlasHandle = cublasContext*;  // == cublasHandle_t

struct ContextOptions {
  Device device = Device::cpu();
  std::uint64_t seed = 0;
  // An embedding code may hand in its own stream (not owned, not destroyed); nullptr creates one.
  StreamHandle stream = nullptr;
  // fp32 GEMMs on tensor cores (TF32, ~1e-3 relative error). Off by default: exact fp32.
  bool allow_tf32 = false;
};

class Context {
 public:
  explicit Context(Device device = Device::cpu(), std::uint64_t seed = 0);
  explicit Context(const ContextOptions& options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Device device() const { return device_; }
  bool is_cuda() const { return device_.is_cuda(); }

  // The allocator for `device` (this context's device or the host); throws for any other device.
  const std::shared_ptr<Allocator>& allocator_for(Device device) const;
  Allocator& allocator() const { return *device_alloc_; }
  Allocator& host_allocator() const { return *host_alloc_; }

  // CUDA handles; throw on a CPU context.
  StreamHandle stream() const;
  BlasHandle cublas() const;
  bool allow_tf32() const { return allow_tf32_; }

  // Philox state: a fill that needs n counters takes [offset, offset + n) and advances the offset, so the
  // same seed gives the same numbers on both backends in the same sequence of calls.
  std::uint64_t seed() const { return seed_; }
  std::uint64_t rng_offset() const { return rng_offset_; }
  void set_rng_state(std::uint64_t seed, std::uint64_t offset) {
    seed_ = seed;
    rng_offset_ = offset;
  }
  std::uint64_t reserve_rng(std::uint64_t counters) {
    const std::uint64_t base = rng_offset_;
    rng_offset_ += counters;
    return base;
  }
  // The counters of one draw: reserve_rng's while no device counter is attached. While one is (a step that
  // may be captured as a CUDA graph, RngCounter::Scope), the draws take consecutive offsets relative to the
  // counter's value when the kernels run, and the host offset stays put: the step's caller reserves the
  // step's counters in one piece and sets the counter to their start, so each replay draws fresh numbers and
  // the same ones an uncaptured run draws.
  philox::Offset draw_rng(std::uint64_t counters) {
    if (!rng_counter_) return philox::Offset(reserve_rng(counters));
    const philox::Offset o(rng_counter_next_, rng_counter_);
    rng_counter_next_ += counters;
    return o;
  }
  // Attaches a device counter (null detaches); returns the counters drawn relative to the previous one.
  std::uint64_t attach_rng_counter(const std::uint64_t* counter) {
    const std::uint64_t used = rng_counter_next_;
    rng_counter_ = counter;
    rng_counter_next_ = 0;
    return used;
  }
  const std::uint64_t* rng_counter() const { return rng_counter_; }
  std::uint64_t rng_counter_drawn() const { return rng_counter_next_; }

  // Host transfers of this context's tensors (from_vector and to_vector on its device; on a CPU context,
  // the same calls on host tensors). A step that makes none may be captured as a CUDA graph: StepGraph
  // counts them around every CPU replay, so the CPU tests catch a step that would synchronise on the GPU.
  std::uint64_t host_transfers() const { return host_transfers_.load(std::memory_order_relaxed); }
  void count_host_transfer() { host_transfers_.fetch_add(1, std::memory_order_relaxed); }

  // Waits for all work queued on this context (a no-op on the CPU, where ops complete on return).
  void synchronize() const;
  // Makes this context's GPU the calling thread's current device (needed only with several GPUs).
  void make_current() const;

  // Constant buffers (a target's mixture means, a network's fixed frequencies) uploaded once per context and
  // freed with it. `owner` is a process-unique id (new_constant_owner()), `tag` tells an owner's buffers
  // apart; `make` runs on the first request only.
  const class Tensor& constant(std::uint64_t owner, int tag, const std::function<class Tensor()>& make);
  static std::uint64_t new_constant_owner();

 private:
  Device device_;
  std::uint64_t seed_ = 0;
  std::uint64_t rng_offset_ = 0;
  const std::uint64_t* rng_counter_ = nullptr;
  std::uint64_t rng_counter_next_ = 0;
  std::atomic<std::uint64_t> host_transfers_{0};
  bool allow_tf32_ = false;
  bool owns_stream_ = false;
  StreamHandle stream_ = nullptr;
  BlasHandle cublas_ = nullptr;
  // cuBLAS's workspace, ours so that it never allocates during a graph capture (32 MiB: its guide's size for
  // Hopper).
  static constexpr std::size_t kCublasWorkspaceBytes = std::size_t(32) << 20;
  void* cublas_workspace_ = nullptr;
  std::shared_ptr<Allocator> host_alloc_;
  std::shared_ptr<Allocator> device_alloc_;
  std::mutex constants_mu_;
  std::map<std::pair<std::uint64_t, int>, std::shared_ptr<class Tensor>> constants_;
};

}  // namespace nsamp
