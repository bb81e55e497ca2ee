// Reduction family: CUDA launchers of the kernels in reduce_kernels.cuh (their layout is described there).
#include "nsamp/core/cuda_check.h"
#include "reduce_kernels.cuh"

namespace nsamp::kernels::detail {

namespace {

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
  const ColsGeometry geo = cols_geometry(R, C);
  const std::int64_t col_tiles = geo.col_tiles, chunks = geo.chunks, rows_per_chunk = geo.rows_per_chunk;
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
