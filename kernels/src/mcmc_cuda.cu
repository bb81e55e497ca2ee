// MCMC family: CUDA launchers of the kernels in mcmc_kernels.cuh (their layout is described there).
#include "mcmc_kernels.cuh"
#include "nsamp/core/cuda_check.h"

namespace nsamp::kernels::detail {

void metropolis_accept_cuda(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey,
                            const Tensor& gy, const Tensor& log_alpha, const Tensor& log_u, Tensor& accepted,
                            Context& ctx) {
  const std::int64_t B = x.rows(), d = x.cols();
  const int grid = grid_for(B * 32);
  if (x.dtype() == DType::F32)
    select_kernel<<<grid, kThreads, 0, ctx.stream()>>>(
        x.data<float>(), e.data<float>(), grad.data<float>(), y.data<float>(), ey.data<float>(),
        gy.data<float>(), log_alpha.data<float>(), log_u.data<float>(), accepted.data<float>(), B, d);
  else
    select_kernel<<<grid, kThreads, 0, ctx.stream()>>>(
        x.data<double>(), e.data<double>(), grad.data<double>(), y.data<double>(), ey.data<double>(),
        gy.data<double>(), log_alpha.data<double>(), log_u.data<double>(), accepted.data<double>(), B, d);
  NSAMP_CUDA_CHECK_LAUNCH("metropolis_accept " + x.desc());
}

void langevin_propose_cuda(const Tensor& x, const Tensor& grad, const Tensor& noise, StepSize step, Tensor& y,
                           const GaussianTilt& tilt, Context& ctx) {
  const std::int64_t n = y.numel(), d = y.cols();
  if (y.dtype() == DType::F32)
    propose_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<float>(), grad.data<float>(),
                                                               noise.data<float>(), step, y.data<float>(),
                                                               tilt_view<float>(tilt), n, d);
  else
    propose_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<double>(), grad.data<double>(),
                                                               noise.data<double>(), step, y.data<double>(),
                                                               tilt_view<double>(tilt), n, d);
  NSAMP_CUDA_CHECK_LAUNCH("langevin_propose " + y.desc());
}

void mala_accept_cuda(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey, const Tensor& gy,
                      const Tensor& log_u, StepSize step, Tensor& accepted, const GaussianTilt& tilt,
                      Context& ctx) {
  const std::int64_t B = x.rows(), d = x.cols();
  const int grid = grid_for(B * 32);
  if (x.dtype() == DType::F32)
    accept_kernel<<<grid, kThreads, 0, ctx.stream()>>>(
        x.data<float>(), e.data<float>(), grad.data<float>(), y.data<float>(), ey.data<float>(),
        gy.data<float>(), log_u.data<float>(), step, accepted.data<float>(), tilt_view<float>(tilt), B, d);
  else
    accept_kernel<<<grid, kThreads, 0, ctx.stream()>>>(
        x.data<double>(), e.data<double>(), grad.data<double>(), y.data<double>(), ey.data<double>(),
        gy.data<double>(), log_u.data<double>(), step, accepted.data<double>(), tilt_view<double>(tilt), B,
        d);
  NSAMP_CUDA_CHECK_LAUNCH("mala_accept " + x.desc());
}

void tilt_energy_cuda(const Tensor& x, const Tensor& e, const Tensor* grad, const GaussianTilt& tilt,
                      Tensor& eu, Tensor* gu, Context& ctx) {
  const std::int64_t B = x.rows(), d = x.cols();
  if (x.dtype() == DType::F32)
    tilt_kernel<<<grid_for(B), kThreads, 0, ctx.stream()>>>(
        x.data<float>(), e.data<float>(), grad ? grad->data<float>() : nullptr, tilt_view<float>(tilt),
        eu.data<float>(), gu ? gu->data<float>() : nullptr, B, d);
  else
    tilt_kernel<<<grid_for(B), kThreads, 0, ctx.stream()>>>(
        x.data<double>(), e.data<double>(), grad ? grad->data<double>() : nullptr, tilt_view<double>(tilt),
        eu.data<double>(), gu ? gu->data<double>() : nullptr, B, d);
  NSAMP_CUDA_CHECK_LAUNCH("tilt_energy " + x.desc());
}

}  // namespace nsamp::kernels::detail
