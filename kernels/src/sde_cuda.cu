// SDE family: CUDA launchers of the kernels in sde_kernels.cuh (their layout is described there).
#include "nsamp/core/cuda_check.h"
#include "nsamp/core/tensor.h"
#include "sde_kernels.cuh"

namespace nsamp::kernels::detail {

namespace {

template <class T>
void launch(const Tensor& x, const Tensor& nn, const Tensor& nt, const Tensor& g, const SdeStepCoef& k,
            std::uint64_t seed, philox::Offset offset, Tensor& xn, Tensor& R, const Tensor* cot, Tensor* ug,
            Context& ctx) {
  const std::int64_t B = x.rows(), d = x.cols();
  sde_step_kernel<T><<<grid_for(B * 32), kThreads, 0, ctx.stream()>>>(
      x.data<T>(), nn.data<T>(), nt.data<T>(), nt.numel() == B && B > 1, g.data<T>(), SdeCoef<T>(k),
      T(k.constant), seed, offset, xn.data<T>(), R.data<T>(), cot ? cot->data<T>() : nullptr,
      ug ? ug->data<T>() : nullptr, B, d);
}

}  // namespace

void truncated_normal_rows_cuda(Tensor& x, std::uint64_t seed, philox::Offset offset, std::uint64_t stride,
                                int rounds, double a, std::int64_t repeats, double scale, Context& ctx) {
  const std::int64_t n = x.numel(), d = x.cols();
  if (x.dtype() == DType::F32)
    truncated_normal_kernel<float><<<grid_for(n), kThreads, 0, ctx.stream()>>>(
        x.data<float>(), n, d, seed, offset, stride, rounds, float(a), repeats, float(scale));
  else
    truncated_normal_kernel<double><<<grid_for(n), kThreads, 0, ctx.stream()>>>(
        x.data<double>(), n, d, seed, offset, stride, rounds, a, repeats, scale);
  NSAMP_CUDA_CHECK_LAUNCH("truncated_normal_rows " + x.desc());
}

void log_variance_loss_cuda(const Tensor& R, std::int64_t group, double drop, double dim, Tensor& cot,
                            Tensor& stats, Context& ctx) {
  const std::int64_t B = R.numel(), groups = B / group;
  NSAMP_CHECK(groups < (std::int64_t(1) << 31), "log_variance_loss: ", groups, " groups exceed one grid");
  Tensor g = Tensor::empty(Shape{3 * groups + 1}, DType::F64, ctx);
  cudaStream_t s = ctx.stream();
  if (R.dtype() == DType::F32)
    lv_group_kernel<float>
        <<<unsigned(groups), kLvThreads, 0, s>>>(R.data<float>(), group, drop, g.data<double>());
  else
    lv_group_kernel<double>
        <<<unsigned(groups), kLvThreads, 0, s>>>(R.data<double>(), group, drop, g.data<double>());
  lv_total_kernel<<<1, kLvThreads, 0, s>>>(g.data<double>(), groups, dim, stats.data<double>());
  if (R.dtype() == DType::F32)
    lv_cot_kernel<float><<<grid_for(B), kThreads, 0, s>>>(R.data<float>(), B, group, drop, g.data<double>(),
                                                          groups, cot.data<float>());
  else
    lv_cot_kernel<double><<<grid_for(B), kThreads, 0, s>>>(R.data<double>(), B, group, drop, g.data<double>(),
                                                           groups, cot.data<double>());
  NSAMP_CUDA_CHECK_LAUNCH("log_variance_loss R " + R.desc() + " group " + std::to_string(group));
}

void kl_path_loss_cuda(const Tensor& R, double dim, Tensor& cot, Tensor& stats, Context& ctx) {
  const std::int64_t B = R.numel();
  if (R.dtype() == DType::F32)
    kl_kernel<float><<<1, kLvThreads, 0, ctx.stream()>>>(R.data<float>(), B, dim, cot.data<float>(),
                                                         stats.data<double>());
  else
    kl_kernel<double><<<1, kLvThreads, 0, ctx.stream()>>>(R.data<double>(), B, dim, cot.data<double>(),
                                                          stats.data<double>());
  NSAMP_CUDA_CHECK_LAUNCH("kl_path_loss R " + R.desc());
}

void sde_step_cuda(const Tensor& x, const Tensor& nn, const Tensor& nt, const Tensor& grad_e,
                   const SdeStepCoef& k, std::uint64_t seed, philox::Offset offset, Tensor& x_next, Tensor& R,
                   const Tensor* cot, Tensor* u_grad, Context& ctx) {
  if (x.dtype() == DType::F32)
    launch<float>(x, nn, nt, grad_e, k, seed, offset, x_next, R, cot, u_grad, ctx);
  else
    launch<double>(x, nn, nt, grad_e, k, seed, offset, x_next, R, cot, u_grad, ctx);
  NSAMP_CUDA_CHECK_LAUNCH("sde_step " + x.desc());
}

}  // namespace nsamp::kernels::detail
