// Status checks for CUDA runtime and cuBLAS calls. Include only from CUDA-enabled sources (.cu or
// CUDA-only .cpp): it pulls in the CUDA headers.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "nsamp/core/error.h"

namespace nsamp::detail {

[[noreturn]] inline void throw_cuda(const char* call, const std::string& what, const std::string& detail) {
  throw CudaError("nsamp: " + what + ": " + call + " failed: " + detail);
}

}  // namespace nsamp::detail

// NSAMP_CUDA_CHECK(cudaMemcpyAsync(...), "op name and shapes")
#define NSAMP_CUDA_CHECK(call, what)                                                                \
  do {                                                                                              \
    const cudaError_t nsamp_err_ = (call);                                                          \
    if (nsamp_err_ != cudaSuccess)                                                                  \
      ::nsamp::detail::throw_cuda(                                                                  \
          #call, (what),                                                                            \
          std::string(cudaGetErrorName(nsamp_err_)) + " (" + cudaGetErrorString(nsamp_err_) + ")"); \
  } while (0)

#define NSAMP_CUBLAS_CHECK(call, what)                                              \
  do {                                                                              \
    const cublasStatus_t nsamp_st_ = (call);                                        \
    if (nsamp_st_ != CUBLAS_STATUS_SUCCESS)                                         \
      ::nsamp::detail::throw_cuda(#call, (what), cublasGetStatusString(nsamp_st_)); \
  } while (0)

// After every kernel launch: catches bad launch configurations immediately (asynchronous faults surface at
// the next synchronising call, which is checked too).
#define NSAMP_CUDA_CHECK_LAUNCH(what) NSAMP_CUDA_CHECK(cudaGetLastError(), what)
