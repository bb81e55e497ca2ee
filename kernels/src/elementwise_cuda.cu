// Elementwise family: CUDA launchers. The op and the activation are template parameters, so each kernel is
// a straight-line loop over elementwise.h's element math.
#include "launch_cuda.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/kernels/elementwise.h"

namespace nsamp::kernels::detail {

namespace {

template <BinaryOp Op, class T>
__global__ void binary_kernel(const T* a, BroadcastStrides sa, const T* b, BroadcastStrides sb, T* out,
                              std::int64_t n, std::int64_t C) {
  NSAMP_GRID_STRIDE(i, n) {
    const std::int64_t r = i / C, c = i - r * C;
    out[i] = binary_apply(Op, a[r * sa.row + c * sa.col], b[r * sb.row + c * sb.col]);
  }
}

template <class T>
__global__ void affine_kernel(const T* a, T alpha, T beta, T* out, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) out[i] = alpha * a[i] + beta;
}

template <Activation Act, class T>
__global__ void act_forward_kernel(const T* x, T* y, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) y[i] = activation_forward(Act, x[i]);
}

template <Activation Act, class T>
__global__ void act_backward_kernel(const T* x, const T* gy, T* gx, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) gx[i] = gy[i] * activation_derivative(Act, x[i]);
}

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

// Calls f(std::integral_constant<Activation, A>) for the runtime activation.
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

}  // namespace nsamp::kernels::detail
