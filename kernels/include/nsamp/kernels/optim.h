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

// ema = decay * ema + (1 - decay) * param.
void ema_update(Tensor& ema, const Tensor& param, double decay, Context& ctx);

// ---- element math (host + device)
// --------------------------------------------------------------------------

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

template <class T>
NSAMP_HD_INLINE T ema_element(T ema, T param, T decay, T one_minus_decay) {
  return decay * ema + one_minus_decay * param;
}

namespace detail {
void adam_update_cuda(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamStep& s,
                      Context& ctx);
void ema_update_cuda(Tensor& ema, const Tensor& param, double decay, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
