// Reduction family: checks, dispatch and CPU launchers. Accumulates in double for both dtypes, so the CPU
// path is the accurate reference the GPU's float tree reductions are compared with.
#include <type_traits>
#include <vector>

#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/operands.h"
#include "nsamp/kernels/reduce.h"
#include "parallel_cpu.h"

namespace nsamp::kernels {

namespace {

using detail::kParallelMin;
constexpr std::int64_t kColChunkRows = 1024;  // fixed chunking: results do not depend on the thread count

template <class Acc, class T>
void rows_cpu(const T* x, T* out, std::int64_t R, std::int64_t C, bool mean) {
#pragma omp parallel for schedule(static) if (R * C > kParallelMin)
  for (std::int64_t r = 0; r < R; ++r) {
    Acc acc = Acc::init();
    const T* row = x + r * C;
    for (std::int64_t c = 0; c < C; ++c) acc.push(static_cast<double>(row[c]));
    double v;
    if constexpr (std::is_same_v<Acc, LseAcc<double>>) {
      v = acc.result();
    } else if constexpr (std::is_same_v<Acc, MaxAcc<double>>) {
      v = acc.m;
    } else {
      v = acc.s;
      if (mean) v /= static_cast<double>(C);
    }
    out[r] = static_cast<T>(v);
  }
}

template <class Acc, class T>
void cols_cpu(const T* x, T* out, std::int64_t R, std::int64_t C, bool mean) {
  const std::int64_t chunks = (R + kColChunkRows - 1) / kColChunkRows;
  std::vector<Acc> part(static_cast<std::size_t>(chunks > 0 ? chunks * C : 0), Acc::init());
#pragma omp parallel for schedule(static) if (R * C > kParallelMin && chunks > 1)
  for (std::int64_t k = 0; k < chunks; ++k) {
    Acc* acc = part.data() + k * C;
    const std::int64_t r1 = (k + 1) * kColChunkRows < R ? (k + 1) * kColChunkRows : R;
    for (std::int64_t r = k * kColChunkRows; r < r1; ++r)
      for (std::int64_t c = 0; c < C; ++c) acc[c].push(static_cast<double>(x[r * C + c]));
  }
#pragma omp parallel for schedule(static) if (R * C > kParallelMin)
  for (std::int64_t c = 0; c < C; ++c) {
    Acc acc = Acc::init();
    for (std::int64_t k = 0; k < chunks; ++k) acc.merge(part[static_cast<std::size_t>(k * C + c)]);
    double v;
    if constexpr (std::is_same_v<Acc, MaxAcc<double>>) {
      v = acc.m;
    } else {
      v = acc.s;
      if (mean) v /= static_cast<double>(R);
    }
    out[c] = static_cast<T>(v);
  }
}

template <class T>
void reduce_rows_typed(Reduce r, const Tensor& x, Tensor& out) {
  const T* px = x.data<T>();
  T* po = out.data<T>();
  const std::int64_t R = x.rows(), C = x.cols();
  switch (r) {
    case Reduce::Sum:
      rows_cpu<SumAcc<double>>(px, po, R, C, false);
      break;
    case Reduce::Mean:
      rows_cpu<SumAcc<double>>(px, po, R, C, true);
      break;
    case Reduce::Max:
      rows_cpu<MaxAcc<double>>(px, po, R, C, false);
      break;
    case Reduce::SqNorm:
      rows_cpu<SqSumAcc<double>>(px, po, R, C, false);
      break;
    case Reduce::LogSumExp:
      rows_cpu<LseAcc<double>>(px, po, R, C, false);
      break;
  }
}

template <class T>
void reduce_cols_typed(Reduce r, const Tensor& x, Tensor& out) {
  const T* px = x.data<T>();
  T* po = out.data<T>();
  const std::int64_t R = x.rows(), C = x.cols();
  switch (r) {
    case Reduce::Sum:
      cols_cpu<SumAcc<double>>(px, po, R, C, false);
      break;
    case Reduce::Mean:
      cols_cpu<SumAcc<double>>(px, po, R, C, true);
      break;
    case Reduce::Max:
      cols_cpu<MaxAcc<double>>(px, po, R, C, false);
      break;
    case Reduce::SqNorm:
      cols_cpu<SqSumAcc<double>>(px, po, R, C, false);
      break;
    case Reduce::LogSumExp:
      break;  // rejected by reduce_cols
  }
}

template <class T>
void softmax_cpu(const T* x, T* y, std::int64_t R, std::int64_t C) {
#pragma omp parallel for schedule(static) if (R * C > kParallelMin)
  for (std::int64_t r = 0; r < R; ++r) {
    LseAcc<double> acc = LseAcc<double>::init();
    for (std::int64_t c = 0; c < C; ++c) acc.push(static_cast<double>(x[r * C + c]));
    const double lse = acc.result();
    for (std::int64_t c = 0; c < C; ++c)
      y[r * C + c] = static_cast<T>(softmax_entry(static_cast<double>(x[r * C + c]), lse));
  }
}

}  // namespace

const char* reduce_name(Reduce r) {
  switch (r) {
    case Reduce::Sum:
      return "sum";
    case Reduce::Mean:
      return "mean";
    case Reduce::Max:
      return "max";
    case Reduce::SqNorm:
      return "sq_norm";
    default:
      return "logsumexp";
  }
}

void reduce_rows(Reduce r, const Tensor& x, Tensor& out, Context& ctx) {
  const std::string op = std::string("reduce_rows(") + reduce_name(r) + ")";
  check_operands(op.c_str(), ctx, {{"out", &out}, {"x", &x}});
  NSAMP_CHECK(out.numel() == x.rows(), op, ": out ", out.desc(), " must hold one value per row of x ",
              x.desc(), " (", x.rows(), ")");
  NSAMP_CHECK(!out.same_storage(x), op, ": out must not share memory with x");
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("reduce/reduce_rows");
      detail::reduce_rows_cuda(r, x, out, ctx);
    }
    return;
  }
  if (x.dtype() == DType::F32)
    reduce_rows_typed<float>(r, x, out);
  else
    reduce_rows_typed<double>(r, x, out);
}

void reduce_cols(Reduce r, const Tensor& x, Tensor& out, Context& ctx) {
  const std::string op = std::string("reduce_cols(") + reduce_name(r) + ")";
  NSAMP_CHECK(r != Reduce::LogSumExp, op, ": not offered per column (transpose, or use reduce_rows)");
  check_operands(op.c_str(), ctx, {{"out", &out}, {"x", &x}});
  NSAMP_CHECK(out.numel() == x.cols(), op, ": out ", out.desc(), " must hold one value per column of x ",
              x.desc(), " (", x.cols(), ")");
  NSAMP_CHECK(!out.same_storage(x), op, ": out must not share memory with x");
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("reduce/reduce_cols");
      detail::reduce_cols_cuda(r, x, out, ctx);
    }
    return;
  }
  if (x.dtype() == DType::F32)
    reduce_cols_typed<float>(r, x, out);
  else
    reduce_cols_typed<double>(r, x, out);
}

void row_softmax(const Tensor& x, Tensor& y, Context& ctx) {
  check_operands("row_softmax", ctx, {{"y", &y}, {"x", &x}});
  check_shape("row_softmax", x, "x", y.shape());
  if (y.numel() == 0) return;
  if (y.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("reduce/row_softmax");
      detail::row_softmax_cuda(x, y, ctx);
    }
    return;
  }
  if (x.dtype() == DType::F32)
    softmax_cpu(x.data<float>(), y.data<float>(), x.rows(), x.cols());
  else
    softmax_cpu(x.data<double>(), y.data<double>(), x.rows(), x.cols());
}

}  // namespace nsamp::kernels
