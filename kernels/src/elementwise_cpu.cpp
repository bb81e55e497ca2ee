// Elementwise family: checks, dispatch and CPU launchers (OpenMP loops over elementwise.h's element math).
#include <cmath>
#include <string>
#include <type_traits>

#include "activation_cpu.h"
#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/operands.h"
#include "parallel_cpu.h"

namespace nsamp::kernels {

namespace {

using detail::kParallelMin;

BroadcastStrides broadcast_strides(const char* op, const Tensor& x, const char* name, const Tensor& out) {
  const std::int64_t R = out.rows(), C = out.cols();
  if (x.shape() == out.shape()) return {C, 1};
  if (x.numel() == 1) return {0, 0};
  if (x.numel() == C && x.cols() == C && x.rows() == 1) return {0, 1};
  if (x.cols() == 1 && x.rows() == R && x.rank() >= 2) return {1, 0};
  NSAMP_FAIL(op, ": ", name, " ", x.desc(), " does not broadcast to the output ", out.desc(),
             " (allowed: the same shape, a row vector [", C, "], a column vector [", R, ", 1] or a scalar)");
}

// The op and the column strides (1: along the row, 0: one value per row) as compile-time constants, so
// that the inner loop has neither a switch nor a strided load and vectorises.
template <class T, BinaryOp Op, bool ACols, bool BCols>
void binary_rows(const T* a, std::int64_t a_row, const T* b, std::int64_t b_row, T* out, std::int64_t R,
                 std::int64_t C) {
#pragma omp parallel for schedule(static) if (R * C > kParallelMin)
  for (std::int64_t r = 0; r < R; ++r) {
    const T* ar = a + r * a_row;
    const T* br = b + r * b_row;
    T* o = out + r * C;
    for (std::int64_t c = 0; c < C; ++c) o[c] = binary_apply(Op, ar[ACols ? c : 0], br[BCols ? c : 0]);
  }
}

template <class T, BinaryOp Op>
void binary_op_cpu(const T* a, BroadcastStrides sa, const T* b, BroadcastStrides sb, T* out, std::int64_t R,
                   std::int64_t C) {
  if (sa.col == 1 && sb.col == 1)
    binary_rows<T, Op, true, true>(a, sa.row, b, sb.row, out, R, C);
  else if (sa.col == 1)
    binary_rows<T, Op, true, false>(a, sa.row, b, sb.row, out, R, C);
  else if (sb.col == 1)
    binary_rows<T, Op, false, true>(a, sa.row, b, sb.row, out, R, C);
  else
    binary_rows<T, Op, false, false>(a, sa.row, b, sb.row, out, R, C);
}

template <class T>
void binary_cpu(BinaryOp op, const T* a, BroadcastStrides sa, const T* b, BroadcastStrides sb, T* out,
                std::int64_t R, std::int64_t C) {
  switch (op) {
    case BinaryOp::Add:
      return binary_op_cpu<T, BinaryOp::Add>(a, sa, b, sb, out, R, C);
    case BinaryOp::Sub:
      return binary_op_cpu<T, BinaryOp::Sub>(a, sa, b, sb, out, R, C);
    case BinaryOp::Mul:
      return binary_op_cpu<T, BinaryOp::Mul>(a, sa, b, sb, out, R, C);
    default:
      return binary_op_cpu<T, BinaryOp::Div>(a, sa, b, sb, out, R, C);
  }
}

template <class F>
void map_cpu(std::int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return "add";
    case BinaryOp::Sub:
      return "sub";
    case BinaryOp::Mul:
      return "mul";
    default:
      return "div";
  }
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::Identity:
      return "identity";
    case Activation::ReLU:
      return "relu";
    case Activation::SiLU:
      return "silu";
    case Activation::GELU:
      return "gelu";
    case Activation::Tanh:
      return "tanh";
    case Activation::Sigmoid:
      return "sigmoid";
    default:
      return "softplus";
  }
}

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
      return "neg";
    case UnaryOp::Exp:
      return "exp";
    case UnaryOp::Log:
      return "log";
    case UnaryOp::Sqrt:
      return "sqrt";
    case UnaryOp::Square:
      return "square";
    case UnaryOp::Sin:
      return "sin";
    default:
      return "cos";
  }
}

Activation parse_activation(const std::string& name) {
  for (Activation a : {Activation::Identity, Activation::ReLU, Activation::SiLU, Activation::GELU,
                       Activation::Tanh, Activation::Sigmoid, Activation::Softplus})
    if (name == activation_name(a)) return a;
  NSAMP_FAIL("activation: unknown name '", name, "' (identity, relu, silu, gelu, tanh, sigmoid, softplus)");
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, Context& ctx) {
  const char* name = binary_op_name(op);
  check_operands(name, ctx, {{"out", &out}, {"a", &a}, {"b", &b}});
  const BroadcastStrides sa = broadcast_strides(name, a, "a", out);
  const BroadcastStrides sb = broadcast_strides(name, b, "b", out);
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/binary");
      detail::binary_cuda(op, a, sa, b, sb, out, ctx);
    }
    return;
  }
  if (out.dtype() == DType::F32)
    binary_cpu(op, a.data<float>(), sa, b.data<float>(), sb, out.data<float>(), out.rows(), out.cols());
  else
    binary_cpu(op, a.data<double>(), sa, b.data<double>(), sb, out.data<double>(), out.rows(), out.cols());
}

void affine(const Tensor& a, double alpha, double beta, Tensor& out, Context& ctx) {
  check_operands("affine", ctx, {{"out", &out}, {"a", &a}});
  check_shape("affine", a, "a", out.shape());
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/affine");
      detail::affine_cuda(a, alpha, beta, out, ctx);
    }
    return;
  }
  auto run = [&](auto* o, const auto* x) {
    using T = std::remove_pointer_t<decltype(o)>;
    const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
    map_cpu(out.numel(), [=](std::int64_t i) { o[i] = al * x[i] + be; });
  };
  if (out.dtype() == DType::F32)
    run(out.data<float>(), a.data<float>());
  else
    run(out.data<double>(), a.data<double>());
}

void activation_forward(Activation act, const Tensor& x, Tensor& y, Context& ctx) {
  check_operands("activation_forward", ctx, {{"y", &y}, {"x", &x}});
  check_shape("activation_forward", x, "x", y.shape());
  if (y.numel() == 0) return;
  if (y.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/activation_forward");
      detail::activation_forward_cuda(act, x, y, ctx);
    }
    return;
  }
  if (y.dtype() == DType::F32) {
    detail::activation_forward_f32(act, y.numel(), x.data<float>(), y.data<float>());
    return;
  }
  const double* in = x.data<double>();
  double* o = y.data<double>();
  map_cpu(y.numel(), [=](std::int64_t i) { o[i] = kernels::activation_forward(act, in[i]); });
}

void activation_backward(Activation act, const Tensor& x, const Tensor& grad_y, Tensor& grad_x,
                         Context& ctx) {
  check_operands("activation_backward", ctx, {{"grad_x", &grad_x}, {"x", &x}, {"grad_y", &grad_y}});
  check_shape("activation_backward", x, "x", grad_x.shape());
  check_shape("activation_backward", grad_y, "grad_y", grad_x.shape());
  if (grad_x.numel() == 0) return;
  if (grad_x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/activation_backward");
      detail::activation_backward_cuda(act, x, grad_y, grad_x, ctx);
    }
    return;
  }
  if (grad_x.dtype() == DType::F32) {
    detail::activation_backward_f32(act, grad_x.numel(), x.data<float>(), grad_y.data<float>(),
                                    grad_x.data<float>());
    return;
  }
  const double *in = x.data<double>(), *gy = grad_y.data<double>();
  double* gx = grad_x.data<double>();
  map_cpu(grad_x.numel(), [=](std::int64_t i) { gx[i] = gy[i] * activation_derivative(act, in[i]); });
}

void unary_forward(UnaryOp op, const Tensor& x, Tensor& y, Context& ctx) {
  const std::string name = std::string("unary_forward(") + unary_op_name(op) + ")";
  check_operands(name.c_str(), ctx, {{"y", &y}, {"x", &x}});
  check_shape(name.c_str(), x, "x", y.shape());
  if (y.numel() == 0) return;
  if (y.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/unary_forward");
      detail::unary_forward_cuda(op, x, y, ctx);
    }
    return;
  }
  auto run = [&](auto* o, const auto* in) {
    map_cpu(y.numel(), [=](std::int64_t i) { o[i] = kernels::unary_forward(op, in[i]); });
  };
  if (y.dtype() == DType::F32)
    run(y.data<float>(), x.data<float>());
  else
    run(y.data<double>(), x.data<double>());
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& grad_y, Tensor& grad_x, Context& ctx) {
  const std::string name = std::string("unary_backward(") + unary_op_name(op) + ")";
  check_operands(name.c_str(), ctx, {{"grad_x", &grad_x}, {"x", &x}, {"grad_y", &grad_y}});
  check_shape(name.c_str(), x, "x", grad_x.shape());
  check_shape(name.c_str(), grad_y, "grad_y", grad_x.shape());
  if (grad_x.numel() == 0) return;
  if (grad_x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/unary_backward");
      detail::unary_backward_cuda(op, x, grad_y, grad_x, ctx);
    }
    return;
  }
  auto run = [&](auto* gx, const auto* in, const auto* gy) {
    map_cpu(grad_x.numel(), [=](std::int64_t i) { gx[i] = gy[i] * unary_derivative(op, in[i]); });
  };
  if (grad_x.dtype() == DType::F32)
    run(grad_x.data<float>(), x.data<float>(), grad_y.data<float>());
  else
    run(grad_x.data<double>(), x.data<double>(), grad_y.data<double>());
}

namespace {
void check_clamp_bounds(const char* op, double lo, double hi) {
  NSAMP_CHECK(!std::isnan(lo) && !std::isnan(hi), op, ": bounds must not be NaN (lo ", lo, ", hi ", hi,
              "); use -inf or +inf for a one-sided clamp");
}
}  // namespace

void clamp_forward(const Tensor& x, double lo, double hi, Tensor& y, Context& ctx) {
  check_operands("clamp_forward", ctx, {{"y", &y}, {"x", &x}});
  check_shape("clamp_forward", x, "x", y.shape());
  check_clamp_bounds("clamp_forward", lo, hi);
  if (y.numel() == 0) return;
  if (y.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/clamp_forward");
      detail::clamp_forward_cuda(x, lo, hi, y, ctx);
    }
    return;
  }
  auto run = [&](auto* o, const auto* in) {
    using T = std::remove_pointer_t<decltype(o)>;
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    map_cpu(y.numel(), [=](std::int64_t i) { o[i] = clamp_value(in[i], l, h); });
  };
  if (y.dtype() == DType::F32)
    run(y.data<float>(), x.data<float>());
  else
    run(y.data<double>(), x.data<double>());
}

void clamp_backward(const Tensor& x, double lo, double hi, const Tensor& grad_y, Tensor& grad_x,
                    Context& ctx) {
  check_operands("clamp_backward", ctx, {{"grad_x", &grad_x}, {"x", &x}, {"grad_y", &grad_y}});
  check_shape("clamp_backward", x, "x", grad_x.shape());
  check_shape("clamp_backward", grad_y, "grad_y", grad_x.shape());
  check_clamp_bounds("clamp_backward", lo, hi);
  if (grad_x.numel() == 0) return;
  if (grad_x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/clamp_backward");
      detail::clamp_backward_cuda(x, lo, hi, grad_y, grad_x, ctx);
    }
    return;
  }
  auto run = [&](auto* gx, const auto* in, const auto* gy) {
    using T = std::remove_pointer_t<decltype(gx)>;
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    map_cpu(grad_x.numel(), [=](std::int64_t i) { gx[i] = clamp_grad(in[i], l, h, gy[i]); });
  };
  if (grad_x.dtype() == DType::F32)
    run(grad_x.data<float>(), x.data<float>(), grad_y.data<float>());
  else
    run(grad_x.data<double>(), x.data<double>(), grad_y.data<double>());
}

void broadcast_to(const Tensor& src, double alpha, Tensor& out, Context& ctx) {
  check_operands("broadcast_to", ctx, {{"out", &out}, {"src", &src}});
  const BroadcastStrides s = broadcast_strides("broadcast_to", src, "src", out);
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/broadcast_to");
      detail::broadcast_to_cuda(src, s, alpha, out, ctx);
    }
    return;
  }
  auto run = [&](auto* o, const auto* in) {
    using T = std::remove_pointer_t<decltype(o)>;
    const T al = static_cast<T>(alpha);
    const std::int64_t R = out.rows(), C = out.cols();
#pragma omp parallel for schedule(static) if (R * C > kParallelMin)
    for (std::int64_t r = 0; r < R; ++r) {
      const T* sr = in + r * s.row;
      T* orow = o + r * C;
      for (std::int64_t c = 0; c < C; ++c) orow[c] = al * sr[c * s.col];
    }
  };
  if (out.dtype() == DType::F32)
    run(out.data<float>(), src.data<float>());
  else
    run(out.data<double>(), src.data<double>());
}

void bias_activation_forward(Activation act, const Tensor& bias, Tensor& z, Tensor& a, Context& ctx) {
  const std::string name = std::string("bias_activation_forward(") + activation_name(act) + ")";
  const char* op = name.c_str();
  check_operands(op, ctx, {{"a", &a}, {"z", &z}, {"bias", &bias}});
  check_no_partial_overlap(op, z, bias, "bias");
  check_shape(op, z, "z", a.shape());
  const std::int64_t C = z.cols();
  NSAMP_CHECK(bias.numel() == C && bias.rows() == 1, op, ": bias ", bias.desc(),
              " must be a row vector of z's ", C, " columns ([", C, "] or [1, ", C, "]); z ", z.desc());
  // The backward pass of a non-identity activation needs z: `a` must not overwrite it.
  const bool aliased = a.same_storage(z) && a.storage_offset() == z.storage_offset();
  NSAMP_CHECK(act == Activation::Identity || !aliased, op, ": a ", a.desc(),
              " shares memory with z; a may alias z only for the identity activation");
  if (z.numel() == 0) return;
  if (z.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("elementwise/bias_activation_forward");
      detail::bias_activation_forward_cuda(act, bias, z, a, ctx);
    }
    return;
  }
  const std::int64_t R = z.rows();
  if (z.dtype() == DType::F32) {
    detail::bias_activation_forward_f32(act, R, C, bias.data<float>(), z.data<float>(), a.data<float>());
    return;
  }
  double *pa = a.data<double>(), *pz = z.data<double>();
  const double* pb = bias.data<double>();
#pragma omp parallel for schedule(static) if (R * C > kParallelMin)
  for (std::int64_t r = 0; r < R; ++r) {
    for (std::int64_t c = 0; c < C; ++c) {
      const double v = pz[r * C + c] + pb[c];
      pz[r * C + c] = v;
      pa[r * C + c] = kernels::activation_forward(act, v);
    }
  }
}

}  // namespace nsamp::kernels
