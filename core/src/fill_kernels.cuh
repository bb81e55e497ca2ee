// Fills: the CUDA kernels (device code only), included by fill_cuda.cu, which launches them, and by
// tests/test_fill_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h against the CPU
// path. One thread per Philox counter; the element math is philox.h's, shared with the CPU.
#pragma once

#include <cstdint>

#include "nsamp/core/hd.h"
#include "nsamp/core/philox.h"

namespace nsamp::detail {

namespace {

constexpr int kFillThreads = 256;

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

}  // namespace nsamp::detail
