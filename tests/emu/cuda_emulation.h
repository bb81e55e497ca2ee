// A CPU emulation of the CUDA execution model, enough to run the kernels of a *_kernels.cuh header with g++
// and compare them with their CPU twins where no GPU is at hand: every CUDA thread of a block runs on a
// thread of its own (from a pool kept across launches), blocks run one after another in a shuffled order,
// __syncthreads is a barrier of the block's threads and a warp shuffle a barrier of its warp's 32 threads
// around an exchange slot per thread. Dynamic shared memory is sized exactly as the launcher asks and
// poisoned (all bits set: NaN in float32 and float64), so a read of memory no thread wrote shows as NaN and
// an overrun as an AddressSanitizer report.
//
// Covered: threadIdx / blockIdx / blockDim / gridDim in x and y (a warp is 32 consecutive linear thread
// indices, x fastest, as on the device), __syncthreads, __syncwarp, __shfl_xor_sync with a full mask (any
// other mask aborts: the kernels here use full warps only), NSAMP_DYNAMIC_SHARED, static __shared__
// variables (function statics: one instance that the block's threads share; blocks run one at a time; not
// poisoned), atomicAdd / atomicMin / atomicMax (one lock), __double_as_longlong, and cub::BlockReduce's
// Reduce and Sum (the aggregate is defined in thread 0 only, as CUB documents: the other threads get all
// bits set). Not covered: cooperative groups, other CUB algorithms, a z dimension. Include this before the
// kernels' header, in a test translation unit of its own (it defines __global__ and friends).
#pragma once

#include <math.h>  // the float overloads of exp, sqrt, ... in the global namespace, as device code has them

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#define NSAMP_CUDA_EMULATION 1

namespace nsamp::emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
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

// Threads kept across launches (creating a std::thread per CUDA thread per launch dominated the run time):
// run(count, job) runs job(0) .. job(count - 1) on `count` distinct threads at once, as a block's threads
// must be to meet at its barriers, and returns when all have finished. One host thread launches: like the
// launch state below, the pool is not for concurrent launches.
class WorkerPool {
 public:
  WorkerPool() = default;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  ~WorkerPool() {
    for (auto& w : workers_) {
      std::lock_guard<std::mutex> lock(w->mu);
      w->stop = true;
      w->cv.notify_one();
    }
    for (auto& w : workers_)
      if (w->thread.joinable()) w->thread.join();
  }
  template <class Job>
  void run(unsigned count, Job& job) {
    while (workers_.size() < count) {
      workers_.push_back(std::make_unique<Worker>());
      Worker* w = workers_.back().get();
      const unsigned id = unsigned(workers_.size() - 1);
      w->thread = std::thread([this, w, id] { work(*w, id); });
    }
    job_ = [&job](unsigned t) { job(t); };
    {
      std::lock_guard<std::mutex> lock(done_mu_);
      remaining_ = count;
    }
    for (unsigned i = 0; i < count; ++i) {  // only the threads the block needs are woken
      Worker& w = *workers_[i];
      std::lock_guard<std::mutex> lock(w.mu);
      w.go = true;
      w.cv.notify_one();
    }
    std::unique_lock<std::mutex> lock(done_mu_);
    done_.wait(lock, [&] { return remaining_ == 0; });
    job_ = nullptr;  // it refers to the caller's job, which ends with this call
  }

 private:
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    bool go = false, stop = false;
    std::thread thread;
  };
  void work(Worker& w, unsigned id) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(w.mu);
        w.cv.wait(lock, [&] { return w.go || w.stop; });
        if (w.stop) return;
        w.go = false;
      }
      job_(id);  // job_ is set before go and not changed until every worker has reported
      std::lock_guard<std::mutex> lock(done_mu_);
      if (--remaining_ == 0) done_.notify_one();
    }
  }

  std::vector<std::unique_ptr<Worker>> workers_;
  std::function<void(unsigned)> job_;
  std::mutex done_mu_;
  std::condition_variable done_;
  unsigned remaining_ = 0;
};

struct Block {
  unsigned char* shared = nullptr;
  Barrier* block_barrier = nullptr;
  std::vector<std::unique_ptr<Barrier>> warp_barriers;
  std::vector<double> exchange;             // one slot per thread, for the shuffles
  std::vector<unsigned char> reduce_slots;  // cub::BlockReduce's per-thread inputs
};

inline thread_local Dim3 tls_thread, tls_block;
inline thread_local unsigned tls_linear = 0;  // x + y blockDim.x
inline Dim3 g_block_dim, g_grid_dim;
inline Block* g_current = nullptr;
inline std::mutex g_atomic_mu;
inline WorkerPool g_pool;

}  // namespace nsamp::emu

// The CUDA built-ins the kernels read.
#define threadIdx (::nsamp::emu::tls_thread)
#define blockIdx (::nsamp::emu::tls_block)
#define blockDim (::nsamp::emu::g_block_dim)
#define gridDim (::nsamp::emu::g_grid_dim)
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline
#define NSAMP_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::nsamp::emu::g_current->shared)

inline void __syncthreads() { nsamp::emu::g_current->block_barrier->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) {
  nsamp::emu::g_current->warp_barriers[nsamp::emu::tls_linear >> 5]->arrive_and_wait();
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  if (mask != 0xffffffffu) std::abort();  // partial-mask shuffles are not emulated
  nsamp::emu::Block& b = *nsamp::emu::g_current;
  const unsigned t = nsamp::emu::tls_linear;
  // A full mask in a partial warp names lanes that do not exist: undefined on the device.
  if ((t | 31u) >= nsamp::emu::g_block_dim.x * nsamp::emu::g_block_dim.y) std::abort();
  b.exchange[t] = double(v);  // exact for float, double and int32
  b.warp_barriers[t >> 5]->arrive_and_wait();
  const double r = b.exchange[(t & ~31u) | ((t & 31u) ^ unsigned(lane_mask))];
  b.warp_barriers[t >> 5]->arrive_and_wait();  // nobody overwrites a slot before every lane read it
  return T(r);
}

template <class T>
T atomicAdd(T* p, T v) {
  std::lock_guard<std::mutex> lock(nsamp::emu::g_atomic_mu);
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T>
T atomicMax(T* p, T v) {
  std::lock_guard<std::mutex> lock(nsamp::emu::g_atomic_mu);
  const T old = *p;
  if (v > old) *p = v;
  return old;
}
template <class T>
T atomicMin(T* p, T v) {
  std::lock_guard<std::mutex> lock(nsamp::emu::g_atomic_mu);
  const T old = *p;
  if (v < old) *p = v;
  return old;
}
inline long long __double_as_longlong(double v) {
  long long r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}

namespace cub {

// The block-wide reduction of `Threads` threads (all of the block): each thread leaves its input in a slot,
// thread 0 folds the slots in thread order after a barrier. Like CUB, no barrier after: a kernel that reuses
// TempStorage must __syncthreads first, and one that does not races here as on the device.
template <class T, int Threads>
class BlockReduce {
 public:
  struct TempStorage {
    unsigned char unused;  // the slots live in the emulated block (a T need not be default-constructible)
  };
  explicit BlockReduce(TempStorage&) {}
  template <class Op>
  T Reduce(T input, Op op) {
    nsamp::emu::Block& b = *nsamp::emu::g_current;
    const unsigned t = nsamp::emu::tls_linear;
    if (nsamp::emu::g_block_dim.x * nsamp::emu::g_block_dim.y != unsigned(Threads)) std::abort();
    T* slots = reinterpret_cast<T*>(b.reduce_slots.data());
    if (b.reduce_slots.size() < sizeof(T) * Threads) std::abort();
    std::memcpy(static_cast<void*>(slots + t), &input, sizeof(T));
    __syncthreads();
    if (t != 0) {
      T poisoned;
      std::memset(static_cast<void*>(&poisoned), 0xFF, sizeof(T));
      return poisoned;
    }
    T acc = slots[0];
    for (int k = 1; k < Threads; ++k) acc = op(acc, slots[k]);
    return acc;
  }
  T Sum(T input) {
    return Reduce(input, [](const T& a, const T& b) { return a + b; });
  }
};

}  // namespace cub

namespace nsamp::emu {

// Runs kernel() as <<<grid, block, shared_bytes>>>; a block that is not whole warps ends in a partial warp,
// which may synchronise but not shuffle.
template <class Kernel>
void launch(Dim3 grid, Dim3 block, std::size_t shared_bytes, Kernel kernel) {
  const unsigned threads = block.x * block.y;
  if (threads == 0 || threads > 1024 || block.z != 1 || grid.z != 1) std::abort();
  g_grid_dim = grid;
  g_block_dim = block;
  // Blocks in a shuffled order (seeded, so a failure repeats): the device promises no order, and a kernel
  // whose result depends on block 0 running first should not pass here.
  std::vector<unsigned> order(std::size_t(grid.x) * grid.y);
  for (unsigned k = 0; k < order.size(); ++k) order[k] = k;
  std::mt19937 shuffle_rng(grid.x * 7919u + grid.y * 104729u + threads);
  std::shuffle(order.begin(), order.end(), shuffle_rng);
  for (const unsigned linear_block : order) {
    const unsigned bx = linear_block % grid.x, by = linear_block / grid.x;
    std::vector<unsigned char> shared(shared_bytes, 0xFF);
    Barrier block_barrier(static_cast<int>(threads));
    Block blk;
    blk.shared = shared.empty() ? nullptr : shared.data();
    blk.block_barrier = &block_barrier;
    for (unsigned w = 0; w < (threads + 31) / 32; ++w)  // the last warp may be partial, as on the device
      blk.warp_barriers.push_back(
          std::make_unique<Barrier>(int(threads - 32 * w < 32 ? threads - 32 * w : 32)));
    blk.exchange.assign(threads, 0.0);
    blk.reduce_slots.assign(std::size_t(threads) * 64, 0xFF);  // any accumulator up to 64 bytes
    g_current = &blk;
    auto thread_job = [&](unsigned t) {
      tls_linear = t;
      tls_thread = Dim3{t % block.x, t / block.x, 0};
      tls_block = Dim3{bx, by, 0};
      kernel();
    };
    g_pool.run(threads, thread_job);
    g_current = nullptr;
  }
}

// Runs kernel() as <<<grid, threads, shared_bytes>>> in one dimension.
template <class Kernel>
void launch(int grid, int threads, std::size_t shared_bytes, Kernel kernel) {
  launch(Dim3{unsigned(grid), 1, 1}, Dim3{unsigned(threads), 1, 1}, shared_bytes, kernel);
}

}  // namespace nsamp::emu
