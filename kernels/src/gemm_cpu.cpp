// GEMM family: checks, dispatch and the CPU launcher (Eigen, multithreaded through OpenMP).
#include <Eigen/Core>

#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/gemm.h"
#include "nsamp/kernels/operands.h"

namespace nsamp::kernels {

namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class T>
void gemm_cpu(const Tensor& A, bool ta, const Tensor& B, bool tb, Tensor& C, double alpha, double beta) {
  Eigen::Map<const RowMat<T>> a(A.data<T>(), A.dim(0), A.dim(1));
  Eigen::Map<const RowMat<T>> b(B.data<T>(), B.dim(0), B.dim(1));
  Eigen::Map<RowMat<T>> c(C.data<T>(), C.dim(0), C.dim(1));
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  if (beta == 0.0)
    c.setZero();  // beta == 0 means write-only: never let NaN in C leak through 0 * NaN
  else if (be != T(1))
    c *= be;
  if (a.size() == 0 || b.size() == 0) return;  // K == 0: the product is zero
  if (!ta && !tb)
    c.noalias() += al * a * b;
  else if (ta && !tb)
    c.noalias() += al * a.transpose() * b;
  else if (!ta && tb)
    c.noalias() += al * a * b.transpose();
  else
    c.noalias() += al * a.transpose() * b.transpose();
}

}  // namespace

void gemm(const Tensor& A, bool trans_a, const Tensor& B, bool trans_b, Tensor& C, double alpha, double beta,
          Context& ctx) {
  check_operands("gemm", ctx, {{"C", &C}, {"A", &A}, {"B", &B}});
  NSAMP_CHECK(A.rank() == 2 && B.rank() == 2 && C.rank() == 2, "gemm: needs 2-D tensors, got A ", A.desc(),
              ", B ", B.desc(), ", C ", C.desc());
  const std::int64_t M = trans_a ? A.dim(1) : A.dim(0), K = trans_a ? A.dim(0) : A.dim(1);
  const std::int64_t Kb = trans_b ? B.dim(1) : B.dim(0), N = trans_b ? B.dim(0) : B.dim(1);
  NSAMP_CHECK(K == Kb && C.dim(0) == M && C.dim(1) == N, "gemm: shapes do not agree: op(A) [", M, ", ", K,
              "] (A ", A.desc(), trans_a ? " transposed" : "", "), op(B) [", Kb, ", ", N, "] (B ", B.desc(),
              trans_b ? " transposed" : "", "), C ", C.desc());
  NSAMP_CHECK(!C.same_storage(A) && !C.same_storage(B), "gemm: C must not share memory with A or B");
  if (M == 0 || N == 0) return;
  if (C.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("gemm/gemm");
      detail::gemm_cuda(A, trans_a, B, trans_b, C, alpha, beta, M, N, K, ctx);
    }
    return;
  }
  if (C.dtype() == DType::F32)
    gemm_cpu<float>(A, trans_a, B, trans_b, C, alpha, beta);
  else
    gemm_cpu<double>(A, trans_a, B, trans_b, C, alpha, beta);
}

void linear(const Tensor& x, const Tensor& W, const Tensor& bias, Tensor& y, Context& ctx) {
  NSAMP_CHECK(W.defined() && W.rank() == 2, "linear: W must be a 2-D [out, in] tensor, got ", W.desc());
  if (bias.defined()) {
    NSAMP_CHECK(bias.numel() == W.dim(0) && bias.cols() == W.dim(0), "linear: bias ", bias.desc(),
                " does not match W ", W.desc(), " (needs ", W.dim(0), " elements)");
  }
  gemm(x, false, W, true, y, 1.0, 0.0, ctx);
  if (bias.defined()) add(y, bias, y, ctx);
}

}  // namespace nsamp::kernels
