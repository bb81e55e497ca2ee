// Elementwise family: binary arithmetic with broadcasting, affine maps, activations forward and backward.
//
// Broadcasting works on the 2-D view [R, C] of the output (leading dimensions folded into rows): each input
// is either the output's shape, a row vector (C elements: [C] or [1, C]), a column vector ([R, 1]) or a
// scalar (one element). An output may alias an input of its own shape.
#pragma once

#include <string>

#include "nsamp/core/hd.h"
#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

enum class BinaryOp { Add, Sub, Mul, Div };
enum class Activation { Identity, ReLU, SiLU, GELU, Tanh, Sigmoid, Softplus };

const char* binary_op_name(BinaryOp op);
const char* activation_name(Activation act);
Activation parse_activation(const std::string& name);  // "relu", "silu", "gelu", ...

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
  // Two branches so that exp never overflows.
  if (x >= T(0)) return T(1) / (T(1) + hd::exp(-x));
  const T e = hd::exp(x);
  return e / (T(1) + e);
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

namespace detail {
void binary_cuda(BinaryOp op, const Tensor& a, BroadcastStrides sa, const Tensor& b, BroadcastStrides sb,
                 Tensor& out, Context& ctx);
void affine_cuda(const Tensor& a, double alpha, double beta, Tensor& out, Context& ctx);
void activation_forward_cuda(Activation act, const Tensor& x, Tensor& y, Context& ctx);
void activation_backward_cuda(Activation act, const Tensor& x, const Tensor& grad_y, Tensor& grad_x,
                              Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
