// iDEM / IW-SM family: the CUDA kernels (device code only), included by idem_cuda.cu, which launches them,
// and by tests/test_idem_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h against
// the CPU twin. Elementwise passes for the noise levels and buffer indices; the importance weights of one
// batch in a single block (B is a few hundred to a few thousand), float64 sums.
#pragma once

#include <cstdint>

#ifndef NSAMP_CUDA_EMULATION
#include <cub/block/block_reduce.cuh>
#endif

#include "launch_cuda.cuh"
#include "nsamp/core/hd.h"
#include "nsamp/kernels/idem.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void noise_levels_kernel(const double* __restrict__ t, VeLevels v, T* __restrict__ tc,
                                    T* __restrict__ sg, T* __restrict__ sx, T* __restrict__ sc,
                                    double* __restrict__ sh, double* __restrict__ la, std::int64_t B) {
  NSAMP_GRID_STRIDE(i, B) store_ve(ve_element(group_time(t, i, v.time_groups), v), i, tc, sg, sx, sc, sh, la);
}

constexpr int kWThreads = 512;
using WReduce = cub::BlockReduce<double, kWThreads>;

__device__ __forceinline__ bool finite(double x) { return x - x == 0; }

struct MaxOp {
  __device__ __forceinline__ double operator()(double a, double b) const { return fmax(a, b); }
};

constexpr int kWWarps = kWThreads / 32;

__device__ __forceinline__ double warp_max(double v) {
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One block. groups <= 1: the whole batch, in block reductions. groups >= 2: a warp per group (warp k takes
// groups k, k + kWWarps, ...), its lanes over the members g, g + groups, ...; the sum of squares per warp in
// a fixed order, then over the warps, so that the ESS does not depend on scheduling.
template <class T>
__global__ void loss_weights_kernel(const T* __restrict__ log_p, const T* __restrict__ ks,
                                    const double* __restrict__ shift, const double* __restrict__ lambda,
                                    double dim, std::int64_t B, std::int64_t groups, double mix,
                                    T* __restrict__ coef, double* __restrict__ ess) {
  __shared__ typename WReduce::TempStorage tmp;
  __shared__ double s_m, s_s, s_warp[kWWarps];
  auto l_at = [&](std::int64_t i) { return double(log_p[i]) - double(T(double(ks[i]) + shift[i])); };
  if (!log_p) {
    for (std::int64_t i = threadIdx.x; i < B; i += kWThreads)
      coef[i] = T(lambda[i] * (1.0 / double(B)) / dim);
    if (threadIdx.x == 0) *ess = 1.0;
    return;
  }
  if (groups >= 2) {
    const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
    double s2 = 0;
    for (std::int64_t g = warp; g < groups; g += kWWarps) {
      double m = -hd::infinity<double>();
      for (std::int64_t i = g + lane * groups; i < B; i += 32 * groups) {
        const double l = l_at(i);
        if (finite(l)) m = fmax(m, l);
      }
      m = warp_max(m);
      double s = 0;
      for (std::int64_t i = g + lane * groups; i < B; i += 32 * groups) {
        const double l = l_at(i);
        s += finite(l) ? exp(l - m) : 0.0;
      }
      s = warp_sum(s);
      if (!finite(m)) s = hd::quiet_nan<double>();
      const double share = double(group_size(B, g, groups)) / double(B);
      double q = 0;
      for (std::int64_t i = g + lane * groups; i < B; i += 32 * groups) {
        const double l = l_at(i);
        const double w = defensive_weight((finite(l) ? exp(l - m) : 0.0) / s * share, mix, B);
        q += w * w;
        coef[i] = T(lambda[i] * w / dim);
      }
      s2 += warp_sum(q);
    }
    if (lane == 0) s_warp[warp] = s2;
    __syncthreads();
    if (threadIdx.x == 0) {
      double t = 0;
      for (int k = 0; k < kWWarps; ++k) t += s_warp[k];
      *ess = 1.0 / (double(B) * t);
    }
    return;
  }
  double m = -hd::infinity<double>();
  for (std::int64_t i = threadIdx.x; i < B; i += kWThreads) {
    const double l = l_at(i);
    if (finite(l)) m = fmax(m, l);
  }
  m = WReduce(tmp).Reduce(m, MaxOp());
  if (threadIdx.x == 0) s_m = m;
  __syncthreads();
  m = s_m;
  double s = 0;
  for (std::int64_t i = threadIdx.x; i < B; i += kWThreads) {
    const double l = l_at(i);
    s += finite(l) ? exp(l - m) : 0.0;
  }
  s = WReduce(tmp).Sum(s);
  if (threadIdx.x == 0) s_s = finite(m) ? s : hd::quiet_nan<double>();
  __syncthreads();
  s = s_s;
  double s2 = 0;
  for (std::int64_t i = threadIdx.x; i < B; i += kWThreads) {
    const double l = l_at(i);
    const double w = defensive_weight((finite(l) ? exp(l - m) : 0.0) / s, mix, B);
    s2 += w * w;
    coef[i] = T(lambda[i] * w / dim);
  }
  __syncthreads();
  s2 = WReduce(tmp).Sum(s2);
  if (threadIdx.x == 0) *ess = 1.0 / (double(B) * s2);
}

__global__ void buffer_indices_kernel(const double* __restrict__ u, std::int64_t size, std::int32_t* idx,
                                      std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) {
    const std::int64_t k = std::int64_t(u[i] * double(size));
    idx[i] = std::int32_t(k < size - 1 ? k : size - 1);
  }
}

template <class T>
__global__ void accumulate_kernel(const T* loss, const double* ess, double* acc) {
  const double l = double(*loss);
  acc[0] += l;
  acc[1] += *ess;
  if (finite(l)) acc[2] += l, acc[3] += 1;
}

}  // namespace

}  // namespace nsamp::kernels::detail
