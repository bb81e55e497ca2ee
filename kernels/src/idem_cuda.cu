// iDEM / IW-SM family: CUDA launchers of the kernels in idem_kernels.cuh (their layout is described there).
#include "idem_kernels.cuh"
#include "nsamp/core/cuda_check.h"

namespace nsamp::kernels::detail {

void idem_noise_levels_cuda(const Tensor& t, const VeLevels& v, Tensor& t_col, Tensor& sigma, Tensor& sigma_x,
                            Tensor& scale, Tensor& shift, Tensor& lambda, Context& ctx) {
  const std::int64_t B = t.numel();
  if (t_col.dtype() == DType::F32)
    noise_levels_kernel<float><<<grid_for(B), kThreads, 0, ctx.stream()>>>(
        t.data<double>(), v, t_col.data<float>(), sigma.data<float>(), sigma_x.data<float>(),
        scale.data<float>(), shift.data<double>(), lambda.data<double>(), B);
  else
    noise_levels_kernel<double><<<grid_for(B), kThreads, 0, ctx.stream()>>>(
        t.data<double>(), v, t_col.data<double>(), sigma.data<double>(), sigma_x.data<double>(),
        scale.data<double>(), shift.data<double>(), lambda.data<double>(), B);
  NSAMP_CUDA_CHECK_LAUNCH("idem_noise_levels " + t.desc());
}

void idem_loss_weights_cuda(const Tensor* log_p, const Tensor* kernel_sum, const Tensor& shift,
                            const Tensor& lambda, double dim, Tensor& coef, Tensor& ess, Context& ctx,
                            std::int64_t groups, double uniform_mix) {
  const std::int64_t B = coef.numel();
  if (coef.dtype() == DType::F32)
    loss_weights_kernel<float><<<1, kWThreads, 0, ctx.stream()>>>(
        log_p ? log_p->data<float>() : nullptr, log_p ? kernel_sum->data<float>() : nullptr,
        shift.data<double>(), lambda.data<double>(), dim, B, groups, uniform_mix, coef.data<float>(),
        ess.data<double>());
  else
    loss_weights_kernel<double><<<1, kWThreads, 0, ctx.stream()>>>(
        log_p ? log_p->data<double>() : nullptr, log_p ? kernel_sum->data<double>() : nullptr,
        shift.data<double>(), lambda.data<double>(), dim, B, groups, uniform_mix, coef.data<double>(),
        ess.data<double>());
  NSAMP_CUDA_CHECK_LAUNCH("idem_loss_weights coef " + coef.desc());
}

void buffer_indices_cuda(const Tensor& u, std::int64_t size, Tensor& idx, Context& ctx) {
  const std::int64_t n = u.numel();
  buffer_indices_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(u.data<double>(), size,
                                                                    idx.data<std::int32_t>(), n);
  NSAMP_CUDA_CHECK_LAUNCH("buffer_indices " + u.desc());
}

void idem_accumulate_cuda(const Tensor& loss, const Tensor& ess, Tensor& acc, Context& ctx) {
  if (loss.dtype() == DType::F32)
    accumulate_kernel<float>
        <<<1, 1, 0, ctx.stream()>>>(loss.data<float>(), ess.data<double>(), acc.data<double>());
  else
    accumulate_kernel<double>
        <<<1, 1, 0, ctx.stream()>>>(loss.data<double>(), ess.data<double>(), acc.data<double>());
  NSAMP_CUDA_CHECK_LAUNCH("idem_accumulate");
}

}  // namespace nsamp::kernels::detail
