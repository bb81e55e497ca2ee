// Elementwise family: binary arithmetic with broadcasting, affine maps, activations and pointwise math
// functions forward and backward, clamping, broadcast expansion and the fused bias + activation epilogue.
//
// Broadcasting works on the 2-D view [R, C] of the output (leading dimensions folded into rows): each input
// is either the output's shape, a row vector (C elements: [C] or [1, C]), a column vector ([R, 1]) or a
// scalar (one element). An output may alias an input of its own shape.
#pragma once

#include <string>
#include <type_traits>

#include "nsamp/core/hd.h"
#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

enum class BinaryOp { Add, Sub, Mul, Div };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Square, Sin, Cos };
enum class Activation { Identity, ReLU, SiLU, GELU, Tanh, Sigmoid, Softplus };

const char* binary_op_name(BinaryOp op);
const char* activation_name(Activation act);
const char* unary_op_name(UnaryOp op);
Activation parse_activation(const std::string& name);  // "relu", "silu", "gelu", ...

// Calls f(std::integral_constant<Activation, A>) for the runtime activation (host code: the launchers
// instantiate one branch-free loop or kernel per activation).
template <class F>
void with_activation(Activation act, F&& f) {
  switch (act) {
    case Activation::Identity:
      f(std::integral_constant<Activation, Activation::Identity>{});
      break;
    case Activation::ReLU:
      f(std::integral_constant<Activation, Activation::ReLU>{});
      break;
    case Activation::SiLU:
      f(std::integral_constant<Activation, Activation::SiLU>{});
      break;
    case Activation::GELU:
      f(std::integral_constant<Activation, Activation::GELU>{});
      break;
    case Activation::Tanh:
      f(std::integral_constant<Activation, Activation::Tanh>{});
      break;
    case Activation::Sigmoid:
      f(std::integral_constant<Activation, Activation::Sigmoid>{});
      break;
    case Activation::Softplus:
      f(std::integral_constant<Activation, Activation::Softplus>{});
      break;
  }
}

// ---- element math (host + device)
// --------------------------------------------------------------------------

template <class T>
NSAMP_HD_INLINE T binary_apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add:
      return a + b;
    case BinaryOp::Sub:
      return a - b;
    case BinaryOp::Mul:
      return a * b;
    default:
      return a / b;
  }
}

template <class T>
NSAMP_HD_INLINE T sigmoid(T x) {
  // e = exp(-|x|) never overflows. One exp and one division, both unconditional, and selects: the CPU loops
  // vectorise (a division under a condition would not be if-converted, as it may raise a floating-point
  // exception), and a warp stays converged. The select (not -|x|) keeps a NaN's sign as the input had it.
  const T e = hd::exp(x >= T(0) ? -x : x);
  return (x >= T(0) ? T(1) : e) / (T(1) + e);
}

template <class T>
NSAMP_HD_INLINE T activation_forward(Activation act, T x) {
  switch (act) {
    case Activation::Identity:
      return x;
    case Activation::ReLU:
      return x > T(0) ? x : T(0);
    case Activation::SiLU:
      return x * sigmoid(x);
    case Activation::GELU:  // exact (erf) GELU; erfc keeps the negative tail accurate where 1 + erf cancels
      return T(0.5) * x * hd::erfc(-x * T(0.70710678118654752440));
    case Activation::Tanh:
      return hd::tanh(x);
    case Activation::Sigmoid:
      return sigmoid(x);
    default:  // Softplus, log(1 + e^x) without overflow
      return hd::max(x, T(0)) + hd::log1p(hd::exp(-hd::abs(x)));
  }
}

// d activation / dx at x, in forms that avoid cancellation (1 - s, 1 - tanh^2) in the tails.
template <class T>
NSAMP_HD_INLINE T activation_derivative(Activation act, T x) {
  switch (act) {
    case Activation::Identity:
      return T(1);
    case Activation::ReLU:
      return x > T(0) ? T(1) : T(0);
    case Activation::SiLU:
      return sigmoid(x) * (T(1) + x * sigmoid(-x));
    case Activation::GELU: {
      const T cdf = T(0.5) * hd::erfc(-x * T(0.70710678118654752440));
      const T pdf = T(0.39894228040143267794) * hd::exp(T(-0.5) * x * x);
      return cdf + x * pdf;
    }
    case Activation::Tanh: {  // sech^2 x = 4e / (1 + e)^2 with e = exp(-2|x|)
      const T e = hd::exp(T(-2) * hd::abs(x));
      return T(4) * e / ((T(1) + e) * (T(1) + e));
    }
    case Activation::Sigmoid: {  // s (1 - s) = e / (1 + e)^2 with e = exp(-|x|)
      const T e = hd::exp(-hd::abs(x));
      return e / ((T(1) + e) * (T(1) + e));
    }
    default:
      return sigmoid(x);  // Softplus
  }
}

template <class T>
NSAMP_HD_INLINE T unary_forward(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::Neg:
      return -x;
    case UnaryOp::Exp:
      return hd::exp(x);
    case UnaryOp::Log:
      return hd::log(x);
    case UnaryOp::Sqrt:
      return hd::sqrt(x);
    case UnaryOp::Square:
      return x * x;
    case UnaryOp::Sin:
      return hd::sin(x);
    default:  // Cos
      return hd::cos(x);
  }
}

// d f / dx at x, as PyTorch's backward formulas: log' = 1/x (+inf at 0), sqrt' = 1 / (2 sqrt x) (+inf at 0).
template <class T>
NSAMP_HD_INLINE T unary_derivative(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::Neg:
      return T(-1);
    case UnaryOp::Exp:
      return hd::exp(x);
    case UnaryOp::Log:
      return T(1) / x;
    case UnaryOp::Sqrt:
      return T(1) / (T(2) * hd::sqrt(x));
    case UnaryOp::Square:
      return T(2) * x;
    case UnaryOp::Sin:
      return hd::cos(x);
    default:  // Cos
      return -hd::sin(x);
  }
}

// min(max(x, lo), hi), with NaN passed through (as torch.clamp).
template <class T>
NSAMP_HD_INLINE T clamp_value(T x, T lo, T hi) {
  if (hd::is_nan(x)) return x;
  return hd::min(hd::max(x, lo), hi);
}

// 1 where lo <= x <= hi (the boundaries included), else 0 (also for NaN x): PyTorch's clamp gradient mask.
template <class T>
NSAMP_HD_INLINE T clamp_grad(T x, T lo, T hi, T grad_y) {
  return (x >= lo && x <= hi) ? grad_y : T(0);
}

// Index strides of a broadcast operand in the output's [R, C] view: element (r, c) is at r*row + c*col.
struct BroadcastStrides {
  std::int64_t row = 0, col = 0;
};

// ---- ops -------------------------------------------------------------------------------------------------

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, Context& ctx);
inline void add(const Tensor& a, const Tensor& b, Tensor& out, Context& ctx) {
  binary(BinaryOp::Add, a, b, out, ctx);
}
inline void sub(const Tensor& a, const Tensor& b, Tensor& out, Context& ctx) {
  binary(BinaryOp::Sub, a, b, out, ctx);
}
inline void mul(const Tensor& a, const Tensor& b, Tensor& out, Context& ctx) {
  binary(BinaryOp::Mul, a, b, out, ctx);
}
inline void div(const Tensor& a, const Tensor& b, Tensor& out, Context& ctx) {
  binary(BinaryOp::Div, a, b, out, ctx);
}

// out = alpha * a + beta (a and out of the same shape).
void affine(const Tensor& a, double alpha, double beta, Tensor& out, Context& ctx);

// y = f(x) and grad_x = grad_y * f'(x); all of one shape.
void activation_forward(Activation act, const Tensor& x, Tensor& y, Context& ctx);
void activation_backward(Activation act, const Tensor& x, const Tensor& grad_y, Tensor& grad_x, Context& ctx);

// Pointwise math functions, same contract as the activations: y = f(x), grad_x = grad_y * f'(x).
// Log of a negative number is NaN and of 0 is -inf; sqrt'(0) is +inf (as in PyTorch).
void unary_forward(UnaryOp op, const Tensor& x, Tensor& y, Context& ctx);
void unary_backward(UnaryOp op, const Tensor& x, const Tensor& grad_y, Tensor& grad_x, Context& ctx);

// y = min(max(x, lo), hi); grad_x = grad_y where lo <= x <= hi, else 0 (PyTorch's clamp gradient).
void clamp_forward(const Tensor& x, double lo, double hi, Tensor& y, Context& ctx);
void clamp_backward(const Tensor& x, double lo, double hi, const Tensor& grad_y, Tensor& grad_x,
                    Context& ctx);

// out = alpha * src broadcast to out's shape (src: out's shape, a row vector, a column vector or a scalar).
// The backward of a reduction (sum, mean) and the expansion of a per-row or per-column value.
void broadcast_to(const Tensor& src, double alpha, Tensor& out, Context& ctx);

// Fused epilogue of a linear layer: z += bias (row broadcast) in place, then a = act(z). `a` may alias `z`
// only for the identity activation. One pass over memory instead of two.
void bias_activation_forward(Activation act, const Tensor& bias, Tensor& z, Tensor& a, Context& ctx);

namespace detail {
void binary_cuda(BinaryOp op, const Tensor& a, BroadcastStrides sa, const Tensor& b, BroadcastStrides sb,
                 Tensor& out, Context& ctx);
void affine_cuda(const Tensor& a, double alpha, double beta, Tensor& out, Context& ctx);
void activation_forward_cuda(Activation act, const Tensor& x, Tensor& y, Context& ctx);
void activation_backward_cuda(Activation act, const Tensor& x, const Tensor& grad_y, Tensor& grad_x,
                              Context& ctx);
void unary_forward_cuda(UnaryOp op, const Tensor& x, Tensor& y, Context& ctx);
void unary_backward_cuda(UnaryOp op, const Tensor& x, const Tensor& grad_y, Tensor& grad_x, Context& ctx);
void clamp_forward_cuda(const Tensor& x, double lo, double hi, Tensor& y, Context& ctx);
void clamp_backward_cuda(const Tensor& x, double lo, double hi, const Tensor& grad_y, Tensor& grad_x,
                         Context& ctx);
void broadcast_to_cuda(const Tensor& src, BroadcastStrides s, double alpha, Tensor& out, Context& ctx);
void bias_activation_forward_cuda(Activation act, const Tensor& bias, Tensor& z, Tensor& a, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
