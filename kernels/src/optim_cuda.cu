// Optimiser family: CUDA launchers of the kernels in optim_kernels.cuh.
#include "nsamp/core/cuda_check.h"
#include "optim_kernels.cuh"

namespace nsamp::kernels::detail {

void adam_update_cuda(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamStep& s,
                      Context& ctx) {
  const std::int64_t n = param.numel();
  if (param.dtype() == DType::F32)
    adam_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(
        param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), adam_coeffs<float>(s), n);
  else
    adam_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(param.data<double>(), grad.data<double>(),
                                                            m.data<double>(), v.data<double>(),
                                                            adam_coeffs<double>(s), n);
  NSAMP_CUDA_CHECK_LAUNCH("adam_update param " + param.desc() + " step " + std::to_string(s.step));
}

void adam_prepare_cuda(const Tensor* sq32, const Tensor* sq64, const Tensor* loss, double loss_value,
                       const AdamHyper& h, Tensor& state, Context& ctx) {
  adam_prepare_kernel<<<1, 1, 0, ctx.stream()>>>(
      sq32 ? sq32->data<float>() : nullptr, sq32 ? sq32->numel() : 0, sq64 ? sq64->data<double>() : nullptr,
      sq64 ? sq64->numel() : 0, loss && loss->dtype() == DType::F32 ? loss->data<float>() : nullptr,
      loss && loss->dtype() == DType::F64 ? loss->data<double>() : nullptr, loss_value, h,
      state.data<double>());
  NSAMP_CUDA_CHECK_LAUNCH("adam_prepare state " + state.desc());
}

void adam_update_state_cuda(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const Tensor& state,
                            Context& ctx) {
  const std::int64_t n = param.numel();
  if (param.dtype() == DType::F32)
    adam_state_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(
        param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), state.data<double>(), n);
  else
    adam_state_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(param.data<double>(), grad.data<double>(),
                                                                  m.data<double>(), v.data<double>(),
                                                                  state.data<double>(), n);
  NSAMP_CUDA_CHECK_LAUNCH("adam_update param " + param.desc() + " (device state)");
}

void ema_update_cuda(Tensor& ema, const Tensor& param, double decay, Context& ctx) {
  const std::int64_t n = ema.numel();
  if (ema.dtype() == DType::F32)
    ema_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(ema.data<float>(), param.data<float>(),
                                                           float(decay), float(1.0 - decay), n);
  else
    ema_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(ema.data<double>(), param.data<double>(), decay,
                                                           1.0 - decay, n);
  NSAMP_CUDA_CHECK_LAUNCH("ema_update ema " + ema.desc());
}

}  // namespace nsamp::kernels::detail
