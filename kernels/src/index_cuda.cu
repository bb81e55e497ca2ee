// Index family: CUDA launchers of the kernels in index_kernels.cuh (their layout is described there). Column
// blocks are one strided 2-D copy.
#include "index_kernels.cuh"
#include "nsamp/core/cuda_check.h"

namespace nsamp::kernels::detail {

void copy_cols_cuda(const Tensor& src, std::int64_t src_col0, Tensor& dst, std::int64_t dst_col0,
                    std::int64_t ncols, Context& ctx) {
  const std::size_t es = dtype_size(dst.dtype());
  const char* s = static_cast<const char*>(src.raw_data()) + src_col0 * es;
  char* d = static_cast<char*>(dst.raw_data()) + dst_col0 * es;
  NSAMP_CUDA_CHECK(
      cudaMemcpy2DAsync(d, static_cast<std::size_t>(dst.cols()) * es, s,
                        static_cast<std::size_t>(src.cols()) * es, static_cast<std::size_t>(ncols) * es,
                        static_cast<std::size_t>(dst.rows()), cudaMemcpyDeviceToDevice, ctx.stream()),
      "copy_cols src " + src.desc() + " columns [" + std::to_string(src_col0) + ", " +
          std::to_string(src_col0 + ncols) + ") -> dst " + dst.desc() + " columns [" +
          std::to_string(dst_col0) + ", " + std::to_string(dst_col0 + ncols) + ")");
}

void gather_rows_cuda(const Tensor& x, const Tensor& idx, Tensor& out, Context& ctx) {
  const std::int64_t n = out.numel(), C = out.cols(), N = x.rows();
  const std::int32_t* pi = idx.data<std::int32_t>();
  if (out.dtype() == DType::F32)
    gather_rows_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<float>(), pi, out.data<float>(), n,
                                                                   C, N);
  else
    gather_rows_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(x.data<double>(), pi, out.data<double>(),
                                                                   n, C, N);
  NSAMP_CUDA_CHECK_LAUNCH("gather_rows x " + x.desc() + ", idx " + idx.desc() + " -> out " + out.desc());
}

void index_add_rows_cuda(const Tensor& src, const Tensor& idx, Tensor& out, Context& ctx) {
  const std::int64_t n = src.numel(), C = src.cols(), N = out.rows();
  const std::int32_t* pi = idx.data<std::int32_t>();
  if (out.dtype() == DType::F32)
    index_add_rows_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(src.data<float>(), pi,
                                                                      out.data<float>(), n, C, N);
  else
    index_add_rows_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(src.data<double>(), pi,
                                                                      out.data<double>(), n, C, N);
  NSAMP_CUDA_CHECK_LAUNCH("index_add_rows src " + src.desc() + ", idx " + idx.desc() + " -> out " +
                          out.desc());
}

}  // namespace nsamp::kernels::detail
