// MCMC family: the CUDA kernels (device code only), included by mcmc_cuda.cu, which launches them, and by
// tests/test_mcmc_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h against the CPU
// twin. The proposal is elementwise; the accept step is one warp per chain: the row sums by shuffles, then
// the whole warp copies an accepted row.
#pragma once

#include <cstdint>

#include "launch_cuda.cuh"
#include "nsamp/kernels/mcmc.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void propose_kernel(const T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ z,
                               StepSize st, T* __restrict__ y, TiltView<T> tilt, std::int64_t n,
                               std::int64_t d) {
  const T step = st.get<T>(), s = sqrt(T(2) * step);
  NSAMP_GRID_STRIDE(i, n) y[i] = x[i] - step * tilt.du(i / d, d, i % d, x[i], g[i]) + s * z[i];
}

// U and grad U of the tilt: one thread per chain.
template <class T>
__global__ void tilt_kernel(const T* __restrict__ x, const T* e, const T* g, TiltView<T> tilt, T* eu, T* gu,
                            std::int64_t B, std::int64_t d) {
  NSAMP_GRID_STRIDE(b, B) {
    const T* xb = x + b * d;
    if (gu)
      for (std::int64_t j = 0; j < d; ++j) gu[b * d + j] = tilt.du(b, d, j, xb[j], g[b * d + j]);
    eu[b] = tilt.u(b, d, xb, e[b]);
  }
}

template <class T>
__global__ void accept_kernel(T* __restrict__ x, T* __restrict__ e, T* __restrict__ g,
                              const T* __restrict__ y, const T* __restrict__ ey, const T* __restrict__ gy,
                              const T* __restrict__ log_u, StepSize st, T* __restrict__ acc, TiltView<T> tilt,
                              std::int64_t B, std::int64_t d) {
  const T step = st.get<T>();
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t b = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); b < B; b += warps) {
    // Per-chain scalars are read before any lane can write them (lane 0 updates e[b] below).
    const T eb = e[b], eyb = ey[b], lub = log_u[b];
    T fwd = 0, bwd = 0, qx = 0, qy = 0;  // qx, qy: the tilt's |a x - x_t|^2 at x and y
    for (std::int64_t j = lane; j < d; j += 32) {
      const std::int64_t k = b * d + j;
      const T f = y[k] - x[k] + step * tilt.du(b, d, j, x[k], g[k]);
      const T r = x[k] - y[k] + step * tilt.du(b, d, j, y[k], gy[k]);
      fwd += f * f;
      bwd += r * r;
      if (tilt.xt) {
        const T rx = tilt.a[b] * x[k] - tilt.xt[k], ry = tilt.a[b] * y[k] - tilt.xt[k];
        qx += rx * rx;
        qy += ry * ry;
      }
    }
    for (int m = 16; m > 0; m >>= 1) {
      fwd += __shfl_xor_sync(0xffffffffu, fwd, m);
      bwd += __shfl_xor_sync(0xffffffffu, bwd, m);
      qx += __shfl_xor_sync(0xffffffffu, qx, m);
      qy += __shfl_xor_sync(0xffffffffu, qy, m);
    }
    const T ux = tilt.xt ? tilt.beta * eb + tilt.c[b] * qx : eb;
    const T uy = tilt.xt ? tilt.beta * eyb + tilt.c[b] * qy : eyb;
    // Every lane holds the same sums after the butterfly, so the decision is uniform across the warp.
    const bool take = lub < mala_log_ratio(ux, uy, fwd, bwd, step);
    __syncwarp();  // orders every lane's reads of e[b] (a shuffle does not order memory) before lane 0's
                   // write
    if (take) {
      for (std::int64_t j = lane; j < d; j += 32) {
        x[b * d + j] = y[b * d + j];
        g[b * d + j] = gy[b * d + j];
      }
      if (lane == 0) {
        e[b] = eyb;
        acc[b] += T(1);
      }
    }
  }
}

// Accept/reject with a given log ratio: one warp per chain copies an accepted row.
template <class T>
__global__ void select_kernel(T* __restrict__ x, T* __restrict__ e, T* __restrict__ g,
                              const T* __restrict__ y, const T* __restrict__ ey, const T* __restrict__ gy,
                              const T* __restrict__ log_alpha, const T* __restrict__ log_u,
                              T* __restrict__ acc, std::int64_t B, std::int64_t d) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t b = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); b < B; b += warps) {
    if (!(log_u[b] < log_alpha[b])) continue;  // uniform across the warp; NaN rejects
    const T eyb = ey[b];
    for (std::int64_t j = lane; j < d; j += 32) {
      x[b * d + j] = y[b * d + j];
      g[b * d + j] = gy[b * d + j];
    }
    if (lane == 0) {
      e[b] = eyb;
      acc[b] += T(1);
    }
  }
}

}  // namespace

}  // namespace nsamp::kernels::detail
