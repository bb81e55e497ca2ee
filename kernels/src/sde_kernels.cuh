// SDE family: the CUDA kernels (device code only), included by sde_cuda.cu, which launches them, and by
// tests/test_sde_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h against the CPU
// twin. One warp per path: each lane draws the Philox normals of its elements (the same counters as
// fill_normal_at, one block per element: Philox is cheap next to the memory traffic), and the row's dR is a
// shuffle reduction, added by lane 0. The losses: one block per group, then one block over the groups, in
// float64.
#pragma once

#include <cstdint>

#ifndef NSAMP_CUDA_EMULATION
#include <cub/block/block_reduce.cuh>
#endif

#include "launch_cuda.cuh"
#include "nsamp/core/hd.h"
#include "nsamp/core/philox.h"
#include "nsamp/kernels/sde.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void sde_step_kernel(const T* x, const T* __restrict__ nn, const T* __restrict__ nt,
                                bool nt_per_row, const T* __restrict__ g, SdeCoef<T> k, T constant,
                                std::uint64_t seed, philox::Offset offset, T* xn, T* __restrict__ R,
                                const T* __restrict__ cot, T* __restrict__ ug, std::int64_t B,
                                std::int64_t d) {
  constexpr int kPer = philox::values_per_counter<T>();
  const std::uint64_t off = offset.value();
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t b = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); b < B; b += warps) {
    const T ntb = nt[nt_per_row ? b : 0];
    const T cb = ug ? cot[b] : T(0);
    T dr = 0;
    for (std::int64_t j = lane; j < d; j += 32) {
      const std::int64_t i = b * d + j;
      T block[kPer];
      philox::normal_block(seed, off + std::uint64_t(i / kPer), block);
      T w;
      dr += sde_element(x[i], nn[i], ntb, g[i], block[i % kPer], k, &xn[i], &w);
      if (ug) ug[i] = cb * w;
    }
    for (int m = 16; m > 0; m >>= 1) dr += __shfl_xor_sync(0xffffffffu, dr, m);
    if (lane == 0) R[b] += dr + constant;
  }
}

template <class T>
__global__ void truncated_normal_kernel(T* __restrict__ x, std::int64_t n, std::int64_t d, std::uint64_t seed,
                                        philox::Offset offset, std::uint64_t stride, int rounds, T a,
                                        std::int64_t repeats, T scale) {
  const std::uint64_t off = offset.value();
  NSAMP_GRID_STRIDE(i, n) {
    const std::int64_t r = i / d, c = i - r * d;
    x[i] = scale * truncated_normal_element<T>(seed, off, stride, rounds, a, (r / repeats) * d + c);
  }
}

constexpr int kLvThreads = 256;
using LvReduce = cub::BlockReduce<double, kLvThreads>;

// One block per group: its usable count, mean and unbiased variance into g[3 group_index ..].
template <class T>
__global__ void lv_group_kernel(const T* __restrict__ R, std::int64_t group, double drop,
                                double* __restrict__ g) {
  __shared__ typename LvReduce::TempStorage tmp;
  __shared__ double s_mean;
  const std::int64_t gi = blockIdx.x;
  const T* r = R + gi * group;
  double sum = 0, n = 0;
  for (std::int64_t j = threadIdx.x; j < group; j += kLvThreads) {
    const double v = double(r[j]);
    if (lv_usable(v, drop)) sum += v, n += 1;
  }
  sum = LvReduce(tmp).Sum(sum);
  __syncthreads();
  n = LvReduce(tmp).Sum(n);
  if (threadIdx.x == 0) s_mean = n > 0 ? sum / n : 0.0;
  __syncthreads();
  const double mean = s_mean;
  double var = 0;
  for (std::int64_t j = threadIdx.x; j < group; j += kLvThreads) {
    const double v = double(r[j]);
    if (lv_usable(v, drop)) var += (v - mean) * (v - mean);
  }
  __syncthreads();
  var = LvReduce(tmp).Sum(var);
  if (threadIdx.x == 0) {
    g[3 * gi] = n;
    g[3 * gi + 1] = mean;
    g[3 * gi + 2] = n >= 2 ? var / (n - 1) : 0.0;
  }
}

// One block: the loss over usable groups, the paths used and the cotangent scale (into g[3 groups]).
__global__ void lv_total_kernel(double* __restrict__ g, std::int64_t groups, double dim,
                                double* __restrict__ stats) {
  __shared__ typename LvReduce::TempStorage tmp;
  double total = 0, used = 0, used_groups = 0;
  for (std::int64_t k = threadIdx.x; k < groups; k += kLvThreads)
    if (g[3 * k] >= 2) total += g[3 * k + 2], used += g[3 * k], used_groups += 1;
  total = LvReduce(tmp).Sum(total);
  __syncthreads();
  used = LvReduce(tmp).Sum(used);
  __syncthreads();
  used_groups = LvReduce(tmp).Sum(used_groups);
  if (threadIdx.x == 0) {
    const double scale = used_groups > 0 ? 1.0 / (used_groups * dim) : 0.0;
    g[3 * groups] = scale;
    stats[0] = used_groups > 0 ? total * scale : hd::quiet_nan<double>();
    stats[1] = used;
  }
}

// One block: the finite paths' sum and count, then the cotangent.
template <class T>
__global__ void kl_kernel(const T* __restrict__ R, std::int64_t B, double dim, T* __restrict__ cot,
                          double* __restrict__ stats) {
  __shared__ typename LvReduce::TempStorage tmp;
  __shared__ double s_w;
  double total = 0, n = 0;
  for (std::int64_t i = threadIdx.x; i < B; i += kLvThreads) {
    const double r = double(R[i]);
    if (r - r == 0) total += r, n += 1;
  }
  total = LvReduce(tmp).Sum(total);
  __syncthreads();
  n = LvReduce(tmp).Sum(n);
  if (threadIdx.x == 0) {
    const double w = n > 0 ? 1.0 / (n * dim) : 0.0;
    s_w = w;
    stats[0] = n > 0 ? total * w : hd::quiet_nan<double>();
    stats[1] = n;
  }
  __syncthreads();
  const double w = s_w;
  for (std::int64_t i = threadIdx.x; i < B; i += kLvThreads) {
    const double r = double(R[i]);
    cot[i] = r - r == 0 ? T(w) : T(0);
  }
}

template <class T>
__global__ void lv_cot_kernel(const T* __restrict__ R, std::int64_t B, std::int64_t group, double drop,
                              const double* __restrict__ g, std::int64_t groups, T* __restrict__ cot) {
  const double scale = g[3 * groups];
  NSAMP_GRID_STRIDE(i, B) {
    const std::int64_t k = i / group;
    const double n = g[3 * k], v = double(R[i]);
    cot[i] = n >= 2 && lv_usable(v, drop) ? T(2.0 * (v - g[3 * k + 1]) / (n - 1) * scale) : T(0);
  }
}

}  // namespace

}  // namespace nsamp::kernels::detail
