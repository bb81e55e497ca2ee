// Index family: column blocks (concat and split along features), row gathers and scatter-adds (message
// passing over particle pairs, replay-buffer sampling). Index tensors are int32, one entry per row.
#pragma once

#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

// dst[:, dst_col0 : dst_col0 + ncols] = src[:, src_col0 : src_col0 + ncols]; src and dst have the same number
// of rows (2-D views). A strided 2-D copy (cudaMemcpy2DAsync on CUDA).
void copy_cols(const Tensor& src, std::int64_t src_col0, Tensor& dst, std::int64_t dst_col0,
               std::int64_t ncols, Context& ctx);

// out[i, :] = x[idx[i], :]. x [N, C], idx int32 [M], out [M, C].
void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out, Context& ctx);
// out[idx[i], :] += src[i, :]. src [M, C], idx int32 [M], out [N, C]. Repeated indices accumulate; on CUDA
// with atomics, so the order of the float additions (and the last bits of the result) may vary between runs.
void index_add_rows(const Tensor& src, const Tensor& idx, Tensor& out, Context& ctx);

// Throws unless every entry of idx is in [0, n). Copies idx to the host when it lives on the GPU (a sync):
// validate index tensors once when they are built. gather_rows and index_add_rows expect valid indices: the CPU
// path checks them and throws; the CUDA path never touches memory outside the tensors (a gathered row with an
// invalid index is NaN, a scatter-add entry with one is dropped) but cannot report it without a sync.
void check_indices(const char* op, const Tensor& idx, std::int64_t n, Context& ctx);

namespace detail {
void copy_cols_cuda(const Tensor& src, std::int64_t src_col0, Tensor& dst, std::int64_t dst_col0,
                    std::int64_t ncols, Context& ctx);
void gather_rows_cuda(const Tensor& x, const Tensor& idx, Tensor& out, Context& ctx);
void index_add_rows_cuda(const Tensor& src, const Tensor& idx, Tensor& out, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
