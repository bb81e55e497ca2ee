// Fills: CUDA launchers. One thread per Philox counter; the element math is philox.h's, shared with the CPU.
#include "nsamp/core/cuda_check.h"
#include "nsamp/core/fill.h"
#include "nsamp/core/philox.h"
#include "nsamp/core/rng_counter.h"

namespace nsamp::detail {

namespace {

constexpr int kThreads = 256;

int grid_for(std::int64_t work) {
  const std::int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65535 * 16 ? blocks : 65535 * 16);  // grid-stride loops cover the rest
}

template <class T>
__global__ void random_kernel(T* __restrict__ out, std::int64_t n, bool normal, std::uint64_t seed,
                              philox::Offset at, T a, T b) {
  constexpr int kPer = philox::values_per_counter<T>();
  const std::uint64_t offset = at.value();
  const std::int64_t blocks = (n + kPer - 1) / kPer;
  for (std::int64_t k = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; k < blocks;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    T v[kPer];
    if (normal)
      philox::normal_block(seed, offset + static_cast<std::uint64_t>(k), v);
    else
      philox::uniform_block(seed, offset + static_cast<std::uint64_t>(k), v);
#pragma unroll
    for (int j = 0; j < kPer; ++j)
      if (k * kPer + j < n) out[k * kPer + j] = hd::mul_add_rn(a, v[j], b);
  }
}

template <class T>
__global__ void constant_kernel(T* __restrict__ out, std::int64_t n, T value) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    out[i] = value;
}

__global__ void counter_kernel(std::uint64_t* p, bool add, std::uint64_t v) { *p = add ? *p + v : v; }

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
