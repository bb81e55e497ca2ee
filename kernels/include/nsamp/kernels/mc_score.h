// Monte Carlo noisy-score family (idem_iwsm.md): iDEM's estimator of the score of the target convolved with
// N(0, sigma^2 I),
//   S_K(x) = sum_i softmax_i(-E(y_i)) (-grad E(y_i)),   y_i = x + sigma eps_i,  i < K,
// and the log of the unbiased estimate of Z p_sigma(x), log p~ = logsumexp_i(-E(y_i)) - log K (IW-SM's
// weights). Both come from one streaming pass: a running maximum, the sum of the weights below it and the
// weighted sum of the gradients, rescaled when the maximum moves (online softmax), so no K x d gradients are
// kept. Then the clip: S <- S min(1, max / (|S| + 1e-6)), |S| over the whole vector or per particle.
//
// The element math here is shared by the CPU loop and the CUDA kernels, which the targets launch with their
// energy functors (Target::mc_score). Draws: eps of point b, sample i, coordinate j is element
// (b K + i) d + j of a normal fill of a [B K, d] tensor at counter `noise`, so any backend and any
// parallelisation over samples sees the same numbers.
#pragma once

#include <cstdint>
#include <vector>

#include "nsamp/core/hd.h"
#include "nsamp/core/philox.h"

namespace nsamp::kernels {

struct McDraws {
  std::uint64_t seed = 0, noise = 0;
  const std::uint64_t* base = nullptr;  // added to noise when the kernel runs (philox::Offset)
  NSAMP_HD_INLINE std::uint64_t noise_at(std::uint64_t k) const { return (base ? noise + *base : noise) + k; }
};

// The streaming state: m the running max of the log-weights l_i, s = sum exp(l_i - m), v = sum exp(l_i - m)
// g_i (d values, owned by the caller). l = -inf adds nothing; a NaN poisons the state (result NaN).
template <class T>
struct ScoreAcc {
  T m, s;
  static NSAMP_HD_INLINE ScoreAcc init(T* v, std::int64_t d) {
    for (std::int64_t j = 0; j < d; ++j) v[j] = T(0);
    return {-hd::infinity<T>(), T(0)};
  }
  // g: the term's vector, scaled by `sign` (-1: g holds grad E and the term is -grad E).
  NSAMP_HD_INLINE void push(T l, const T* g, T sign, T* v, std::int64_t d) {
    if (hd::is_nan(m) || l == -hd::infinity<T>()) return;
    if (hd::is_nan(l)) {
      m = s = l;
      return;
    }
    if (l > m) {
      const T r = hd::exp_weight(m - l);  // 0 for the first term
      s = s * r + T(1);
      for (std::int64_t j = 0; j < d; ++j) v[j] = v[j] * r + sign * g[j];
      m = l;
    } else {
      const T w = hd::exp_weight(l - m);
      s += w;
      for (std::int64_t j = 0; j < d; ++j) v[j] += w * sign * g[j];
    }
  }
  // Folds another state (mo, so, vo) in.
  NSAMP_HD_INLINE void merge(T mo, T so, const T* vo, T* v, std::int64_t d) {
    if (hd::is_nan(m) || mo == -hd::infinity<T>()) return;
    if (hd::is_nan(mo)) {
      m = s = mo;
      return;
    }
    if (mo > m) {
      const T r = hd::exp_weight(m - mo);
      s = s * r + so;
      for (std::int64_t j = 0; j < d; ++j) v[j] = v[j] * r + vo[j];
      m = mo;
    } else {
      const T r = hd::exp_weight(mo - m);
      s += so * r;
      for (std::int64_t j = 0; j < d; ++j) v[j] += vo[j] * r;
    }
  }
};

// Samples i = first, first + stride, ... < K of point b (x: its d values, sigma its noise scale): y = x +
// sigma eps_i, f.eval(y, gy) (any element functor), pushed into (acc, v). y and gy: d values of scratch.
template <class T, class F>
NSAMP_HD void mc_score_samples(const F& f, const T* x, T sigma, std::int64_t b, std::int64_t K,
                               std::int64_t first, std::int64_t stride, std::int64_t d, const McDraws& r,
                               T* y, T* gy, ScoreAcc<T>& acc, T* v) {
  constexpr int kPer = philox::values_per_counter<T>();
  T z[kPer];
  for (std::int64_t i = first; i < K; i += stride) {
    std::uint64_t block = ~std::uint64_t(0);
    for (std::int64_t j = 0; j < d; ++j) {
      const std::uint64_t k = std::uint64_t((b * K + i) * d + j);
      if (k / kPer != block) philox::normal_block(r.seed, r.noise_at(block = k / kPer), z);
      y[j] = x[j] + sigma * z[k % kPer];
    }
    const T e = f.eval(y, gy);
    acc.push(-e, gy, T(-1), v, d);
  }
}

// The estimate from the final state: score = v / s, clipped (clip_max <= 0: no clip; particle_dim > 0: the
// norm of each group of particle_dim coordinates), and log p~ = m + log s - log K.
template <class T>
NSAMP_HD T mc_score_finish(const ScoreAcc<T>& acc, const T* v, std::int64_t K, std::int64_t d, T clip_max,
                           int particle_dim, T* score) {
  if (hd::is_nan(acc.m) || acc.m == -hd::infinity<T>()) {  // no finite energy among the samples
    for (std::int64_t j = 0; j < d; ++j) score[j] = hd::quiet_nan<T>();
    return acc.m;
  }
  for (std::int64_t j = 0; j < d; ++j) score[j] = v[j] / acc.s;
  if (clip_max > T(0)) {
    const std::int64_t group = particle_dim > 0 ? particle_dim : d;
    for (std::int64_t g0 = 0; g0 < d; g0 += group) {
      const std::int64_t g1 = g0 + group < d ? g0 + group : d;  // never past the row
      T n2 = 0;
      for (std::int64_t j = g0; j < g1; ++j) n2 += score[j] * score[j];
      const T c = clip_max / (hd::sqrt(n2) + T(1e-6));
      if (c < T(1))
        for (std::int64_t j = g0; j < g1; ++j) score[j] *= c;
    }
  }
  return acc.m + hd::log(acc.s) - hd::log(T(K));
}

// ---- CPU: the loop over points (OpenMP), for any element functor ------------------------------------------

template <class T, class F>
void mc_score_host(const F& f, const T* x, const T* sigma, std::int64_t B, std::int64_t K, std::int64_t d,
                   const McDraws& r, T clip_max, int particle_dim, T* score, T* log_p) {
#pragma omp parallel
  {
    std::vector<T> y(static_cast<std::size_t>(d)), gy(static_cast<std::size_t>(d)),
        v(static_cast<std::size_t>(d));
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < B; ++b) {
      ScoreAcc<T> acc = ScoreAcc<T>::init(v.data(), d);
      mc_score_samples(f, x + b * d, sigma[b], b, K, 0, 1, d, r, y.data(), gy.data(), acc, v.data());
      const T lp = mc_score_finish(acc, v.data(), K, d, clip_max, particle_dim, score + b * d);
      if (log_p) log_p[b] = lp;
    }
  }
}

// ---- CUDA: the kernel and its launcher, templated on the energy functor (the built-in targets and user
// functor targets compiled by nvcc instantiate them)
// ----------------------------------------------------------

constexpr int kMaxScoreDim = 192;  // coordinates per point (LJ-55: 165)
constexpr int kScoreThreads = 128;

#if defined(__CUDACC__) || defined(NSAMP_CUDA_EMULATION)  // the emulation: tests/emu/cuda_emulation.h
// The Monte Carlo noisy score: a block per point; each thread streams its share of the K samples with the
// point's d coordinates in local arrays (kMaxD), then the block merges the states: butterflies within each
// warp, then thread 0 over the warps' states in shared memory.

template <class T, int kMaxD, class F>
__global__ void mc_score_kernel(F f, const T* __restrict__ x, const T* __restrict__ sigma, std::int64_t B,
                                std::int64_t K, std::int64_t d, McDraws r, T clip_max, int particle_dim,
                                T* __restrict__ score, T* __restrict__ log_p) {
  __shared__ T part[kScoreThreads / 32][kMaxD + 2];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (std::int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    T y[kMaxD], gy[kMaxD], v[kMaxD];
    ScoreAcc<T> acc = ScoreAcc<T>::init(v, d);
    mc_score_samples(f, x + b * d, sigma[b], b, K, threadIdx.x, blockDim.x, d, r, y, gy, acc, v);
    for (int off = 16; off > 0; off >>= 1) {
      const T mo = __shfl_xor_sync(0xffffffffu, acc.m, off), so = __shfl_xor_sync(0xffffffffu, acc.s, off);
      for (std::int64_t j = 0; j < d; ++j) gy[j] = __shfl_xor_sync(0xffffffffu, v[j], off);
      acc.merge(mo, so, gy, v, d);
    }
    if (lane == 0) {
      part[warp][0] = acc.m;
      part[warp][1] = acc.s;
      for (std::int64_t j = 0; j < d; ++j) part[warp][2 + j] = v[j];
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < warps; ++w) acc.merge(part[w][0], part[w][1], &part[w][2], v, d);
      const T lp = mc_score_finish(acc, v, K, d, clip_max, particle_dim, score + b * d);
      if (log_p) log_p[b] = lp;
    }
    __syncthreads();  // part is rewritten for the next point
  }
}

#endif

#if defined(__CUDACC__)
// One block per point (grid capped, striding beyond); local arrays sized 8, 64 or kMaxScoreDim by d.
template <class T, class F>
void launch_mc_score(const F& f, const T* x, const T* sigma, std::int64_t B, std::int64_t K, std::int64_t d,
                     const McDraws& r, T clip_max, int particle_dim, T* score, T* log_p,
                     cudaStream_t stream) {
  const int grid = static_cast<int>(B < 65535 * 8 ? B : 65535 * 8);
  if (d <= 8)
    mc_score_kernel<T, 8>
        <<<grid, kScoreThreads, 0, stream>>>(f, x, sigma, B, K, d, r, clip_max, particle_dim, score, log_p);
  else if (d <= 64)
    mc_score_kernel<T, 64>
        <<<grid, kScoreThreads, 0, stream>>>(f, x, sigma, B, K, d, r, clip_max, particle_dim, score, log_p);
  else
    mc_score_kernel<T, kMaxScoreDim>
        <<<grid, kScoreThreads, 0, stream>>>(f, x, sigma, B, K, d, r, clip_max, particle_dim, score, log_p);
}
#endif

}  // namespace nsamp::kernels
