// Elementwise family: CUDA launchers of the kernels in elementwise_kernels.cuh.
#include "elementwise_kernels.cuh"
#include "nsamp/core/cuda_check.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
void binary_typed(BinaryOp op, const Tensor& a, BroadcastStrides sa, const Tensor& b, BroadcastStrides sb,
                  Tensor& out, Context& ctx) {
  const std::int64_t n = out.numel(), C = out.cols();
  const int grid = grid_for(n);
  cudaStream_t s = ctx.stream();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  switch (op) {
    case BinaryOp::Add:
      binary_kernel<BinaryOp::Add><<<grid, kThreads, 0, s>>>(pa, sa, pb, sb, po, n, C);
      break;
    case BinaryOp::Sub:
      binary_kernel<BinaryOp::Sub><<<grid, kThreads, 0, s>>>(pa, sa, pb, sb, po, n, C);
      break;
    case BinaryOp::Mul:
      binary_kernel<BinaryOp::Mul><<<grid, kThreads, 0, s>>>(pa, sa, pb, sb, po, n, C);
      break;
    case BinaryOp::Div:
      binary_kernel<BinaryOp::Div><<<grid, kThreads, 0, s>>>(pa, sa, pb, sb, po, n, C);
      break;
  }
  NSAMP_CUDA_CHECK_LAUNCH(std::string(binary_op_name(op)) + " " + out.desc());
}

// Calls f(std::integral_constant<UnaryOp, Op>) for the runtime op.
template <class F>
void with_unary(UnaryOp op, F&& f) {
  switch (op) {
    case UnaryOp::Neg:
      f(std::integral_constant<UnaryOp, UnaryOp::Neg>{});
      break;
    case UnaryOp::Exp:
      f(std::integral_constant<UnaryOp, UnaryOp::Exp>{});
      break;
    case UnaryOp::Log:
      f(std::integral_constant<UnaryOp, UnaryOp::Log>{});
      break;
    case UnaryOp::Sqrt:
      f(std::integral_constant<UnaryOp, UnaryOp::Sqrt>{});
      break;
    case UnaryOp::Square:
      f(std::integral_constant<UnaryOp, UnaryOp::Square>{});
      break;
    case UnaryOp::Sin:
      f(std::integral_constant<UnaryOp, UnaryOp::Sin>{});
      break;
    case UnaryOp::Cos:
      f(std::integral_constant<UnaryOp, UnaryOp::Cos>{});
      break;
  }
}

}  // namespace

void binary_cuda(BinaryOp op, const Tensor& a, BroadcastStrides sa, const Tensor& b, BroadcastStrides sb,
                 Tensor& out, Context& ctx) {
  if (out.dtype() == DType::F32)
    binary_typed<float>(op, a, sa, b, sb, out, ctx);
  else
    binary_typed<double>(op, a, sa, b, sb, out, ctx);
}

void affine_cuda(const Tensor& a, double alpha, double beta, Tensor& out, Context& ctx) {
  const std::int64_t n = out.numel();
  if (out.dtype() == DType::F32)
    affine_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(a.data<float>(), float(alpha), float(beta),
                                                              out.data<float>(), n);
  else
    affine_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(a.data<double>(), alpha, beta,
                                                              out.data<double>(), n);
  NSAMP_CUDA_CHECK_LAUNCH("affine " + out.desc());
}

void activation_forward_cuda(Activation act, const Tensor& x, Tensor& y, Context& ctx) {
  const std::int64_t n = y.numel();
  with_activation(act, [&](auto a) {
    if (y.dtype() == DType::F32)
      act_forward_kernel<decltype(a)::value>
          <<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<float>(), y.data<float>(), n);
    else
      act_forward_kernel<decltype(a)::value>
          <<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<double>(), y.data<double>(), n);
  });
  NSAMP_CUDA_CHECK_LAUNCH(std::string("activation_forward ") + activation_name(act) + " " + y.desc());
}

void activation_backward_cuda(Activation act, const Tensor& x, const Tensor& grad_y, Tensor& grad_x,
                              Context& ctx) {
  const std::int64_t n = grad_x.numel();
  with_activation(act, [&](auto a) {
    if (grad_x.dtype() == DType::F32)
      act_backward_kernel<decltype(a)::value><<<grid_for(n), kThreads, 0, ctx.stream()>>>(
          x.data<float>(), grad_y.data<float>(), grad_x.data<float>(), n);
    else
      act_backward_kernel<decltype(a)::value><<<grid_for(n), kThreads, 0, ctx.stream()>>>(
          x.data<double>(), grad_y.data<double>(), grad_x.data<double>(), n);
  });
  NSAMP_CUDA_CHECK_LAUNCH(std::string("activation_backward ") + activation_name(act) + " " + grad_x.desc());
}

void unary_forward_cuda(UnaryOp op, const Tensor& x, Tensor& y, Context& ctx) {
  const std::int64_t n = y.numel();
  with_unary(op, [&](auto o) {
    if (y.dtype() == DType::F32)
      unary_forward_kernel<decltype(o)::value>
          <<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<float>(), y.data<float>(), n);
    else
      unary_forward_kernel<decltype(o)::value>
          <<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<double>(), y.data<double>(), n);
  });
  NSAMP_CUDA_CHECK_LAUNCH(std::string("unary_forward ") + unary_op_name(op) + " " + y.desc());
}

void unary_backward_cuda(UnaryOp op, const Tensor& x, const Tensor& grad_y, Tensor& grad_x, Context& ctx) {
  const std::int64_t n = grad_x.numel();
  with_unary(op, [&](auto o) {
    if (grad_x.dtype() == DType::F32)
      unary_backward_kernel<decltype(o)::value><<<grid_for(n), kThreads, 0, ctx.stream()>>>(
          x.data<float>(), grad_y.data<float>(), grad_x.data<float>(), n);
    else
      unary_backward_kernel<decltype(o)::value><<<grid_for(n), kThreads, 0, ctx.stream()>>>(
          x.data<double>(), grad_y.data<double>(), grad_x.data<double>(), n);
  });
  NSAMP_CUDA_CHECK_LAUNCH(std::string("unary_backward ") + unary_op_name(op) + " " + grad_x.desc());
}

void clamp_forward_cuda(const Tensor& x, double lo, double hi, Tensor& y, Context& ctx) {
  const std::int64_t n = y.numel();
  if (y.dtype() == DType::F32)
    clamp_forward_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<float>(), float(lo), float(hi),
                                                                     y.data<float>(), n);
  else
    clamp_forward_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<double>(), lo, hi,
                                                                     y.data<double>(), n);
  NSAMP_CUDA_CHECK_LAUNCH("clamp_forward " + y.desc());
}

void clamp_backward_cuda(const Tensor& x, double lo, double hi, const Tensor& grad_y, Tensor& grad_x,
                         Context& ctx) {
  const std::int64_t n = grad_x.numel();
  if (grad_x.dtype() == DType::F32)
    clamp_backward_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(
        x.data<float>(), float(lo), float(hi), grad_y.data<float>(), grad_x.data<float>(), n);
  else
    clamp_backward_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(
        x.data<double>(), lo, hi, grad_y.data<double>(), grad_x.data<double>(), n);
  NSAMP_CUDA_CHECK_LAUNCH("clamp_backward " + grad_x.desc());
}

void broadcast_to_cuda(const Tensor& src, BroadcastStrides s, double alpha, Tensor& out, Context& ctx) {
  const std::int64_t n = out.numel(), C = out.cols();
  if (out.dtype() == DType::F32)
    broadcast_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(src.data<float>(), s, float(alpha),
                                                                 out.data<float>(), n, C);
  else
    broadcast_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(src.data<double>(), s, alpha,
                                                                 out.data<double>(), n, C);
  NSAMP_CUDA_CHECK_LAUNCH("broadcast_to " + src.desc() + " -> " + out.desc());
}

void bias_activation_forward_cuda(Activation act, const Tensor& bias, Tensor& z, Tensor& a, Context& ctx) {
  const std::int64_t n = z.numel(), C = z.cols();
  with_activation(act, [&](auto ac) {
    if (z.dtype() == DType::F32)
      bias_act_kernel<decltype(ac)::value><<<grid_for(n), kThreads, 0, ctx.stream()>>>(
          bias.data<float>(), z.data<float>(), a.data<float>(), n, C);
    else
      bias_act_kernel<decltype(ac)::value><<<grid_for(n), kThreads, 0, ctx.stream()>>>(
          bias.data<double>(), z.data<double>(), a.data<double>(), n, C);
  });
  NSAMP_CUDA_CHECK_LAUNCH(std::string("bias_activation_forward ") + activation_name(act) + " " + z.desc());
}

}  // namespace nsamp::kernels::detail
