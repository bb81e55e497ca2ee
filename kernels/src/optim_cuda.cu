// Optimiser family: CUDA launchers, one grid-stride pass over parameter, gradient and state running optim.h's
// element math (the scalars are computed once on the host, as on the CPU path).
#include "launch_cuda.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/kernels/optim.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__device__ __forceinline__ void adam_pass(T* __restrict__ param, const T* __restrict__ grad,
                                          T* __restrict__ m, T* __restrict__ v, const AdamCoeffs<T>& k,
                                          std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) {
    T p = param[i], mi = m[i], vi = v[i];
    adam_element(p, grad[i], mi, vi, k);
    param[i] = p;
    m[i] = mi;
    v[i] = vi;
  }
}

template <class T>
__global__ void adam_kernel(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                            T* __restrict__ v, AdamCoeffs<T> k, std::int64_t n) {
  adam_pass(param, grad, m, v, k, n);
}

template <class T>
__global__ void adam_state_kernel(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                                  T* __restrict__ v, const double* __restrict__ st, std::int64_t n) {
  if (st[kAdamApply] == 0) return;
  adam_pass(param, grad, m, v, adam_coeffs_from_state<T>(st), n);
}

__global__ void adam_prepare_kernel(const float* sq32, std::int64_t n32, const double* sq64, std::int64_t n64,
                                    const float* loss32, const double* loss64, double loss_value, AdamHyper h,
                                    double* st) {
  adam_prepare_element(sq32, n32, sq64, n64, loss64 ? *loss64 : loss32 ? double(*loss32) : loss_value, h, st);
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
