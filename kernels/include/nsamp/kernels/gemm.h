// GEMM family: C = alpha * op(A) op(B) + beta * C on row-major 2-D tensors (Eigen on the CPU, cuBLAS on
// CUDA), and the linear layer y = x W^T + b in PyTorch's weight convention (W is [out, in]).
#pragma once

#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

// op(A) is [M, K] (A is [M, K], or [K, M] with trans_a), op(B) is [K, N], C is [M, N].
// With beta == 0, C is write-only (its old contents, even NaN, are ignored). C must not alias A or B.
// fp32 on CUDA runs in exact fp32 unless the context allows TF32.
void gemm(const Tensor& A, bool trans_a, const Tensor& B, bool trans_b, Tensor& C, double alpha, double beta,
          Context& ctx);

// y[B, out] = x[B, in] W[out, in]^T (+ bias[out] when bias is defined).
void linear(const Tensor& x, const Tensor& W, const Tensor& bias, Tensor& y, Context& ctx);

namespace detail {
void gemm_cuda(const Tensor& A, bool trans_a, const Tensor& B, bool trans_b, Tensor& C, double alpha,
               double beta, std::int64_t M, std::int64_t N, std::int64_t K, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
