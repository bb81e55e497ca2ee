// CUDA kernels of the built-in targets (device code only), included by targets_cuda.cu, which launches
// them, and by tests/test_targets_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h
// against the CPU twin. Dense targets: one thread per sample. Particle systems: one warp per sample with its
// coordinates in shared memory; lane i owns particle i (and i + 32, ...), so every pair is evaluated on-chip
// and nothing of size pairs x batch ever reaches global memory.
#pragma once

#include <cstdint>

#include "nsamp/core/philox.h"
#include "nsamp/kernels/mcmc.h"
#include "nsamp/targets/energies.h"

namespace nsamp::targets::detail {

namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int kMaxPairCoords = 64 * 3;  // n * D per sample (LJ-55: 165)

inline int blocks_for(std::int64_t work, int per_block) {
  const std::int64_t b = (work + per_block - 1) / per_block;
  return static_cast<int>(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

template <class T, class F>
__global__ void per_sample_kernel(F f, const T* __restrict__ x, T* __restrict__ e, T* __restrict__ g,
                                  std::int64_t B, std::int64_t d) {
  for (std::int64_t b = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; b < B;
       b += std::int64_t(gridDim.x) * blockDim.x)
    e[b] = f.eval(x + b * d, g ? g + b * d : nullptr);
}

template <class T, class F>
__global__ void mala_fused_kernel(F f, kernels::TiltView<T> tilt, kernels::MalaDraws r, kernels::StepSize st,
                                  T* x, T* e, T* g, T* y, T* gy, T* acc, std::int64_t B, std::int64_t d) {
  const T step = st.get<T>();
  for (std::int64_t b = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; b < B;
       b += std::int64_t(gridDim.x) * blockDim.x)
    kernels::mala_fused_row(f, tilt, r, b, d, step, x + b * d, g + b * d, e + b, y + b * d, gy + b * d,
                            acc + b);
}

template <class T, class Pair>
__global__ void pair_warp_kernel(PairSystemEnergy<T, Pair> f, const T* __restrict__ x, T* __restrict__ e,
                                 T* __restrict__ g, std::int64_t B) {
  __shared__ T pos[kWarpsPerBlock][kMaxPairCoords];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n = f.n, D = f.D, d = n * D;
  T* xs = pos[warp];
  for (std::int64_t b = blockIdx.x * std::int64_t(kWarpsPerBlock) + warp; b < B;
       b += std::int64_t(gridDim.x) * kWarpsPerBlock) {
    for (int k = lane; k < d; k += 32) xs[k] = x[b * d + k];
    __syncwarp();
    T mean[3] = {0, 0, 0};
    if (Pair::kHarmonic)
      for (int i = 0; i < n; ++i)
        for (int k = 0; k < D; ++k) mean[k] += xs[i * D + k];
    T energy = 0;
    for (int i = lane; i < n; i += 32) {
      T gi[3];
      energy += f.particle(xs, i, gi);
      if (Pair::kHarmonic)
        for (int k = 0; k < D; ++k) {
          const T u = xs[i * D + k] - mean[k] / T(n);
          energy += T(0.5) * u * u;
          gi[k] += u;
        }
      if (g)
        for (int k = 0; k < D; ++k) g[b * d + i * D + k] = gi[k];
    }
    for (int off = 16; off > 0; off >>= 1) energy += __shfl_xor_sync(0xffffffffu, energy, off);
    if (lane == 0) e[b] = energy;
    __syncwarp();  // xs is rewritten for the next sample
  }
}

// One fused MALA step per warp for a pair system: the proposal (lanes over coordinates, into shared memory
// and y), the energy and gradient at y (lanes over particles, as pair_warp_kernel), the ratio's row sums by
// shuffles, and a warp-uniform decision. Same draws and decision as kernels::mala_fused_row.
template <class T, class Pair>
__global__ void pair_mala_warp_kernel(PairSystemEnergy<T, Pair> f, kernels::TiltView<T> tilt,
                                      kernels::MalaDraws draws, kernels::StepSize st, T* x, T* e, T* g, T* y,
                                      T* gy, T* acc, std::int64_t B) {
  __shared__ T pos[kWarpsPerBlock][kMaxPairCoords];
  constexpr int kPer = philox::values_per_counter<T>();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n = f.n, D = f.D, d = n * D;
  const kernels::MalaDraws r = draws.resolved();
  const T step = st.get<T>(), s = sqrt(T(2) * step);
  T* ys = pos[warp];
  for (std::int64_t b = blockIdx.x * std::int64_t(kWarpsPerBlock) + warp; b < B;
       b += std::int64_t(gridDim.x) * kWarpsPerBlock) {
    T *xb = x + b * d, *gb = g + b * d, *yb = y + b * d, *gyb = gy + b * d;
    for (int k = lane; k < d; k += 32) {
      const std::uint64_t i = std::uint64_t(b * d + k);
      T z[kPer];
      philox::normal_block(r.seed, r.noise + i / kPer, z);
      ys[k] = yb[k] = xb[k] - step * tilt.du(b, d, k, xb[k], gb[k]) + s * z[i % kPer];
    }
    __syncwarp();
    T mean[3] = {0, 0, 0};
    if (Pair::kHarmonic)
      for (int i = 0; i < n; ++i)
        for (int k = 0; k < D; ++k) mean[k] += ys[i * D + k];
    T ey = 0;
    for (int i = lane; i < n; i += 32) {
      T gi[3];
      ey += f.particle(ys, i, gi);
      if (Pair::kHarmonic)
        for (int k = 0; k < D; ++k) {
          const T u = ys[i * D + k] - mean[k] / T(n);
          ey += T(0.5) * u * u;
          gi[k] += u;
        }
      for (int k = 0; k < D; ++k) gyb[i * D + k] = gi[k];
    }
    __syncwarp();       // gy rows written by particle, read below by coordinate
    const T eb = e[b];  // read by every lane before lane 0 may write it
    T fwd = 0, bwd = 0, qx = 0, qy = 0;
    for (int k = lane; k < d; k += 32) {
      const T fk = ys[k] - xb[k] + step * tilt.du(b, d, k, xb[k], gb[k]);
      const T rk = xb[k] - ys[k] + step * tilt.du(b, d, k, ys[k], gyb[k]);
      fwd += fk * fk;
      bwd += rk * rk;
      if (tilt.xt) {
        const T rx = tilt.a[b] * xb[k] - tilt.xt[b * d + k], ry = tilt.a[b] * ys[k] - tilt.xt[b * d + k];
        qx += rx * rx;
        qy += ry * ry;
      }
    }
    for (int off = 16; off > 0; off >>= 1) {
      ey += __shfl_xor_sync(0xffffffffu, ey, off);
      fwd += __shfl_xor_sync(0xffffffffu, fwd, off);
      bwd += __shfl_xor_sync(0xffffffffu, bwd, off);
      qx += __shfl_xor_sync(0xffffffffu, qx, off);
      qy += __shfl_xor_sync(0xffffffffu, qy, off);
    }
    const T ux = tilt.xt ? tilt.beta * eb + tilt.c[b] * qx : eb;
    const T uy = tilt.xt ? tilt.beta * ey + tilt.c[b] * qy : ey;
    T u[kPer];
    philox::uniform_block(r.seed, r.uniform + std::uint64_t(b) / kPer, u);
    // Every lane holds the same sums and draw, so the decision is uniform across the warp; NaN rejects.
    __syncwarp();  // orders every lane's read of e[b] (a shuffle does not order memory) before lane 0's write
    if (log(u[std::uint64_t(b) % kPer]) < kernels::mala_log_ratio(ux, uy, fwd, bwd, step)) {
      for (int k = lane; k < d; k += 32) {
        xb[k] = ys[k];
        gb[k] = gyb[k];
      }
      if (lane == 0) {
        e[b] = ey;
        acc[b] += T(1);
      }
    }
    __syncwarp();  // ys is rewritten for the next chain
  }
}

}  // namespace

}  // namespace nsamp::targets::detail
