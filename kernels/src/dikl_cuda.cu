// DiKL family: CUDA launchers. Elementwise passes for the levels, proposals and tilt; one thread per group
// for Gumbel-max (n is a few to a few hundred); the acceptance sum of one batch in a single block, float64.
#include <cub/block/block_reduce.cuh>

#include "launch_cuda.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/kernels/dikl.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void levels_kernel(const double* __restrict__ u, const double* __restrict__ tab, int L,
                              T* __restrict__ tm, T* __restrict__ al, T* __restrict__ sg, T* __restrict__ wt,
                              std::int64_t B) {
  NSAMP_GRID_STRIDE(i, B) {
    const int k = dikl_level(u[i], L);
    tm[i] = T(double(k));
    al[i] = T(tab[k]);
    sg[i] = T(tab[L + k]);
    wt[i] = T(tab[2 * L + k]);
  }
}

template <class T>
__global__ void proposals_kernel(const T* __restrict__ xt, const T* __restrict__ a, const T* __restrict__ s,
                                 const T* __restrict__ xi, std::int64_t n, std::int64_t d, T* __restrict__ x0,
                                 T* __restrict__ xr, T* __restrict__ ar, T* __restrict__ cr,
                                 std::int64_t total) {
  NSAMP_GRID_STRIDE(i, total) {
    const std::int64_t p = i / d, j = i % d, b = p / n;
    const ProposalCoef c = proposal_coef(double(a[b]), double(s[b]));
    xr[i] = xt[b * d + j];
    x0[i] = proposal_value(xt[b * d + j], xi[i], c);
    if (j == 0) {
      ar[p] = a[b];
      cr[p] = T(c.c);
    }
  }
}

template <class T>
__global__ void tilt_coef_kernel(const T* __restrict__ s, T* __restrict__ c, std::int64_t B) {
  NSAMP_GRID_STRIDE(i, B) c[i] = T(0.5 / (double(s[i]) * double(s[i])));
}

template <class T>
__global__ void gumbel_kernel(const T* __restrict__ lw, std::int64_t n, std::uint64_t seed,
                              philox::Offset offset, std::int32_t* __restrict__ rows, std::int64_t G) {
  const std::uint64_t off = offset.value();
  NSAMP_GRID_STRIDE(g, G) {
    double best = -INFINITY;
    std::int64_t pick = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::uint64_t k = std::uint64_t(g * n + i);
      double u[2];
      philox::uniform_block(seed, off + k / 2, u);
      const double v = double(lw[k]) - log(-log(u[k % 2]));  // NaN never compares greater
      if (v > best) best = v, pick = i;
    }
    rows[g] = std::int32_t(g * n + pick);
  }
}

constexpr int kAThreads = 256;

template <class T>
__global__ void adapt_kernel(const T* __restrict__ acc, std::int64_t B, std::int64_t steps, bool adaptive,
                             double* step, double* rate) {
  using Reduce = cub::BlockReduce<double, kAThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  double s = 0;
  for (std::int64_t i = threadIdx.x; i < B; i += kAThreads) s += double(acc[i]);
  s = Reduce(tmp).Sum(s);
  if (threadIdx.x == 0) {
    const double r = s / (double(steps) * double(B));
    *rate = r;
    if (adaptive) {
      if (r > 0.6) *step *= 1.5;
      if (r < 0.5) *step /= 1.5;
    }
  }
}

template <class T>
__global__ void record_kernel(const T* v, double* dst, bool accumulate) {
  *dst = accumulate ? *dst + double(*v) : double(*v);
}

}  // namespace

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
