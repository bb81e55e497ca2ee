// DiKL family: the CUDA kernels (device code only), included by dikl_cuda.cu, which launches them, and by
// tests/test_dikl_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h against the CPU
// twin. Elementwise passes for the levels, proposals and tilt; one thread per group for Gumbel-max (n is a
// few to a few hundred); the acceptance sum of one batch in a single block, float64.
#pragma once

#include <cstdint>

#ifndef NSAMP_CUDA_EMULATION
#include <cub/block/block_reduce.cuh>
#endif

#include "launch_cuda.cuh"
#include "nsamp/core/hd.h"
#include "nsamp/kernels/dikl.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void levels_kernel(const double* __restrict__ u, const double* __restrict__ tab, int L,
                              T* __restrict__ tm, T* __restrict__ al, T* __restrict__ sg, T* __restrict__ wt,
                              std::int64_t B) {
  NSAMP_GRID_STRIDE(i, B) {
    const int k = dikl_level(u[i], L);
    tm[i] = T(double(k));
    al[i] = T(tab[k]);
    sg[i] = T(tab[L + k]);
    wt[i] = T(tab[2 * L + k]);
  }
}

template <class T>
__global__ void proposals_kernel(const T* __restrict__ xt, const T* __restrict__ a, const T* __restrict__ s,
                                 const T* __restrict__ xi, std::int64_t n, std::int64_t d, T* __restrict__ x0,
                                 T* __restrict__ xr, T* __restrict__ ar, T* __restrict__ cr,
                                 std::int64_t total) {
  NSAMP_GRID_STRIDE(i, total) {
    const std::int64_t p = i / d, j = i % d, b = p / n;
    const ProposalCoef c = proposal_coef(double(a[b]), double(s[b]));
    xr[i] = xt[b * d + j];
    x0[i] = proposal_value(xt[b * d + j], xi[i], c);
    if (j == 0) {
      ar[p] = a[b];
      cr[p] = T(c.c);
    }
  }
}

template <class T>
__global__ void tilt_coef_kernel(const T* __restrict__ s, T* __restrict__ c, std::int64_t B) {
  NSAMP_GRID_STRIDE(i, B) c[i] = T(0.5 / (double(s[i]) * double(s[i])));
}

template <class T>
__global__ void gumbel_kernel(const T* __restrict__ lw, std::int64_t n, std::uint64_t seed,
                              philox::Offset offset, std::int32_t* __restrict__ rows, std::int64_t G) {
  const std::uint64_t off = offset.value();
  NSAMP_GRID_STRIDE(g, G) {
    double best = -hd::infinity<double>();
    std::int64_t pick = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::uint64_t k = std::uint64_t(g * n + i);
      double u[2];
      philox::uniform_block(seed, off + k / 2, u);
      const double v = double(lw[k]) - log(-log(u[k % 2]));  // NaN never compares greater
      if (v > best) best = v, pick = i;
    }
    rows[g] = std::int32_t(g * n + pick);
  }
}

constexpr int kAThreads = 256;

template <class T>
__global__ void adapt_kernel(const T* __restrict__ acc, std::int64_t B, std::int64_t steps, bool adaptive,
                             double* step, double* rate) {
  using Reduce = cub::BlockReduce<double, kAThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  double s = 0;
  for (std::int64_t i = threadIdx.x; i < B; i += kAThreads) s += double(acc[i]);
  s = Reduce(tmp).Sum(s);
  if (threadIdx.x == 0) {
    const double r = s / (double(steps) * double(B));
    *rate = r;
    if (adaptive) {
      if (r > 0.6) *step *= 1.5;
      if (r < 0.5) *step /= 1.5;
    }
  }
}

template <class T>
__global__ void record_kernel(const T* v, double* dst, bool accumulate) {
  *dst = accumulate ? *dst + double(*v) : double(*v);
}

}  // namespace

}  // namespace nsamp::kernels::detail
