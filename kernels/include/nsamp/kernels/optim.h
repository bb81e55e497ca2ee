// Optimiser family: fused parameter updates (one pass over parameter, gradient and state).
#pragma once

#include <cmath>

#include "nsamp/core/hd.h"
#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

struct AdamStep {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay =
      0.0;                  // L2: adds weight_decay * param to the gradient (torch.optim.Adam's weight_decay)
  std::int64_t step = 1;    // 1-based step count, for the bias corrections
  double grad_scale = 1.0;  // multiplies the gradient first (gradient-norm clipping)
};

// PyTorch's Adam, in its order of operations:
//   g = grad_scale * grad + weight_decay * param;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2)
//   g^2 param -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamStep& s, Context& ctx);

// ---- Adam with its per-step scalars in device memory
// A training step replayed as a CUDA graph cannot hand the step count, the learning rate or the clipping
// scale to its kernels as arguments, nor read the gradient norm back to decide whether to skip: adam_prepare
// decides on the device and writes the step's coefficients into a float64 state vector that the updates
// read. Same arithmetic as the host path above (same formulas, float64, same order of the norm's sum).
enum AdamSlot : int {
  kAdamSteps = 0,    // applied updates
  kAdamSkipped = 1,  // steps skipped for a non-finite loss or gradient norm
  kAdamLr = 2,       // learning rate (written by the host between steps)
  kAdamNorm = 3,     // the last step's gradient norm (before clipping)
  kAdamApply = 4,    // 1 when the last step went ahead
  kAdamCoeffs = 5,   // 9 coefficients, in AdamCoeffs' order
  kAdamStateSize = 14
};

struct AdamHyper {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  double clip_norm = 0.0;  // 0 = off
};

// From the per-tensor sums of squares of the gradients (sq32 float32 [n32], then sq64 float64 [n64], either
// may be null) and the loss (a one-element float tensor on the device, or `loss_value` when `loss` is
// null): the gradient norm, the skip decision (non-finite loss or norm) and, for a step that goes ahead,
// steps + 1 and the coefficients with PyTorch's gradient clipping scale max_norm / (norm + 1e-6) when
// below 1. state: float64 [kAdamStateSize] (any shape with that many elements) on the context's device.
void adam_prepare(const Tensor* sq32, const Tensor* sq64, const Tensor* loss, double loss_value,
                  const AdamHyper& h, Tensor& state, Context& ctx);
// adam_update with the step's coefficients read from `state`; does nothing when the step was skipped.
void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const Tensor& state, Context& ctx);

// ema = decay * ema + (1 - decay) * param.
void ema_update(Tensor& ema, const Tensor& param, double decay, Context& ctx);

// ---- element math (host + device) -----------------------------------------------------------------------

// An Adam step's scalars in the parameters' precision, computed once on the host in float64 and then rounded
// (as PyTorch computes its Python-float scalars before a float32 kernel sees them).
template <class T>
struct AdamCoeffs {
  T grad_scale, weight_decay, beta1, one_minus_beta1, beta2, one_minus_beta2;
  T step_size;  // lr / (1 - beta1^step)
  T bc2_sqrt;   // sqrt(1 - beta2^step)
  T eps;
};

template <class T>
AdamCoeffs<T> adam_coeffs(const AdamStep& s) {
  const double t = static_cast<double>(s.step);
  const double bc1 = 1.0 - std::pow(s.beta1, t), bc2 = 1.0 - std::pow(s.beta2, t);
  return {static_cast<T>(s.grad_scale),  static_cast<T>(s.weight_decay), static_cast<T>(s.beta1),
          static_cast<T>(1.0 - s.beta1), static_cast<T>(s.beta2),        static_cast<T>(1.0 - s.beta2),
          static_cast<T>(s.lr / bc1),    static_cast<T>(std::sqrt(bc2)), static_cast<T>(s.eps)};
}

// One element of adam_update, in the order of operations documented there.
template <class T>
NSAMP_HD_INLINE void adam_element(T& param, T grad, T& m, T& v, const AdamCoeffs<T>& k) {
  const T g = k.grad_scale * grad + k.weight_decay * param;
  m = k.beta1 * m + k.one_minus_beta1 * g;
  v = k.beta2 * v + k.one_minus_beta2 * g * g;
  const T denom = hd::sqrt(v) / k.bc2_sqrt + k.eps;
  param -= k.step_size * m / denom;
}

// adam_prepare's work (one thread).
NSAMP_HD_INLINE void adam_prepare_element(const float* sq32, std::int64_t n32, const double* sq64,
                                          std::int64_t n64, double loss, const AdamHyper& h, double* st) {
  double total = 0;
  for (std::int64_t i = 0; i < n32; ++i) total += double(sq32[i]);
  for (std::int64_t i = 0; i < n64; ++i) total += sq64[i];
  const double norm = ::sqrt(total);
  st[kAdamNorm] = norm;
  if (!(loss - loss == 0) || !(norm - norm == 0)) {  // NaN or infinite
    st[kAdamSkipped] += 1;
    st[kAdamApply] = 0;
    return;
  }
  double scale = 1.0;
  if (h.clip_norm > 0) {
    const double coef = h.clip_norm / (norm + 1e-6);
    if (coef < 1.0) scale = coef;
  }
  const double t = (st[kAdamSteps] += 1);
  const double bc1 = 1.0 - ::pow(h.beta1, t), bc2 = 1.0 - ::pow(h.beta2, t);
  double* k = st + kAdamCoeffs;
  k[0] = scale;
  k[1] = h.weight_decay;
  k[2] = h.beta1;
  k[3] = 1.0 - h.beta1;
  k[4] = h.beta2;
  k[5] = 1.0 - h.beta2;
  k[6] = st[kAdamLr] / bc1;
  k[7] = ::sqrt(bc2);
  k[8] = h.eps;
  st[kAdamApply] = 1;
}

template <class T>
NSAMP_HD_INLINE AdamCoeffs<T> adam_coeffs_from_state(const double* st) {
  const double* k = st + kAdamCoeffs;
  return {T(k[0]), T(k[1]), T(k[2]), T(k[3]), T(k[4]), T(k[5]), T(k[6]), T(k[7]), T(k[8])};
}

template <class T>
NSAMP_HD_INLINE T ema_element(T ema, T param, T decay, T one_minus_decay) {
  return decay * ema + one_minus_decay * param;
}

namespace detail {
void adam_update_cuda(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamStep& s,
                      Context& ctx);
void adam_prepare_cuda(const Tensor* sq32, const Tensor* sq64, const Tensor* loss, double loss_value,
                       const AdamHyper& h, Tensor& state, Context& ctx);
void adam_update_state_cuda(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const Tensor& state,
                            Context& ctx);
void ema_update_cuda(Tensor& ema, const Tensor& param, double decay, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
