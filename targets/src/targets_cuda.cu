// CUDA launchers of the built-in targets. Dense targets: one thread per sample. Particle systems: one warp
// per sample with its coordinates in shared memory; lane i owns particle i (and i + 32, ...), so every pair
// is evaluated on-chip and nothing of size pairs x batch ever reaches global memory.
#include <type_traits>

#include "launch.h"
#include "nsamp/core/cuda_check.h"
#include "nsamp/core/philox.h"

namespace nsamp::targets::detail {

namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int kMaxPairCoords = 64 * 3;  // n * D per sample (LJ-55: 165)

int blocks_for(std::int64_t work, int per_block) {
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

// Calls fn with the element functor of the family (the dense ones and the pair systems).
template <class T, class Fn>
void visit_family(const FamilyParams& p, std::int64_t d, Fn&& fn) {
  const int di = static_cast<int>(d);
  switch (p.family) {
    case Family::Mixture:
      fn(MixtureEnergy<T>{p.means->data<T>(), static_cast<int>(p.means->rows()), di, T(p.inv_var),
                          T(p.log_norm)});
      break;
    case Family::ManyWell:
      fn(ManyWellEnergy<T>{di});
      break;
    case Family::MultiWell:
      fn(MultiWellEnergy<T>{di, p.m, T(p.delta)});
      break;
    case Family::Funnel:
      fn(FunnelEnergy<T>{di});
      break;
    case Family::Gaussian:
      fn(GaussianEnergy<T>{di});
      break;
    case Family::DoubleWell4:
      fn(PairSystemEnergy<T, DoubleWellPair<T>>{{T(p.a), T(p.b), T(p.c), T(p.d0)}, p.n, p.D});
      break;
    case Family::LennardJones:
      fn(PairSystemEnergy<T, LennardJonesPair<T>>{{}, p.n, p.D});
      break;
  }
}

template <class F>
struct IsPair : std::false_type {};
template <class T, class Pair>
struct IsPair<PairSystemEnergy<T, Pair>> : std::true_type {};

template <class T>
void evaluate_typed(const FamilyParams& p, const Tensor& x, Tensor& e, Tensor* grad, Context& ctx) {
  const std::int64_t B = x.rows(), d = x.cols();
  const T* px = x.data<T>();
  T* pe = e.data<T>();
  T* pg = grad ? grad->data<T>() : nullptr;
  cudaStream_t s = ctx.stream();
  visit_family<T>(p, d, [&](const auto& f) {
    if constexpr (IsPair<std::decay_t<decltype(f)>>::value)
      pair_warp_kernel<T><<<blocks_for(B, kWarpsPerBlock), kThreads, 0, s>>>(f, px, pe, pg, B);
    else
      per_sample_kernel<T><<<blocks_for(B, kThreads), kThreads, 0, s>>>(f, px, pe, pg, B, d);
  });
}

template <class T>
void mala_fused_typed(const FamilyParams& p, const MalaStepArgs& m, Context& ctx) {
  const std::int64_t B = m.x.rows(), d = m.x.cols();
  const kernels::TiltView<T> tilt = kernels::tilt_view<T>(m.tilt);
  T *x = m.x.data<T>(), *e = m.e.data<T>(), *g = m.grad.data<T>(), *y = m.y.data<T>(), *gy = m.gy.data<T>(),
    *acc = m.accepted.data<T>();
  const kernels::StepSize step = m.step;
  cudaStream_t s = ctx.stream();
  visit_family<T>(p, d, [&](const auto& f) {
    if constexpr (IsPair<std::decay_t<decltype(f)>>::value)
      pair_mala_warp_kernel<<<blocks_for(B, kWarpsPerBlock), kThreads, 0, s>>>(f, tilt, m.draws, step, x, e,
                                                                               g, y, gy, acc, B);
    else
      mala_fused_kernel<<<blocks_for(B, kThreads), kThreads, 0, s>>>(f, tilt, m.draws, step, x, e, g, y, gy,
                                                                     acc, B, d);
  });
}

template <class T>
void mc_score_typed(const FamilyParams& p, const McScoreArgs& a, Context& ctx) {
  visit_family<T>(p, a.x.cols(), [&](const auto& f) {
    kernels::launch_mc_score<T>(f, a.x.data<T>(), a.sigma.data<T>(), a.x.rows(), a.K, a.x.cols(), a.draws,
                                T(a.clip_max), a.particle_dim, a.score.data<T>(),
                                a.log_p.defined() ? a.log_p.data<T>() : nullptr, ctx.stream());
  });
}

}  // namespace

void mala_fused_cuda(const FamilyParams& p, const MalaStepArgs& m, Context& ctx) {
  NSAMP_CHECK(p.n * p.D <= kMaxPairCoords && p.D <= 3, "mala_step_fused (CUDA): particle systems up to ",
              kMaxPairCoords, " coordinates in at most 3 dimensions, got ", p.n, " x ", p.D);
  if (m.x.dtype() == DType::F32)
    mala_fused_typed<float>(p, m, ctx);
  else
    mala_fused_typed<double>(p, m, ctx);
  NSAMP_CUDA_CHECK_LAUNCH("mala_step_fused " + m.x.desc());
}

void mc_score_cuda(const FamilyParams& p, const McScoreArgs& a, Context& ctx) {
  NSAMP_CHECK(a.x.cols() <= kernels::kMaxScoreDim, "mc_score (CUDA): up to ", kernels::kMaxScoreDim,
              " coordinates, got ", a.x.desc());
  if (a.x.dtype() == DType::F32)
    mc_score_typed<float>(p, a, ctx);
  else
    mc_score_typed<double>(p, a, ctx);
  NSAMP_CUDA_CHECK_LAUNCH("mc_score " + a.x.desc());
}

void evaluate_cuda(const FamilyParams& p, const Tensor& x, Tensor& e, Tensor* grad, Context& ctx) {
  NSAMP_CHECK(p.n * p.D <= kMaxPairCoords && p.D <= 3, "target energy (CUDA): particle systems up to ",
              kMaxPairCoords, " coordinates in at most 3 dimensions, got ", p.n, " x ", p.D);
  if (x.dtype() == DType::F32)
    evaluate_typed<float>(p, x, e, grad, ctx);
  else
    evaluate_typed<double>(p, x, e, grad, ctx);
  NSAMP_CUDA_CHECK_LAUNCH("target energy " + x.desc());
}

}  // namespace nsamp::targets::detail
