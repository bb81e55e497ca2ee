// Transport family: the CUDA kernels (device code only), included by transport_cuda.cu, which launches them,
// and by tests/test_transport_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h
// against the CPU twin. Pairwise costs are 32 x 32 output tiles staged through shared memory; Sinkhorn
// updates and plan sums are one warp per row of the cost matrix (coalesced along the row); an auction round
// is five small kernels (bid, resolve, assign, reset, compact).
#pragma once

#include <cstdint>
#include <limits>

#include "launch_cuda.cuh"
#include "nsamp/kernels/reduce.h"
#include "nsamp/kernels/transport.h"

namespace nsamp::kernels::detail {

namespace {

constexpr std::int32_t kNoWinner = std::numeric_limits<std::int32_t>::max();

constexpr int kTile = 32, kTileK = 16, kTileRowsPerThread = 4;
constexpr int kTileThreadRows = kTile / kTileRowsPerThread;  // block = kTile x kTileThreadRows threads

template <class T>
__global__ void pairwise_kernel(const T* __restrict__ x, const T* __restrict__ y, T* __restrict__ out,
                                std::int64_t N, std::int64_t M, std::int64_t d, bool sq) {
  __shared__ T xs[kTile][kTileK + 1];
  __shared__ T ys[kTile][kTileK + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kTile + tx;
  const std::int64_t i0 = std::int64_t(blockIdx.y) * kTile, j0 = std::int64_t(blockIdx.x) * kTile;
  T acc[kTileRowsPerThread] = {};
  for (std::int64_t k0 = 0; k0 < d; k0 += kTileK) {
    for (int e = tid; e < kTile * kTileK; e += kTile * kTileThreadRows) {
      const int r = e / kTileK, kk = e % kTileK;
      const bool kin = k0 + kk < d;
      xs[r][kk] = (kin && i0 + r < N) ? x[(i0 + r) * d + k0 + kk] : T(0);
      ys[r][kk] = (kin && j0 + r < M) ? y[(j0 + r) * d + k0 + kk] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      const T yv = ys[tx][kk];
#pragma unroll
      for (int q = 0; q < kTileRowsPerThread; ++q) {
        const T t = xs[ty + kTileThreadRows * q][kk] - yv;
        acc[q] += t * t;
      }
    }
    __syncthreads();
  }
  const std::int64_t j = j0 + tx;
  if (j >= M) return;
#pragma unroll
  for (int q = 0; q < kTileRowsPerThread; ++q) {
    const std::int64_t i = i0 + ty + kTileThreadRows * q;
    if (i < N) out[i * M + j] = sq ? acc[q] : sqrt(acc[q]);
  }
}

template <class T>
__device__ LseAcc<T> lse_allreduce(LseAcc<T> a) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) a.merge({__shfl_xor_sync(kFull, a.m, m), __shfl_xor_sync(kFull, a.s, m)});
  return a;
}

template <class T>
__global__ void potential_kernel(const T* __restrict__ c, const T* __restrict__ g, T log_a, T eps,
                                 T* __restrict__ f, std::int64_t N, std::int64_t M) {
  const int lane = threadIdx.x & 31;
  const T inv = T(1) / eps;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); i < N; i += warps) {
    LseAcc<T> acc = LseAcc<T>::init();
    for (std::int64_t j = lane; j < M; j += 32) acc.push((g[j] - c[i * M + j]) * inv);
    acc = lse_allreduce(acc);
    if (lane == 0) f[i] = eps * (log_a - acc.result());
  }
}

// One warp per row of x, lanes over y, distances formed on the fly.
template <class T>
__global__ void log_kernel_sum_kernel(const T* __restrict__ x, const T* __restrict__ y,
                                      const T* __restrict__ scale, T* __restrict__ out, std::int64_t N,
                                      std::int64_t M, std::int64_t d) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); i < N; i += warps) {
    LseAcc<T> acc = LseAcc<T>::init();
    const T c = scale[i];
    for (std::int64_t j = lane; j < M; j += 32) {
      T r2 = 0;
      for (std::int64_t k = 0; k < d; ++k) {
        const T u = x[i * d + k] - y[j * d + k];
        r2 += u * u;
      }
      acc.push(-c * r2);
    }
    acc = lse_allreduce(acc);
    if (lane == 0) out[i] = acc.result();
  }
}

template <class T>
__global__ void plan_rows_kernel(const T* __restrict__ c, const T* __restrict__ f, const T* __restrict__ g,
                                 T eps, T* __restrict__ mass, T* __restrict__ cost, std::int64_t N,
                                 std::int64_t M) {
  const int lane = threadIdx.x & 31;
  const T inv = T(1) / eps;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); i < N; i += warps) {
    const T fi = f[i];
    T m = 0, s = 0;
    for (std::int64_t j = lane; j < M; j += 32) {
      const T cij = c[i * M + j];
      const T p = exp((fi + g[j] - cij) * inv);
      m += p;
      s += p * cij;
    }
    for (int o = 16; o > 0; o >>= 1) {
      m += __shfl_xor_sync(kFull, m, o);
      s += __shfl_xor_sync(kFull, s, o);
    }
    if (lane == 0) {
      mass[i] = m;
      cost[i] = s;
    }
  }
}

// ---- auction ----------------------------------------------------------------------------------------------

// Merges two lanes' BestTwo: the lower best wins (the lower column on equal values), and the runner-up is
// the smaller of the loser's best and the winner's runner-up.
__device__ BestTwo merge(const BestTwo& a, const BestTwo& o) {
  if (o.w1 < a.w1 || (o.w1 == a.w1 && o.j1 < a.j1)) return {o.w1, fmin(a.w1, o.w2), o.j1};
  return {a.w1, fmin(a.w2, o.w1), a.j1};
}

__device__ unsigned long long bits_of(double v) {
  return static_cast<unsigned long long>(__double_as_longlong(v));
}

template <class T>
__global__ void bid_kernel(const T* __restrict__ c, const double* __restrict__ p,
                           const std::int32_t* __restrict__ who, std::int64_t m, std::int64_t n, double eps,
                           std::int32_t* __restrict__ bcol, double* __restrict__ bid,
                           double* __restrict__ best) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t k = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); k < m; k += warps) {
    const T* r = c + std::int64_t(who[k]) * n;
    BestTwo b = BestTwo::init();
    b.j1 = kNoWinner;  // a lane without columns must lose every merge
    for (std::int64_t j = lane; j < n; j += 32) b.push(double(r[j]) + p[j], std::int32_t(j));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      b = merge(b, {__shfl_xor_sync(kFull, b.w1, o), __shfl_xor_sync(kFull, b.w2, o),
                    __shfl_xor_sync(kFull, b.j1, o)});
    if (lane == 0) {
      // A row with no finite w_j (+inf or NaN costs, or its only column priced to +inf) bids NaN on column
      // 0, as on the CPU, and that bid never wins.
      if (b.j1 == kNoWinner) b.j1 = 0;
      const double v = b.bid(p[b.j1], eps, n);
      bcol[k] = b.j1;
      bid[k] = v;
      // Bids are positive, so their bit patterns order like their values.
      if (!isnan(v)) atomicMax(reinterpret_cast<unsigned long long*>(best) + b.j1, bits_of(v));
    }
  }
}

__global__ void resolve_kernel(const std::int32_t* __restrict__ who, const std::int32_t* __restrict__ bcol,
                               const double* __restrict__ bid, const double* __restrict__ best,
                               std::int32_t* __restrict__ win, std::int64_t m) {
  NSAMP_GRID_STRIDE(k, m) {
    const std::int32_t j = bcol[k];
    if (bid[k] == best[j]) atomicMin(win + j, who[k]);
  }
}

__global__ void assign_kernel(const std::int32_t* __restrict__ who, const std::int32_t* __restrict__ bcol,
                              const double* __restrict__ best, const std::int32_t* __restrict__ win,
                              double* __restrict__ p, std::int32_t* __restrict__ x,
                              std::int32_t* __restrict__ y, std::int64_t m) {
  NSAMP_GRID_STRIDE(k, m) {
    const std::int32_t j = bcol[k], i = who[k];
    if (win[j] != i) continue;
    const std::int32_t prev = y[j];  // an assigned person, never a bidder of this round
    if (prev >= 0) x[prev] = -1;
    y[j] = i;
    x[i] = j;
    p[j] = best[j];
  }
}

__global__ void reset_kernel(const std::int32_t* __restrict__ bcol, double* __restrict__ best,
                             std::int32_t* __restrict__ win, std::int64_t m) {
  NSAMP_GRID_STRIDE(k, m) {
    best[bcol[k]] = 0;
    win[bcol[k]] = kNoWinner;
  }
}

__global__ void compact_kernel(const std::int32_t* __restrict__ x, std::int32_t* __restrict__ who,
                               std::int32_t* __restrict__ count, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) {
    if (x[i] < 0) who[atomicAdd(count, 1)] = std::int32_t(i);
  }
}

__global__ void begin_phase_kernel(std::int32_t* __restrict__ x, std::int32_t* __restrict__ y,
                                   std::int32_t* __restrict__ who, double* __restrict__ best,
                                   std::int32_t* __restrict__ win, std::int32_t* __restrict__ count,
                                   std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) {
    x[i] = y[i] = -1;
    who[i] = std::int32_t(i);
    best[i] = 0;
    win[i] = kNoWinner;
    if (i == 0) *count = std::int32_t(n);
  }
}

}  // namespace

}  // namespace nsamp::kernels::detail
