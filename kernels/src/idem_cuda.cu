// iDEM / IW-SM family: CUDA launchers. Elementwise passes for the noise levels and buffer indices; the
// importance weights of one batch in a single block (B is a few hundred to a few thousand), float64 sums.
#include <math_constants.h>
#include <cub/block/block_reduce.cuh>

#include "launch_cuda.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/kernels/idem.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void noise_levels_kernel(const double* __restrict__ t, VeLevels v, T* __restrict__ tc,
                                    T* __restrict__ sg, T* __restrict__ sx, T* __restrict__ sc,
                                    double* __restrict__ sh, double* __restrict__ la, std::int64_t B) {
  NSAMP_GRID_STRIDE(i, B) store_ve(ve_element(t[i], v), i, tc, sg, sx, sc, sh, la);
}

constexpr int kWThreads = 512;
using WReduce = cub::BlockReduce<double, kWThreads>;

__device__ __forceinline__ bool finite(double x) { return x - x == 0; }

struct MaxOp {
  __device__ __forceinline__ double operator()(double a, double b) const { return fmax(a, b); }
};

template <class T>
__global__ void loss_weights_kernel(const T* __restrict__ log_p, const T* __restrict__ ks,
                                    const double* __restrict__ shift, const double* __restrict__ lambda,
                                    double dim, std::int64_t B, T* __restrict__ coef,
                                    double* __restrict__ ess) {
  __shared__ typename WReduce::TempStorage tmp;
  __shared__ double s_m, s_s;
  auto l_at = [&](std::int64_t i) { return double(log_p[i]) - double(T(double(ks[i]) + shift[i])); };
  if (!log_p) {
    for (std::int64_t i = threadIdx.x; i < B; i += kWThreads)
      coef[i] = T(lambda[i] * (1.0 / double(B)) / dim);
    if (threadIdx.x == 0) *ess = 1.0;
    return;
  }
  double m = -CUDART_INF;
  for (std::int64_t i = threadIdx.x; i < B; i += kWThreads) {
    const double l = l_at(i);
    if (finite(l)) m = fmax(m, l);
  }
  m = WReduce(tmp).Reduce(m, MaxOp());
  if (threadIdx.x == 0) s_m = m;
  __syncthreads();
  m = s_m;
  double s = 0;
  for (std::int64_t i = threadIdx.x; i < B; i += kWThreads) {
    const double l = l_at(i);
    s += finite(l) ? exp(l - m) : 0.0;
  }
  s = WReduce(tmp).Sum(s);
  if (threadIdx.x == 0) s_s = finite(m) ? s : CUDART_NAN;
  __syncthreads();
  s = s_s;
  double s2 = 0;
  for (std::int64_t i = threadIdx.x; i < B; i += kWThreads) {
    const double l = l_at(i);
    const double w = (finite(l) ? exp(l - m) : 0.0) / s;
    s2 += w * w;
    coef[i] = T(lambda[i] * w / dim);
  }
  __syncthreads();
  s2 = WReduce(tmp).Sum(s2);
  if (threadIdx.x == 0) *ess = 1.0 / (double(B) * s2);
}

__global__ void buffer_indices_kernel(const double* __restrict__ u, std::int64_t size, std::int32_t* idx,
                                      std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) {
    const std::int64_t k = std::int64_t(u[i] * double(size));
    idx[i] = std::int32_t(k < size - 1 ? k : size - 1);
  }
}

template <class T>
__global__ void accumulate_kernel(const T* loss, const double* ess, double* acc) {
  const double l = double(*loss);
  acc[0] += l;
  acc[1] += *ess;
  if (finite(l)) acc[2] += l, acc[3] += 1;
}

}  // namespace

void idem_noise_levels_cuda(const Tensor& t, const VeLevels& v, Tensor& t_col, Tensor& sigma, Tensor& sigma_x,
                            Tensor& scale, Tensor& shift, Tensor& lambda, Context& ctx) {
  const std::int64_t B = t.numel();
  if (t_col.dtype() == DType::F32)
    noise_levels_kernel<float><<<grid_for(B), kThreads, 0, ctx.stream()>>>(
        t.data<double>(), v, t_col.data<float>(), sigma.data<float>(), sigma_x.data<float>(),
        scale.data<float>(), shift.data<double>(), lambda.data<double>(), B);
  else
    noise_levels_kernel<double><<<grid_for(B), kThreads, 0, ctx.stream()>>>(
        t.data<double>(), v, t_col.data<double>(), sigma.data<double>(), sigma_x.data<double>(),
        scale.data<double>(), shift.data<double>(), lambda.data<double>(), B);
  NSAMP_CUDA_CHECK_LAUNCH("idem_noise_levels " + t.desc());
}

void idem_loss_weights_cuda(const Tensor* log_p, const Tensor* kernel_sum, const Tensor& shift,
                            const Tensor& lambda, double dim, Tensor& coef, Tensor& ess, Context& ctx) {
  const std::int64_t B = coef.numel();
  if (coef.dtype() == DType::F32)
    loss_weights_kernel<float><<<1, kWThreads, 0, ctx.stream()>>>(
        log_p ? log_p->data<float>() : nullptr, log_p ? kernel_sum->data<float>() : nullptr,
        shift.data<double>(), lambda.data<double>(), dim, B, coef.data<float>(), ess.data<double>());
  else
    loss_weights_kernel<double><<<1, kWThreads, 0, ctx.stream()>>>(
        log_p ? log_p->data<double>() : nullptr, log_p ? kernel_sum->data<double>() : nullptr,
        shift.data<double>(), lambda.data<double>(), dim, B, coef.data<double>(), ess.data<double>());
  NSAMP_CUDA_CHECK_LAUNCH("idem_loss_weights coef " + coef.desc());
}

void buffer_indices_cuda(const Tensor& u, std::int64_t size, Tensor& idx, Context& ctx) {
  const std::int64_t n = u.numel();
  buffer_indices_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(u.data<double>(), size,
                                                                    idx.data<std::int32_t>(), n);
  NSAMP_CUDA_CHECK_LAUNCH("buffer_indices " + u.desc());
}

void idem_accumulate_cuda(const Tensor& loss, const Tensor& ess, Tensor& acc, Context& ctx) {
  if (loss.dtype() == DType::F32)
    accumulate_kernel<float>
        <<<1, 1, 0, ctx.stream()>>>(loss.data<float>(), ess.data<double>(), acc.data<double>());
  else
    accumulate_kernel<double>
        <<<1, 1, 0, ctx.stream()>>>(loss.data<double>(), ess.data<double>(), acc.data<double>());
  NSAMP_CUDA_CHECK_LAUNCH("idem_accumulate");
}

}  // namespace nsamp::kernels::detail
