// GEMM family: CUDA launcher (cuBLAS). Row-major C = op(A) op(B) is computed as the column-major product
// C^T = op(B)^T op(A)^T, which needs no data movement: a row-major matrix is its transpose in column-major.
#include "nsamp/core/cuda_check.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/gemm.h"

namespace nsamp::kernels::detail {

void gemm_cuda(const Tensor& A, bool trans_a, const Tensor& B, bool trans_b, Tensor& C, double alpha,
               double beta, std::int64_t M, std::int64_t N, std::int64_t K, Context& ctx) {
  NSAMP_CHECK(
      M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && A.dim(1) <= INT32_MAX && B.dim(1) <= INT32_MAX,
      "gemm: dimensions beyond 2^31 are not supported by this cuBLAS path: A ", A.desc(), ", B ", B.desc());
  if (K == 0) {  // empty product: C = beta * C, with beta == 0 meaning write-only
    if (beta == 0.0)
      zero(C, ctx);
    else
      affine(C, beta, 0.0, C, ctx);
    return;
  }
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  // Leading dimensions are the row lengths of the row-major buffers (at least 1, as cuBLAS requires).
  const int lda = static_cast<int>(B.dim(1) > 0 ? B.dim(1) : 1);
  const int ldb = static_cast<int>(A.dim(1) > 0 ? A.dim(1) : 1);
  const int ldc = static_cast<int>(N);
  const std::string what = "gemm A " + A.desc() + (trans_a ? "^T" : "") + ", B " + B.desc() +
                           (trans_b ? "^T" : "") + ", C " + C.desc();
  if (C.dtype() == DType::F32) {
    const float al = static_cast<float>(alpha), be = static_cast<float>(beta);
    NSAMP_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), op_b, op_a, m, n, k, &al, B.data<float>(), lda,
                                   A.data<float>(), ldb, &be, C.data<float>(), ldc),
                       what);
  } else {
    NSAMP_CUBLAS_CHECK(cublasDgemm(ctx.cublas(), op_b, op_a, m, n, k, &alpha, B.data<double>(), lda,
                                   A.data<double>(), ldb, &beta, C.data<double>(), ldc),
                       what);
  }
}

}  // namespace nsamp::kernels::detail
