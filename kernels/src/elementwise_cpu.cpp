// Elementwise family: checks, dispatch and CPU launchers (OpenMP loops over elementwise.h's element math).
#include <type_traits>

#include "nsamp/core/config.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/operands.h"

namespace nsamp::kernels {

namespace {

constexpr std::int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save

BroadcastStrides broadcast_strides(const char* op, const Tensor& x, const char* name, const Tensor& out) {
  const std::int64_t R = out.rows(), C = out.cols();
  if (x.shape() == out.shape()) return {C, 1};
  if (x.numel() == 1) return {0, 0};
  if (x.numel() == C && x.cols() == C && x.rows() == 1) return {0, 1};
  if (x.cols() == 1 && x.rows() == R && x.rank() >= 2) return {1, 0};
  NSAMP_FAIL(op, ": ", name, " ", x.desc(), " does not broadcast to the output ", out.desc(),
             " (allowed: the same shape, a row vector [", C, "], a column vector [", R, ", 1] or a scalar)");
}

template <class T>
void binary_cpu(BinaryOp op, const T* a, BroadcastStrides sa, const T* b, BroadcastStrides sb, T* out,
                std::int64_t R, std::int64_t C) {
#pragma omp parallel for schedule(static) if (R * C > kParallelMin)
  for (std::int64_t r = 0; r < R; ++r) {
    const T* ar = a + r * sa.row;
    const T* br = b + r * sb.row;
    T* o = out + r * C;
    for (std::int64_t c = 0; c < C; ++c) o[c] = binary_apply(op, ar[c * sa.col], br[c * sb.col]);
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
    if constexpr (kCudaBuilt) detail::binary_cuda(op, a, sa, b, sb, out, ctx);
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
    if constexpr (kCudaBuilt) detail::affine_cuda(a, alpha, beta, out, ctx);
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
    if constexpr (kCudaBuilt) detail::activation_forward_cuda(act, x, y, ctx);
    return;
  }
  auto run = [&](auto* o, const auto* in) {
    map_cpu(y.numel(), [=](std::int64_t i) { o[i] = kernels::activation_forward(act, in[i]); });
  };
  if (y.dtype() == DType::F32)
    run(y.data<float>(), x.data<float>());
  else
    run(y.data<double>(), x.data<double>());
}

void activation_backward(Activation act, const Tensor& x, const Tensor& grad_y, Tensor& grad_x,
                         Context& ctx) {
  check_operands("activation_backward", ctx, {{"grad_x", &grad_x}, {"x", &x}, {"grad_y", &grad_y}});
  check_shape("activation_backward", x, "x", grad_x.shape());
  check_shape("activation_backward", grad_y, "grad_y", grad_x.shape());
  if (grad_x.numel() == 0) return;
  if (grad_x.device().is_cuda()) {
    if constexpr (kCudaBuilt) detail::activation_backward_cuda(act, x, grad_y, grad_x, ctx);
    return;
  }
  auto run = [&](auto* gx, const auto* in, const auto* gy) {
    map_cpu(grad_x.numel(), [=](std::int64_t i) { gx[i] = gy[i] * activation_derivative(act, in[i]); });
  };
  if (grad_x.dtype() == DType::F32)
    run(grad_x.data<float>(), x.data<float>(), grad_y.data<float>());
  else
    run(grad_x.data<double>(), x.data<double>(), grad_y.data<double>());
}

}  // namespace nsamp::kernels
