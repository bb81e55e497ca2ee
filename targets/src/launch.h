// Internal: the per-sample launchers shared by the built-in targets (CPU here, CUDA in targets_cuda.cu).
#pragma once

#include "nsamp/core/tensor.h"
#include "nsamp/targets/energies.h"
#include "nsamp/targets/target.h"

namespace nsamp::targets::detail {

// CPU: one energy functor call per sample, OpenMP across samples.
template <class T, class F>
void per_sample_cpu(const F& f, const Tensor& x, Tensor& e, Tensor* grad) {
  const std::int64_t B = x.rows(), d = x.cols();
  const T* px = x.data<T>();
  T* pe = e.data<T>();
  T* pg = grad ? grad->data<T>() : nullptr;
#pragma omp parallel for schedule(static) if (B * d > 4096)
  for (std::int64_t b = 0; b < B; ++b) pe[b] = f.eval(px + b * d, pg ? pg + b * d : nullptr);
}

// CPU: one fused MALA step per chain (kernels::mala_fused_row), OpenMP across chains.
template <class T, class F>
void mala_fused_cpu(const F& f, const MalaStepArgs& m) {
  const std::int64_t B = m.x.rows(), d = m.x.cols();
  T *x = m.x.data<T>(), *e = m.e.data<T>(), *g = m.grad.data<T>(), *y = m.y.data<T>(), *gy = m.gy.data<T>(),
    *acc = m.accepted.data<T>();
  const kernels::TiltView<T> tilt = kernels::tilt_view<T>(m.tilt);
  const T step = m.step.get<T>();
#pragma omp parallel for schedule(static) if (B * d > 4096)
  for (std::int64_t b = 0; b < B; ++b)
    kernels::mala_fused_row(f, tilt, m.draws, b, d, step, x + b * d, g + b * d, e + b, y + b * d, gy + b * d,
                            acc + b);
}

// CPU: the Monte Carlo noisy score, one point per iteration (kernels/mc_score.h), OpenMP across points.
template <class T, class F>
void mc_score_cpu(const F& f, const McScoreArgs& a) {
  kernels::mc_score_host<T>(f, a.x.data<T>(), a.sigma.data<T>(), a.x.rows(), a.K, a.x.cols(), a.draws,
                            T(a.clip_max), a.particle_dim, a.score.data<T>(),
                            a.log_p.defined() ? a.log_p.data<T>() : nullptr);
}

enum class Family { Mixture, ManyWell, MultiWell, Funnel, Gaussian, DoubleWell4, LennardJones };

// Parameters of a target family for the CUDA launcher (doubles, cast to the tensor's type there).
struct FamilyParams {
  Family family;
  const Tensor* means = nullptr;  // mixture: [K, d] in x's dtype on x's device
  double inv_var = 0, log_norm = 0;
  int m = 0;
  double delta = 0;
  int n = 0, D = 0;
  double a = 0, b = 0, c = 0, d0 = 0;
};

void evaluate_cuda(const FamilyParams& p, const Tensor& x, Tensor& e, Tensor* grad, Context& ctx);
// Dense families: one thread per chain; particle systems: one warp per chain.
void mala_fused_cuda(const FamilyParams& p, const MalaStepArgs& m, Context& ctx);
// A block per point, its threads over the K samples (up to 192 coordinates).
void mc_score_cuda(const FamilyParams& p, const McScoreArgs& a, Context& ctx);

}  // namespace nsamp::targets::detail
