// DiKL family: CUDA launchers of the kernels in dikl_kernels.cuh (their layout is described there).
#include "dikl_kernels.cuh"
#include "nsamp/core/cuda_check.h"

namespace nsamp::kernels::detail {

void dikl_levels_cuda(const Tensor& u, const Tensor& table, Tensor& time, Tensor& alpha, Tensor& sigma,
                      Tensor& weight, Context& ctx) {
  const std::int64_t B = u.numel();
  const int L = int(table.cols());
  if (time.dtype() == DType::F32)
    levels_kernel<float><<<grid_for(B), kThreads, 0, ctx.stream()>>>(
        u.data<double>(), table.data<double>(), L, time.data<float>(), alpha.data<float>(),
        sigma.data<float>(), weight.data<float>(), B);
  else
    levels_kernel<double><<<grid_for(B), kThreads, 0, ctx.stream()>>>(
        u.data<double>(), table.data<double>(), L, time.data<double>(), alpha.data<double>(),
        sigma.data<double>(), weight.data<double>(), B);
  NSAMP_CUDA_CHECK_LAUNCH("dikl_levels " + u.desc());
}

void dikl_proposals_cuda(const Tensor& xt, const Tensor& a, const Tensor& s, const Tensor& xi, std::int64_t n,
                         Tensor& x0, Tensor& xt_rep, Tensor& a_rep, Tensor& c_rep, Context& ctx) {
  const std::int64_t d = xt.cols(), total = x0.numel();
  if (x0.dtype() == DType::F32)
    proposals_kernel<float><<<grid_for(total), kThreads, 0, ctx.stream()>>>(
        xt.data<float>(), a.data<float>(), s.data<float>(), xi.data<float>(), n, d, x0.data<float>(),
        xt_rep.data<float>(), a_rep.data<float>(), c_rep.data<float>(), total);
  else
    proposals_kernel<double><<<grid_for(total), kThreads, 0, ctx.stream()>>>(
        xt.data<double>(), a.data<double>(), s.data<double>(), xi.data<double>(), n, d, x0.data<double>(),
        xt_rep.data<double>(), a_rep.data<double>(), c_rep.data<double>(), total);
  NSAMP_CUDA_CHECK_LAUNCH("dikl_proposals " + x0.desc());
}

void tilt_coefficient_cuda(const Tensor& s, Tensor& c, Context& ctx) {
  const std::int64_t B = s.numel();
  if (c.dtype() == DType::F32)
    tilt_coef_kernel<float><<<grid_for(B), kThreads, 0, ctx.stream()>>>(s.data<float>(), c.data<float>(), B);
  else
    tilt_coef_kernel<double>
        <<<grid_for(B), kThreads, 0, ctx.stream()>>>(s.data<double>(), c.data<double>(), B);
  NSAMP_CUDA_CHECK_LAUNCH("tilt_coefficient " + s.desc());
}

void gumbel_max_rows_cuda(const Tensor& log_w, std::int64_t n, std::uint64_t seed, philox::Offset offset,
                          Tensor& rows, Context& ctx) {
  const std::int64_t G = rows.numel();
  if (log_w.dtype() == DType::F32)
    gumbel_kernel<float><<<grid_for(G), kThreads, 0, ctx.stream()>>>(log_w.data<float>(), n, seed, offset,
                                                                     rows.data<std::int32_t>(), G);
  else
    gumbel_kernel<double><<<grid_for(G), kThreads, 0, ctx.stream()>>>(log_w.data<double>(), n, seed, offset,
                                                                      rows.data<std::int32_t>(), G);
  NSAMP_CUDA_CHECK_LAUNCH("gumbel_max_rows " + log_w.desc());
}

void mala_adapt_cuda(const Tensor& accepted, std::int64_t steps, bool adaptive, Tensor& step, Tensor& rate,
                     Context& ctx) {
  const std::int64_t B = accepted.numel();
  if (accepted.dtype() == DType::F32)
    adapt_kernel<float><<<1, kAThreads, 0, ctx.stream()>>>(accepted.data<float>(), B, steps, adaptive,
                                                           step.data<double>(), rate.data<double>());
  else
    adapt_kernel<double><<<1, kAThreads, 0, ctx.stream()>>>(accepted.data<double>(), B, steps, adaptive,
                                                            step.data<double>(), rate.data<double>());
  NSAMP_CUDA_CHECK_LAUNCH("mala_adapt " + accepted.desc());
}

void record_scalar_cuda(const Tensor& value, Tensor& stats, std::int64_t slot, bool accumulate,
                        Context& ctx) {
  double* dst = stats.data<double>() + slot;
  if (value.dtype() == DType::F32)
    record_kernel<float><<<1, 1, 0, ctx.stream()>>>(value.data<float>(), dst, accumulate);
  else
    record_kernel<double><<<1, 1, 0, ctx.stream()>>>(value.data<double>(), dst, accumulate);
  NSAMP_CUDA_CHECK_LAUNCH("record_scalar " + value.desc());
}

}  // namespace nsamp::kernels::detail
