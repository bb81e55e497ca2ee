// The CUDA runtime behind core (built only when the CUDA backend is on).
#include <cuda_runtime.h>

#include "cuda_runtime_internal.h"
#include "nsamp/core/cuda_check.h"

namespace nsamp::detail {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return n;
}

CudaDeviceInfo cuda_device_info(int index) {
  cudaDeviceProp p{};
  NSAMP_CUDA_CHECK(cudaGetDeviceProperties(&p, index), "device query cuda:" + std::to_string(index));
  CudaDeviceInfo info;
  info.index = index;
  info.name = p.name;
  info.cc_major = p.major;
  info.cc_minor = p.minor;
  info.multiprocessors = p.multiProcessorCount;
  info.total_memory = p.totalGlobalMem;
  return info;
}

void cuda_set_device(int index) {
  NSAMP_CUDA_CHECK(cudaSetDevice(index), "select device cuda:" + std::to_string(index));
}

void* cuda_malloc_or_null(std::size_t bytes, int device_index) {
  cuda_set_device(device_index);
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return nullptr;
  }
  NSAMP_CUDA_CHECK(err,
                   "allocate " + std::to_string(bytes) + " bytes on cuda:" + std::to_string(device_index));
  return p;
}

void cuda_free(void* ptr, int device_index) {
  // Called from destructors: report but never throw.
  if (cudaSetDevice(device_index) != cudaSuccess || cudaFree(ptr) != cudaSuccess) (void)cudaGetLastError();
}

CUstream_st* cuda_stream_create(int device_index) {
  cuda_set_device(device_index);
  cudaStream_t s = nullptr;
  NSAMP_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "create stream");
  return s;
}

void cuda_stream_destroy(CUstream_st* s) {
  if (s && cudaStreamDestroy(s) != cudaSuccess) (void)cudaGetLastError();
}

void cuda_stream_synchronize(CUstream_st* s, const char* what) {
  NSAMP_CUDA_CHECK(cudaStreamSynchronize(s), what);
}

cublasContext* cublas_create(CUstream_st* s, bool allow_tf32, void* workspace, std::size_t workspace_bytes) {
  cublasHandle_t h = nullptr;
  NSAMP_CUBLAS_CHECK(cublasCreate(&h), "create cuBLAS handle");
  try {
    NSAMP_CUBLAS_CHECK(cublasSetStream(h, s), "bind cuBLAS to the context stream");
    // After cublasSetStream, which resets the workspace to the library's own pool.
    NSAMP_CUBLAS_CHECK(cublasSetWorkspace(h, workspace, workspace_bytes),
                       "give cuBLAS a workspace of " + std::to_string(workspace_bytes) + " bytes");
    NSAMP_CUBLAS_CHECK(cublasSetMathMode(h, allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                       "set cuBLAS math mode");
  } catch (...) {
    (void)cublasDestroy(h);
    throw;
  }
  return h;
}

void cublas_destroy(cublasContext* h) {
  if (h) (void)cublasDestroy(h);
}

void cuda_memcpy(void* dst, bool dst_host, const void* src, bool src_host, std::size_t bytes,
                 CUstream_st* s) {
  if (bytes == 0) return;
  const cudaMemcpyKind kind = dst_host ? (src_host ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost)
                                       : (src_host ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice);
  const std::string what = "copy " + std::to_string(bytes) + " bytes";
  if (dst_host || src_host) {
    // Refused before the runtime sees it: a host copy inside a capture would invalidate the capture with a
    // CUDA error (which compute-sanitizer reports even though the caller recovers).
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    NSAMP_CUDA_CHECK(cudaStreamIsCapturing(s, &capture), what + " (capture status)");
    NSAMP_CHECK(capture == cudaStreamCaptureStatusNone, what,
                (dst_host ? " device -> host" : " host -> device"),
                " while the stream is being captured as a CUDA graph: a captured step cannot move data to or "
                "from the host");
  }
  NSAMP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, s), what);
  // Host memory is pageable: wait, so that a host reader sees the data and a host source may be freed on
  // return (the runtime only promises staging of pageable sources, not completion).
  if (dst_host || src_host) NSAMP_CUDA_CHECK(cudaStreamSynchronize(s), what + " (synchronise with the host)");
}

void cuda_memset_zero(void* dst, std::size_t bytes, CUstream_st* s) {
  if (bytes == 0) return;
  NSAMP_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, s), "zero " + std::to_string(bytes) + " bytes");
}

void cuda_capture_begin(CUstream_st* s) {
  NSAMP_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), "begin graph capture");
}

CUgraphExec_st* cuda_capture_end(CUstream_st* s, bool keep, CUgraph_st** graph) {
  cudaGraph_t g = nullptr;
  const cudaError_t err = cudaStreamEndCapture(s, &g);
  if (!keep || err != cudaSuccess) {
    if (g) (void)cudaGraphDestroy(g);
    (void)cudaGetLastError();
    if (keep)
      NSAMP_CUDA_CHECK(err,
                       "end graph capture (an operation inside the step cannot be captured: a host "
                       "synchronisation, a pageable copy or a call on another stream)");
    return nullptr;
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ierr = cudaGraphInstantiate(&exec, g, 0);
  if (ierr != cudaSuccess) {
    (void)cudaGraphDestroy(g);
    NSAMP_CUDA_CHECK(ierr, "instantiate the captured graph");
  }
  *graph = g;
  return exec;
}

void cuda_graph_launch(CUgraphExec_st* exec, CUstream_st* s) {
  NSAMP_CUDA_CHECK(cudaGraphLaunch(exec, s), "launch the captured graph");
}

void cuda_graph_destroy(CUgraphExec_st* exec, CUgraph_st* graph) {
  if (exec) (void)cudaGraphExecDestroy(exec);
  if (graph) (void)cudaGraphDestroy(graph);
  (void)cudaGetLastError();
}

}  // namespace nsamp::detail
