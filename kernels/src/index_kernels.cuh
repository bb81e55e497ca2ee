// Index family: the CUDA kernels (device code only), included by index_cuda.cu, which launches them, and by
// tests/test_index_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h against the CPU
// twin. Gathers and scatter-adds are grid-stride loops over the [M, C] elements of the gathered side
// (consecutive threads on consecutive columns, so each row is read and written coalesced); scatter-adds use
// atomicAdd (float, and double on sm_60+).
//
// Indices are assumed valid (check_indices validates them once, on the host). An out-of-range index never
// touches memory outside the tensors: a gather writes NaN for that row and a scatter-add skips it.
#pragma once

#include <cstdint>

#include "launch_cuda.cuh"
#include "nsamp/core/hd.h"
#include "nsamp/kernels/index.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void gather_rows_kernel(const T* __restrict__ x, const std::int32_t* __restrict__ idx,
                                   T* __restrict__ out, std::int64_t n, std::int64_t C, std::int64_t N) {
  NSAMP_GRID_STRIDE(i, n) {
    const std::int64_t r = i / C, c = i - r * C;
    const std::int64_t j = idx[r];
    out[i] = (j >= 0 && j < N) ? x[j * C + c] : hd::quiet_nan<T>();
  }
}

template <class T>
__global__ void index_add_rows_kernel(const T* __restrict__ src, const std::int32_t* __restrict__ idx,
                                      T* __restrict__ out, std::int64_t n, std::int64_t C, std::int64_t N) {
  NSAMP_GRID_STRIDE(i, n) {
    const std::int64_t r = i / C, c = i - r * C;
    const std::int64_t j = idx[r];
    if (j >= 0 && j < N) atomicAdd(out + j * C + c, src[i]);
  }
}

}  // namespace

}  // namespace nsamp::kernels::detail
