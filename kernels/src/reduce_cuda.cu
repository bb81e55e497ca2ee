// Reduction family: CUDA launchers. Rows: one warp per row (butterfly shuffles) for short rows, one block per
// row (cub::BlockReduce) for long ones. Columns: 32-column tiles over row chunks, partial accumulators merged
// in a fixed order, so results are deterministic. The accumulators are reduce.h's, shared with the CPU path.
#include <cub/block/block_reduce.cuh>

#include "launch_cuda.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/kernels/reduce.h"

namespace nsamp::kernels::detail {

namespace {

constexpr unsigned kFull = 0xffffffffu;
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

template <class Acc, class T>
void rows_launch(const Tensor& x, Tensor& out, bool mean, Context& ctx) {
  const std::int64_t R = x.rows(), C = x.cols();
  if (C <= kWarpRowMaxCols) {
    rows_warp_kernel<Acc, T>
        <<<grid_for(R * 32), kThreads, 0, ctx.stream()>>>(x.data<T>(), out.data<T>(), R, C, mean);
  } else {
    rows_block_kernel<Acc, T><<<grid_for(R * kRowBlock, kRowBlock), kRowBlock, 0, ctx.stream()>>>(
        x.data<T>(), out.data<T>(), R, C, mean);
  }
}

template <class Acc, class T>
void cols_launch(const Tensor& x, Tensor& out, bool mean, Context& ctx) {
  const std::int64_t R = x.rows(), C = x.cols();
  const std::int64_t col_tiles = (C + kTileCols - 1) / kTileCols;
  // Enough row chunks to give the GPU ~1000 blocks, each chunk at least 64 rows.
  std::int64_t chunks = (R + 63) / 64;
  const std::int64_t want = (1024 + col_tiles - 1) / col_tiles;
  if (chunks > want) chunks = want;
  if (chunks > 65535) chunks = 65535;
  if (chunks < 1) chunks = 1;
  const std::int64_t rows_per_chunk = (R + chunks - 1) / chunks > 0 ? (R + chunks - 1) / chunks : 1;
  NSAMP_CHECK(col_tiles <= INT32_MAX, "reduce_cols: too many columns (", C, ")");
  // Workspace from the context's cache: no cudaMalloc once warm.
  const std::int64_t ws_bytes = chunks * C * static_cast<std::int64_t>(sizeof(Acc));
  Tensor ws = Tensor::empty(Shape{(ws_bytes + 7) / 8}, DType::F64, ctx);
  Acc* part = static_cast<Acc*>(ws.raw_data());
  const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(chunks));
  cols_partial_kernel<Acc, T>
      <<<grid, dim3(kTileCols, kTileRows), 0, ctx.stream()>>>(x.data<T>(), part, R, C, rows_per_chunk);
  NSAMP_CUDA_CHECK_LAUNCH("reduce_cols partial " + x.desc());
  cols_finish_kernel<Acc, T>
      <<<grid_for(C), kThreads, 0, ctx.stream()>>>(part, out.data<T>(), chunks, R, C, mean);
}

template <class T>
void reduce_rows_typed(Reduce r, const Tensor& x, Tensor& out, Context& ctx) {
  switch (r) {
    case Reduce::Sum:
      rows_launch<SumAcc<T>, T>(x, out, false, ctx);
      break;
    case Reduce::Mean:
      rows_launch<SumAcc<T>, T>(x, out, true, ctx);
      break;
    case Reduce::Max:
      rows_launch<MaxAcc<T>, T>(x, out, false, ctx);
      break;
    case Reduce::SqNorm:
      rows_launch<SqSumAcc<T>, T>(x, out, false, ctx);
      break;
    case Reduce::LogSumExp:
      rows_launch<LseAcc<T>, T>(x, out, false, ctx);
      break;
  }
}

template <class T>
void reduce_cols_typed(Reduce r, const Tensor& x, Tensor& out, Context& ctx) {
  switch (r) {
    case Reduce::Sum:
      cols_launch<SumAcc<T>, T>(x, out, false, ctx);
      break;
    case Reduce::Mean:
      cols_launch<SumAcc<T>, T>(x, out, true, ctx);
      break;
    case Reduce::Max:
      cols_launch<MaxAcc<T>, T>(x, out, false, ctx);
      break;
    case Reduce::SqNorm:
      cols_launch<SqSumAcc<T>, T>(x, out, false, ctx);
      break;
    case Reduce::LogSumExp:
      break;  // rejected by reduce_cols
  }
}

}  // namespace

void reduce_rows_cuda(Reduce r, const Tensor& x, Tensor& out, Context& ctx) {
  if (x.dtype() == DType::F32)
    reduce_rows_typed<float>(r, x, out, ctx);
  else
    reduce_rows_typed<double>(r, x, out, ctx);
  NSAMP_CUDA_CHECK_LAUNCH(std::string("reduce_rows ") + reduce_name(r) + " " + x.desc());
}

void reduce_cols_cuda(Reduce r, const Tensor& x, Tensor& out, Context& ctx) {
  if (x.dtype() == DType::F32)
    reduce_cols_typed<float>(r, x, out, ctx);
  else
    reduce_cols_typed<double>(r, x, out, ctx);
  NSAMP_CUDA_CHECK_LAUNCH(std::string("reduce_cols ") + reduce_name(r) + " " + x.desc());
}

void row_softmax_cuda(const Tensor& x, Tensor& y, Context& ctx) {
  const std::int64_t R = x.rows(), C = x.cols();
  auto launch = [&](auto tag) {
    using T = decltype(tag);
    if (C <= kWarpRowMaxCols)
      softmax_warp_kernel<T><<<grid_for(R * 32), kThreads, 0, ctx.stream()>>>(x.data<T>(), y.data<T>(), R, C);
    else
      softmax_block_kernel<T><<<grid_for(R * kRowBlock, kRowBlock), kRowBlock, 0, ctx.stream()>>>(
          x.data<T>(), y.data<T>(), R, C);
  };
  if (x.dtype() == DType::F32)
    launch(float{});
  else
    launch(double{});
  NSAMP_CUDA_CHECK_LAUNCH("row_softmax " + x.desc());
}

}  // namespace nsamp::kernels::detail
