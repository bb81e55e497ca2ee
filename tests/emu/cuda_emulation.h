// A CPU emulation of the CUDA execution model, enough to run the kernels of a *_kernels.cuh header with g++
// and compare them with their CPU twins where no GPU is at hand: every CUDA thread of a block is a
// std::thread, blocks run one after another, __syncthreads is a barrier of the block's threads and a warp
// shuffle a barrier of its warp's 32 threads around an exchange slot per thread. Dynamic shared memory is
// sized exactly as the launcher asks and poisoned (all bits set: NaN in float32 and float64), so a read of
// memory no thread wrote shows as NaN and an overrun as an AddressSanitizer report.
//
// Covered: threadIdx / blockIdx / blockDim / gridDim in x, __syncthreads, __syncwarp, __shfl_xor_sync with a
// full mask (any other mask aborts: the kernels here use full warps only), NSAMP_DYNAMIC_SHARED. Not covered:
// atomics, static __shared__ arrays, CUB, cooperative groups, more than one grid dimension. Include this
// before the kernels' header, in a test translation unit of its own (it defines __global__ and friends).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace nsamp::emu {

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};

// A reusable barrier for a fixed number of threads (C++17 has no std::barrier).
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mu_);
    const unsigned long gen = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_ != gen; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_, arrived_ = 0;
  unsigned long generation_ = 0;
};

struct Block {
  unsigned char* shared = nullptr;
  Barrier* block_barrier = nullptr;
  std::vector<std::unique_ptr<Barrier>> warp_barriers;
  std::vector<double> exchange;  // one slot per thread, for the shuffles
};

inline thread_local Dim3 tls_thread, tls_block;
inline Dim3 g_block_dim, g_grid_dim;
inline Block* g_current = nullptr;

}  // namespace nsamp::emu

// The CUDA built-ins the kernels read.
#define threadIdx (::nsamp::emu::tls_thread)
#define blockIdx (::nsamp::emu::tls_block)
#define blockDim (::nsamp::emu::g_block_dim)
#define gridDim (::nsamp::emu::g_grid_dim)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define NSAMP_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::nsamp::emu::g_current->shared)

inline void __syncthreads() { nsamp::emu::g_current->block_barrier->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) {
  nsamp::emu::g_current->warp_barriers[threadIdx.x >> 5]->arrive_and_wait();
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  if (mask != 0xffffffffu) std::abort();  // partial-warp shuffles are not emulated
  nsamp::emu::Block& b = *nsamp::emu::g_current;
  const unsigned t = threadIdx.x;
  b.exchange[t] = double(v);  // exact for float, double and int32
  b.warp_barriers[t >> 5]->arrive_and_wait();
  const double r = b.exchange[(t & ~31u) | ((t & 31u) ^ unsigned(lane_mask))];
  b.warp_barriers[t >> 5]->arrive_and_wait();  // nobody overwrites a slot before every lane read it
  return T(r);
}

namespace nsamp::emu {

// Runs kernel() as <<<grid, threads, shared_bytes>>>: `threads` must be whole warps.
template <class Kernel>
void launch(int grid, int threads, std::size_t shared_bytes, Kernel kernel) {
  if (threads <= 0 || threads % 32 != 0 || threads > 1024) std::abort();
  g_grid_dim = Dim3{unsigned(grid), 1, 1};
  g_block_dim = Dim3{unsigned(threads), 1, 1};
  for (int b = 0; b < grid; ++b) {
    std::vector<unsigned char> shared(shared_bytes, 0xFF);
    Barrier block_barrier(threads);
    Block blk;
    blk.shared = shared.empty() ? nullptr : shared.data();
    blk.block_barrier = &block_barrier;
    for (int w = 0; w < threads / 32; ++w) blk.warp_barriers.push_back(std::make_unique<Barrier>(32));
    blk.exchange.assign(std::size_t(threads), 0.0);
    g_current = &blk;
    std::vector<std::thread> pool;
    pool.reserve(std::size_t(threads));
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t, b] {
        tls_thread = Dim3{unsigned(t), 0, 0};
        tls_block = Dim3{unsigned(b), 0, 0};
        kernel();
      });
    for (std::thread& th : pool) th.join();
    g_current = nullptr;
  }
}

}  // namespace nsamp::emu
