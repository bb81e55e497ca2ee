// Index family: checks, dispatch and CPU launchers (per-row memcpy for column blocks, OpenMP loops over rows
// for gathers; scatter-adds grouped by destination row so that threads never share a row and the sums keep
// the serial order).
#include <cstring>
#include <string>
#include <vector>

#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/index.h"
#include "nsamp/kernels/operands.h"
#include "parallel_cpu.h"

namespace nsamp::kernels {

namespace {

using detail::kParallelMin;

// idx: defined, int32, one entry per row (shape [m]), beside the output on its device and context.
void check_index_operand(const char* op, const Tensor& idx, std::int64_t m, const Tensor& out, Context& ctx) {
  check_defined(op, idx, "idx");
  check_on_context(op, idx, ctx);
  NSAMP_CHECK(idx.dtype() == DType::I32, op, ": idx must be int32, got ", idx.desc());
  NSAMP_CHECK(idx.device() == out.device(), op, ": device mismatch: out ", out.desc(), ", idx ", idx.desc());
  NSAMP_CHECK(idx.rank() == 1 && idx.numel() == m, op, ": idx ", idx.desc(), " must have shape [", m,
              "] (one index per row)");
}

// The first out-of-range entry of idx[0, m) for rows [0, n), or -1. Host memory only.
std::int64_t first_bad_index(const std::int32_t* idx, std::int64_t m, std::int64_t n) {
  for (std::int64_t i = 0; i < m; ++i)
    if (idx[i] < 0 || idx[i] >= n) return i;
  return -1;
}

void require_valid_indices(const char* op, const std::int32_t* idx, std::int64_t m, std::int64_t n,
                           const Tensor& idx_tensor) {
  const std::int64_t bad = first_bad_index(idx, m, n);
  NSAMP_CHECK(bad < 0, op, ": idx[", bad, "] = ", bad < 0 ? 0 : idx[bad], " is out of range [0, ", n,
              ") (idx ", idx_tensor.desc(), ")");
}

template <class T>
void gather_cpu(const T* x, const std::int32_t* idx, T* out, std::int64_t M, std::int64_t C) {
#pragma omp parallel for schedule(static) if (M * C > kParallelMin)
  for (std::int64_t i = 0; i < M; ++i)
    std::memcpy(out + i * C, x + static_cast<std::int64_t>(idx[i]) * C,
                static_cast<std::size_t>(C) * sizeof(T));
}

template <class T>
void index_add_cpu(const T* src, const std::int32_t* idx, T* out, std::int64_t M, std::int64_t N,
                   std::int64_t C) {
  // Serial when small, or when the output has far more rows than there are sources (grouping would cost more
  // than the additions).
  if (M * C <= kParallelMin || N > 4 * M) {
    for (std::int64_t i = 0; i < M; ++i) {
      T* o = out + static_cast<std::int64_t>(idx[i]) * C;
      const T* s = src + i * C;
      for (std::int64_t c = 0; c < C; ++c) o[c] += s[c];
    }
    return;
  }
  // Source rows grouped by destination (a stable counting sort): each thread owns whole output rows and adds
  // their sources in increasing i, the serial loop's order, so the result does not depend on the thread
  // count.
  std::vector<std::int64_t> start(static_cast<std::size_t>(N + 1), 0);
  for (std::int64_t i = 0; i < M; ++i) ++start[static_cast<std::size_t>(idx[i]) + 1];
  for (std::int64_t j = 0; j < N; ++j) start[j + 1] += start[j];
  std::vector<std::int64_t> order(static_cast<std::size_t>(M));
  {
    std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
    for (std::int64_t i = 0; i < M; ++i) order[static_cast<std::size_t>(fill[idx[i]]++)] = i;
  }
#pragma omp parallel for schedule(dynamic, 64)
  for (std::int64_t j = 0; j < N; ++j) {
    T* o = out + j * C;
    for (std::int64_t k = start[j]; k < start[j + 1]; ++k) {
      const T* s = src + order[k] * C;
      for (std::int64_t c = 0; c < C; ++c) o[c] += s[c];
    }
  }
}

}  // namespace

void copy_cols(const Tensor& src, std::int64_t src_col0, Tensor& dst, std::int64_t dst_col0,
               std::int64_t ncols, Context& ctx) {
  const char* op = "copy_cols";
  check_operands(op, ctx, {{"dst", &dst}, {"src", &src}});
  NSAMP_CHECK(src.rows() == dst.rows(), op, ": src ", src.desc(), " and dst ", dst.desc(),
              " must have the same number of rows (", src.rows(), " vs ", dst.rows(), ")");
  NSAMP_CHECK(ncols >= 0 && src_col0 >= 0 && src_col0 + ncols <= src.cols(), op, ": columns [", src_col0,
              ", ", src_col0 + ncols, ") are outside src ", src.desc(), " (", src.cols(), " columns)");
  NSAMP_CHECK(dst_col0 >= 0 && dst_col0 + ncols <= dst.cols(), op, ": columns [", dst_col0, ", ",
              dst_col0 + ncols, ") are outside dst ", dst.desc(), " (", dst.cols(), " columns)");
  // check_operands allows only exact aliasing: then the column ranges must coincide (a no-op) or be disjoint.
  const bool aliased =
      dst.same_storage(src) && dst.storage_offset() == src.storage_offset() && dst.numel() > 0;
  NSAMP_CHECK(
      !aliased || src_col0 == dst_col0 || src_col0 + ncols <= dst_col0 || dst_col0 + ncols <= src_col0, op,
      ": src and dst are the same tensor ", dst.desc(), " and columns [", src_col0, ", ", src_col0 + ncols,
      ") overlap [", dst_col0, ", ", dst_col0 + ncols, ")");
  if (ncols == 0 || dst.rows() == 0 || (aliased && src_col0 == dst_col0)) return;
  if (dst.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("index/copy_cols");
      detail::copy_cols_cuda(src, src_col0, dst, dst_col0, ncols, ctx);
    }
    return;
  }
  const std::size_t es = dtype_size(dst.dtype());
  const std::int64_t R = dst.rows(), sc = src.cols(), dc = dst.cols();
  const char* s = static_cast<const char*>(src.raw_data()) + src_col0 * es;
  char* d = static_cast<char*>(dst.raw_data()) + dst_col0 * es;
  const std::size_t width = static_cast<std::size_t>(ncols) * es;
#pragma omp parallel for schedule(static) if (R * ncols > kParallelMin)
  for (std::int64_t r = 0; r < R; ++r) std::memcpy(d + r * dc * es, s + r * sc * es, width);
}

void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out, Context& ctx) {
  const char* op = "gather_rows";
  check_operands(op, ctx, {{"out", &out}, {"x", &x}});
  check_index_operand(op, idx, out.rows(), out, ctx);
  NSAMP_CHECK(out.cols() == x.cols(), op, ": out ", out.desc(), " must have the columns of x ", x.desc(),
              " (", x.cols(), ")");
  NSAMP_CHECK(!out.same_storage(x), op, ": out ", out.desc(), " must not share memory with x ", x.desc());
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("index/gather_rows");
      detail::gather_rows_cuda(x, idx, out, ctx);
    }
    return;
  }
  // On the host the bounds check costs one pass over the indices: an invalid index throws instead of reading
  // outside x.
  const std::int32_t* pi = idx.data<std::int32_t>();
  require_valid_indices(op, pi, out.rows(), x.rows(), idx);
  if (out.dtype() == DType::F32)
    gather_cpu(x.data<float>(), pi, out.data<float>(), out.rows(), out.cols());
  else
    gather_cpu(x.data<double>(), pi, out.data<double>(), out.rows(), out.cols());
}

void index_add_rows(const Tensor& src, const Tensor& idx, Tensor& out, Context& ctx) {
  const char* op = "index_add_rows";
  check_operands(op, ctx, {{"out", &out}, {"src", &src}});
  check_index_operand(op, idx, src.rows(), out, ctx);
  NSAMP_CHECK(out.cols() == src.cols(), op, ": out ", out.desc(), " must have the columns of src ",
              src.desc(), " (", src.cols(), ")");
  NSAMP_CHECK(!out.same_storage(src), op, ": out ", out.desc(), " must not share memory with src ",
              src.desc());
  if (src.numel() == 0) return;
  if (out.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("index/index_add_rows");
      detail::index_add_rows_cuda(src, idx, out, ctx);
    }
    return;
  }
  const std::int32_t* pi = idx.data<std::int32_t>();
  require_valid_indices(op, pi, src.rows(), out.rows(), idx);
  if (out.dtype() == DType::F32)
    index_add_cpu(src.data<float>(), pi, out.data<float>(), src.rows(), out.rows(), out.cols());
  else
    index_add_cpu(src.data<double>(), pi, out.data<double>(), src.rows(), out.rows(), out.cols());
}

void check_indices(const char* op, const Tensor& idx, std::int64_t n, Context& ctx) {
  check_defined(op, idx, "idx");
  check_on_context(op, idx, ctx);
  NSAMP_CHECK(idx.dtype() == DType::I32, op, ": idx must be int32, got ", idx.desc());
  NSAMP_CHECK(n >= 0, op, ": negative row count ", n, " for idx ", idx.desc());
  if (idx.numel() == 0) return;
  if (idx.device().is_cpu()) {
    require_valid_indices(op, idx.data<std::int32_t>(), idx.numel(), n, idx);
    return;
  }
  const std::vector<std::int32_t> host = idx.to_vector<std::int32_t>(ctx);  // synchronises the stream
  require_valid_indices(op, host.data(), idx.numel(), n, idx);
}

}  // namespace nsamp::kernels
