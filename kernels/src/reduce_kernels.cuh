// Reduction family: the CUDA kernels (device code only), included by reduce_cuda.cu, which launches them, and
// by tests/test_reduce_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h against the
// CPU twin. Rows: one warp per row (butterfly shuffles) for short rows, one block per row (cub::BlockReduce)
// for long ones. Columns: 32-column tiles over row chunks, partial accumulators merged in a fixed order, so
// results are deterministic. The accumulators are reduce.h's, shared with the CPU path.
#pragma once

#include <cstdint>

#ifndef NSAMP_CUDA_EMULATION
#include <cub/block/block_reduce.cuh>
#endif

#include "launch_cuda.cuh"
#include "nsamp/kernels/reduce.h"

namespace nsamp::kernels::detail {

namespace {

constexpr std::int64_t kWarpRowMaxCols = 1024;  // beyond this a row gets a whole block
constexpr int kRowBlock = 256;

template <class T>
__device__ SumAcc<T> shfl_xor(SumAcc<T> a, int m) {
  return {__shfl_xor_sync(kFull, a.s, m)};
}
template <class T>
__device__ SqSumAcc<T> shfl_xor(SqSumAcc<T> a, int m) {
  return {__shfl_xor_sync(kFull, a.s, m)};
}
template <class T>
__device__ MaxAcc<T> shfl_xor(MaxAcc<T> a, int m) {
  return {__shfl_xor_sync(kFull, a.m, m)};
}
template <class T>
__device__ LseAcc<T> shfl_xor(LseAcc<T> a, int m) {
  return {__shfl_xor_sync(kFull, a.m, m), __shfl_xor_sync(kFull, a.s, m)};
}

// Every lane ends with the same (bitwise) total: each butterfly level merges the same pair on both sides.
template <class Acc>
__device__ Acc warp_allreduce(Acc a) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) a.merge(shfl_xor(a, m));
  return a;
}

struct MergeOp {
  template <class Acc>
  __device__ Acc operator()(Acc a, const Acc& b) const {
    a.merge(b);
    return a;
  }
};

template <class T>
__device__ T finish(const SumAcc<T>& a, std::int64_t n, bool mean) {
  return mean ? a.s / T(n) : a.s;
}
template <class T>
__device__ T finish(const SqSumAcc<T>& a, std::int64_t, bool) {
  return a.s;
}
template <class T>
__device__ T finish(const MaxAcc<T>& a, std::int64_t, bool) {
  return a.m;
}
template <class T>
__device__ T finish(const LseAcc<T>& a, std::int64_t, bool) {
  return a.result();
}

// ---- rows
// ---------------------------------------------------------------------------------------------------

template <class Acc, class T>
__global__ void rows_warp_kernel(const T* __restrict__ x, T* __restrict__ out, std::int64_t R, std::int64_t C,
                                 bool mean) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t r = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); r < R; r += warps) {
    Acc acc = Acc::init();
    const T* row = x + r * C;
    for (std::int64_t c = lane; c < C; c += 32) acc.push(row[c]);
    acc = warp_allreduce(acc);
    if (lane == 0) out[r] = finish(acc, C, mean);
  }
}

template <class Acc, class T>
__global__ void rows_block_kernel(const T* __restrict__ x, T* __restrict__ out, std::int64_t R,
                                  std::int64_t C, bool mean) {
  using BlockReduce = cub::BlockReduce<Acc, kRowBlock>;
  __shared__ typename BlockReduce::TempStorage tmp;
  for (std::int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    Acc acc = Acc::init();
    const T* row = x + r * C;
    for (std::int64_t c = threadIdx.x; c < C; c += kRowBlock) acc.push(row[c]);
    acc = BlockReduce(tmp).Reduce(acc, MergeOp{});
    if (threadIdx.x == 0) out[r] = finish(acc, C, mean);
    __syncthreads();  // tmp is reused by the next row
  }
}

template <class T>
__global__ void softmax_warp_kernel(const T* x, T* y, std::int64_t R, std::int64_t C) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t r = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); r < R; r += warps) {
    LseAcc<T> acc = LseAcc<T>::init();
    for (std::int64_t c = lane; c < C; c += 32) acc.push(x[r * C + c]);
    const T lse = warp_allreduce(acc).result();
    for (std::int64_t c = lane; c < C; c += 32) y[r * C + c] = softmax_entry(x[r * C + c], lse);
  }
}

template <class T>
__global__ void softmax_block_kernel(const T* x, T* y, std::int64_t R, std::int64_t C) {
  using BlockReduce = cub::BlockReduce<LseAcc<T>, kRowBlock>;
  __shared__ typename BlockReduce::TempStorage tmp;
  __shared__ T lse_shared;
  for (std::int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    LseAcc<T> acc = LseAcc<T>::init();
    for (std::int64_t c = threadIdx.x; c < C; c += kRowBlock) acc.push(x[r * C + c]);
    acc = BlockReduce(tmp).Reduce(acc, MergeOp{});
    if (threadIdx.x == 0) lse_shared = acc.result();
    __syncthreads();
    const T lse = lse_shared;
    for (std::int64_t c = threadIdx.x; c < C; c += kRowBlock) y[r * C + c] = softmax_entry(x[r * C + c], lse);
    __syncthreads();  // lse_shared and tmp are reused by the next row
  }
}

// ---- columns
// ------------------------------------------------------------------------------------------------

constexpr int kTileCols = 32, kTileRows = 8;

// The column reduction's grid: col_tiles x chunks blocks of (kTileCols, kTileRows) threads. Enough row chunks
// to give the GPU ~1000 blocks, each chunk at least 64 rows.
struct ColsGeometry {
  std::int64_t col_tiles, chunks, rows_per_chunk;
};
inline ColsGeometry cols_geometry(std::int64_t R, std::int64_t C) {
  const std::int64_t col_tiles = (C + kTileCols - 1) / kTileCols;
  std::int64_t chunks = (R + 63) / 64;
  const std::int64_t want = (1024 + col_tiles - 1) / col_tiles;
  if (chunks > want) chunks = want;
  if (chunks > 65535) chunks = 65535;
  if (chunks < 1) chunks = 1;
  const std::int64_t rows_per_chunk = (R + chunks - 1) / chunks > 0 ? (R + chunks - 1) / chunks : 1;
  return {col_tiles, chunks, rows_per_chunk};
}

// Block (32, 8) reduces rows [chunk * rows_per_chunk, ...) of 32 columns into one accumulator per column.
template <class Acc, class T>
__global__ void cols_partial_kernel(const T* __restrict__ x, Acc* __restrict__ part, std::int64_t R,
                                    std::int64_t C, std::int64_t rows_per_chunk) {
  __shared__ Acc tile[kTileRows][kTileCols + 1];
  const std::int64_t c = blockIdx.x * std::int64_t(kTileCols) + threadIdx.x;
  const std::int64_t r0 = blockIdx.y * rows_per_chunk;
  const std::int64_t r1 = r0 + rows_per_chunk < R ? r0 + rows_per_chunk : R;
  Acc acc = Acc::init();
  if (c < C)
    for (std::int64_t r = r0 + threadIdx.y; r < r1; r += kTileRows) acc.push(x[r * C + c]);
  tile[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    for (int k = 1; k < kTileRows; ++k) acc.merge(tile[k][threadIdx.x]);
    part[blockIdx.y * C + c] = acc;
  }
}

template <class Acc, class T>
__global__ void cols_finish_kernel(const Acc* __restrict__ part, T* __restrict__ out, std::int64_t chunks,
                                   std::int64_t R, std::int64_t C, bool mean) {
  NSAMP_GRID_STRIDE(c, C) {
    Acc acc = part[c];
    for (std::int64_t k = 1; k < chunks; ++k) acc.merge(part[k * C + c]);
    out[c] = finish(acc, R, mean);
  }
}

}  // namespace

}  // namespace nsamp::kernels::detail
