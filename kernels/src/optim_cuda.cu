// Optimiser family: CUDA launchers, one grid-stride pass over parameter, gradient and state running optim.h's
// element math (the scalars are computed once on the host, as on the CPU path).
#include "launch_cuda.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/kernels/optim.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void adam_kernel(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                            T* __restrict__ v, AdamCoeffs<T> k, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) {
    T p = param[i], mi = m[i], vi = v[i];
    adam_element(p, grad[i], mi, vi, k);
    param[i] = p;
    m[i] = mi;
    v[i] = vi;
  }
}

template <class T>
__global__ void ema_kernel(T* ema, const T* param, T decay, T one_minus_decay, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) ema[i] = ema_element(ema[i], param[i], decay, one_minus_decay);
}

}  // namespace

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
