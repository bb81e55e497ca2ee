// CUDA launchers of the built-in targets. Dense targets: one thread per sample. Particle systems: one warp
// per sample with its coordinates in shared memory; lane i owns particle i (and i + 32, ...), so every pair
// is evaluated on-chip and nothing of size pairs x batch ever reaches global memory.
#include "launch.h"
#include "nsamp/core/cuda_check.h"

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
__global__ void mala_fused_kernel(F f, kernels::TiltView<T> tilt, kernels::MalaDraws r, T step, T* x, T* e,
                                  T* g, T* y, T* gy, T* acc, std::int64_t B, std::int64_t d) {
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

template <class T>
void evaluate_typed(const FamilyParams& p, const Tensor& x, Tensor& e, Tensor* grad, Context& ctx) {
  const std::int64_t B = x.rows(), d = x.cols();
  const T* px = x.data<T>();
  T* pe = e.data<T>();
  T* pg = grad ? grad->data<T>() : nullptr;
  cudaStream_t s = ctx.stream();
  const int grid = blocks_for(B, kThreads);
  switch (p.family) {
    case Family::Mixture: {
      MixtureEnergy<T> f{p.means->data<T>(), static_cast<int>(p.means->rows()), static_cast<int>(d),
                         T(p.inv_var), T(p.log_norm)};
      per_sample_kernel<T><<<grid, kThreads, 0, s>>>(f, px, pe, pg, B, d);
      break;
    }
    case Family::ManyWell:
      per_sample_kernel<T>
          <<<grid, kThreads, 0, s>>>(ManyWellEnergy<T>{static_cast<int>(d)}, px, pe, pg, B, d);
      break;
    case Family::MultiWell:
      per_sample_kernel<T><<<grid, kThreads, 0, s>>>(MultiWellEnergy<T>{static_cast<int>(d), p.m, T(p.delta)},
                                                     px, pe, pg, B, d);
      break;
    case Family::Funnel:
      per_sample_kernel<T><<<grid, kThreads, 0, s>>>(FunnelEnergy<T>{static_cast<int>(d)}, px, pe, pg, B, d);
      break;
    case Family::Gaussian:
      per_sample_kernel<T>
          <<<grid, kThreads, 0, s>>>(GaussianEnergy<T>{static_cast<int>(d)}, px, pe, pg, B, d);
      break;
    case Family::DoubleWell4: {
      PairSystemEnergy<T, DoubleWellPair<T>> f{{T(p.a), T(p.b), T(p.c), T(p.d0)}, p.n, p.D};
      pair_warp_kernel<T><<<blocks_for(B, kWarpsPerBlock), kThreads, 0, s>>>(f, px, pe, pg, B);
      break;
    }
    case Family::LennardJones: {
      PairSystemEnergy<T, LennardJonesPair<T>> f{{}, p.n, p.D};
      pair_warp_kernel<T><<<blocks_for(B, kWarpsPerBlock), kThreads, 0, s>>>(f, px, pe, pg, B);
      break;
    }
  }
}

template <class T>
void mala_fused_typed(const FamilyParams& p, const MalaStepArgs& m, Context& ctx) {
  const std::int64_t B = m.x.rows(), d = m.x.cols();
  const kernels::TiltView<T> tilt = kernels::tilt_view<T>(m.tilt);
  T *x = m.x.data<T>(), *e = m.e.data<T>(), *g = m.grad.data<T>(), *y = m.y.data<T>(), *gy = m.gy.data<T>(),
    *acc = m.accepted.data<T>();
  const T step = T(m.step);
  cudaStream_t s = ctx.stream();
  const int grid = blocks_for(B, kThreads);
  const int di = static_cast<int>(d);
  switch (p.family) {
    case Family::Mixture: {
      MixtureEnergy<T> f{p.means->data<T>(), static_cast<int>(p.means->rows()), di, T(p.inv_var),
                         T(p.log_norm)};
      mala_fused_kernel<<<grid, kThreads, 0, s>>>(f, tilt, m.draws, step, x, e, g, y, gy, acc, B, d);
      break;
    }
    case Family::ManyWell:
      mala_fused_kernel<<<grid, kThreads, 0, s>>>(ManyWellEnergy<T>{di}, tilt, m.draws, step, x, e, g, y, gy,
                                                  acc, B, d);
      break;
    case Family::MultiWell:
      mala_fused_kernel<<<grid, kThreads, 0, s>>>(MultiWellEnergy<T>{di, p.m, T(p.delta)}, tilt, m.draws,
                                                  step, x, e, g, y, gy, acc, B, d);
      break;
    case Family::Funnel:
      mala_fused_kernel<<<grid, kThreads, 0, s>>>(FunnelEnergy<T>{di}, tilt, m.draws, step, x, e, g, y, gy,
                                                  acc, B, d);
      break;
    case Family::Gaussian:
      mala_fused_kernel<<<grid, kThreads, 0, s>>>(GaussianEnergy<T>{di}, tilt, m.draws, step, x, e, g, y, gy,
                                                  acc, B, d);
      break;
    default:
      NSAMP_FAIL("mala_step_fused (CUDA): no fused kernel for particle systems");
  }
}

}  // namespace

void mala_fused_cuda(const FamilyParams& p, const MalaStepArgs& m, Context& ctx) {
  if (m.x.dtype() == DType::F32)
    mala_fused_typed<float>(p, m, ctx);
  else
    mala_fused_typed<double>(p, m, ctx);
  NSAMP_CUDA_CHECK_LAUNCH("mala_step_fused " + m.x.desc());
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
