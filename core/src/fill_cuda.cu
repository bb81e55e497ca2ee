// Fills: CUDA launchers of the kernels in fill_kernels.cuh.
#include "fill_kernels.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/core/fill.h"
#include "nsamp/core/rng_counter.h"

namespace nsamp::detail {

namespace {

constexpr int kThreads = kFillThreads;

int grid_for(std::int64_t work) {
  const std::int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65535 * 16 ? blocks : 65535 * 16);  // grid-stride loops cover the rest
}

}  // namespace

void counter_update_cuda(std::uint64_t* p, bool add, std::uint64_t v, Context& ctx) {
  counter_kernel<<<1, 1, 0, ctx.stream()>>>(p, add, v);
  NSAMP_CUDA_CHECK_LAUNCH(add ? "RngCounter::advance" : "RngCounter::set");
}

void fill_random_cuda(Tensor& t, FillKind kind, std::uint64_t seed, philox::Offset offset, double a, double b,
                      Context& ctx) {
  const std::int64_t n = t.numel();
  const bool normal = kind == FillKind::Normal;
  cudaStream_t s = ctx.stream();
  if (t.dtype() == DType::F32) {
    random_kernel<float><<<grid_for((n + 3) / 4), kThreads, 0, s>>>(
        t.data<float>(), n, normal, seed, offset, static_cast<float>(a), static_cast<float>(b));
  } else {
    random_kernel<double>
        <<<grid_for((n + 1) / 2), kThreads, 0, s>>>(t.data<double>(), n, normal, seed, offset, a, b);
  }
  NSAMP_CUDA_CHECK_LAUNCH("fill_random " + t.desc());
}

void fill_constant_cuda(Tensor& t, double value, Context& ctx) {
  const std::int64_t n = t.numel();
  cudaStream_t s = ctx.stream();
  if (t.dtype() == DType::F32)
    constant_kernel<float><<<grid_for(n), kThreads, 0, s>>>(t.data<float>(), n, static_cast<float>(value));
  else
    constant_kernel<double><<<grid_for(n), kThreads, 0, s>>>(t.data<double>(), n, value);
  NSAMP_CUDA_CHECK_LAUNCH("fill_constant " + t.desc());
}

}  // namespace nsamp::detail
