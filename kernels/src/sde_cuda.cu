// SDE family: CUDA launcher. One warp per path: each lane draws the Philox normals of its elements (the
// same counters as fill_normal_at, one block per element: Philox is cheap next to the memory traffic), and
// the row's dR is a shuffle reduction, added by lane 0.
#include <cub/block/block_reduce.cuh>

#include <math_constants.h>
#include "launch_cuda.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/core/philox.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/sde.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void sde_step_kernel(const T* x, const T* __restrict__ nn, const T* __restrict__ nt,
                                bool nt_per_row, const T* __restrict__ g, SdeCoef<T> k, T constant,
                                std::uint64_t seed, philox::Offset offset, T* xn, T* __restrict__ R,
                                const T* __restrict__ cot, T* __restrict__ ug, std::int64_t B,
                                std::int64_t d) {
  constexpr int kPer = philox::values_per_counter<T>();
  const std::uint64_t off = offset.value();
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t b = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); b < B; b += warps) {
    const T ntb = nt[nt_per_row ? b : 0];
    const T cb = ug ? cot[b] : T(0);
    T dr = 0;
    for (std::int64_t j = lane; j < d; j += 32) {
      const std::int64_t i = b * d + j;
      T block[kPer];
      philox::normal_block(seed, off + std::uint64_t(i / kPer), block);
      T w;
      dr += sde_element(x[i], nn[i], ntb, g[i], block[i % kPer], k, &xn[i], &w);
      if (ug) ug[i] = cb * w;
    }
    for (int m = 16; m > 0; m >>= 1) dr += __shfl_xor_sync(0xffffffffu, dr, m);
    if (lane == 0) R[b] += dr + constant;
  }
}

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

template <class T>
__global__ void truncated_normal_kernel(T* __restrict__ x, std::int64_t n, std::int64_t d, std::uint64_t seed,
                                        philox::Offset offset, std::uint64_t stride, int rounds, T a,
                                        std::int64_t repeats, T scale) {
  const std::uint64_t off = offset.value();
  NSAMP_GRID_STRIDE(i, n) {
    const std::int64_t r = i / d, c = i - r * d;
    x[i] = scale * truncated_normal_element<T>(seed, off, stride, rounds, a, (r / repeats) * d + c);
  }
}

constexpr int kLvThreads = 256;
using LvReduce = cub::BlockReduce<double, kLvThreads>;

// One block per group: its usable count, mean and unbiased variance into g[3 group_index ..].
template <class T>
__global__ void lv_group_kernel(const T* __restrict__ R, std::int64_t group, double drop,
                                double* __restrict__ g) {
  __shared__ typename LvReduce::TempStorage tmp;
  __shared__ double s_mean;
  const std::int64_t gi = blockIdx.x;
  const T* r = R + gi * group;
  double sum = 0, n = 0;
  for (std::int64_t j = threadIdx.x; j < group; j += kLvThreads) {
    const double v = double(r[j]);
    if (lv_usable(v, drop)) sum += v, n += 1;
  }
  sum = LvReduce(tmp).Sum(sum);
  __syncthreads();
  n = LvReduce(tmp).Sum(n);
  if (threadIdx.x == 0) s_mean = n > 0 ? sum / n : 0.0;
  __syncthreads();
  const double mean = s_mean;
  double var = 0;
  for (std::int64_t j = threadIdx.x; j < group; j += kLvThreads) {
    const double v = double(r[j]);
    if (lv_usable(v, drop)) var += (v - mean) * (v - mean);
  }
  __syncthreads();
  var = LvReduce(tmp).Sum(var);
  if (threadIdx.x == 0) {
    g[3 * gi] = n;
    g[3 * gi + 1] = mean;
    g[3 * gi + 2] = n >= 2 ? var / (n - 1) : 0.0;
  }
}

// One block: the loss over usable groups, the paths used and the cotangent scale (into g[3 groups]).
__global__ void lv_total_kernel(double* __restrict__ g, std::int64_t groups, double dim,
                                double* __restrict__ stats) {
  __shared__ typename LvReduce::TempStorage tmp;
  double total = 0, used = 0, used_groups = 0;
  for (std::int64_t k = threadIdx.x; k < groups; k += kLvThreads)
    if (g[3 * k] >= 2) total += g[3 * k + 2], used += g[3 * k], used_groups += 1;
  total = LvReduce(tmp).Sum(total);
  __syncthreads();
  used = LvReduce(tmp).Sum(used);
  __syncthreads();
  used_groups = LvReduce(tmp).Sum(used_groups);
  if (threadIdx.x == 0) {
    const double scale = used_groups > 0 ? 1.0 / (used_groups * dim) : 0.0;
    g[3 * groups] = scale;
    stats[0] = used_groups > 0 ? total * scale : CUDART_NAN;
    stats[1] = used;
  }
}

// One block: the finite paths' sum and count, then the cotangent.
template <class T>
__global__ void kl_kernel(const T* __restrict__ R, std::int64_t B, double dim, T* __restrict__ cot,
                          double* __restrict__ stats) {
  __shared__ typename LvReduce::TempStorage tmp;
  __shared__ double s_w;
  double total = 0, n = 0;
  for (std::int64_t i = threadIdx.x; i < B; i += kLvThreads) {
    const double r = double(R[i]);
    if (r - r == 0) total += r, n += 1;
  }
  total = LvReduce(tmp).Sum(total);
  __syncthreads();
  n = LvReduce(tmp).Sum(n);
  if (threadIdx.x == 0) {
    const double w = n > 0 ? 1.0 / (n * dim) : 0.0;
    s_w = w;
    stats[0] = n > 0 ? total * w : CUDART_NAN;
    stats[1] = n;
  }
  __syncthreads();
  const double w = s_w;
  for (std::int64_t i = threadIdx.x; i < B; i += kLvThreads) {
    const double r = double(R[i]);
    cot[i] = r - r == 0 ? T(w) : T(0);
  }
}

template <class T>
__global__ void lv_cot_kernel(const T* __restrict__ R, std::int64_t B, std::int64_t group, double drop,
                              const double* __restrict__ g, std::int64_t groups, T* __restrict__ cot) {
  const double scale = g[3 * groups];
  NSAMP_GRID_STRIDE(i, B) {
    const std::int64_t k = i / group;
    const double n = g[3 * k], v = double(R[i]);
    cot[i] = n >= 2 && lv_usable(v, drop) ? T(2.0 * (v - g[3 * k + 1]) / (n - 1) * scale) : T(0);
  }
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
