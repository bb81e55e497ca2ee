// CUDA launchers of the built-in targets (the kernels and their layout: targets_kernels.cuh).
#include <type_traits>

#include "launch.h"
#include "nsamp/core/cuda_check.h"
#include "targets_kernels.cuh"

namespace nsamp::targets::detail {

namespace {

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
