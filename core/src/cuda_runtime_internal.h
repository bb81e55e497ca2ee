// Internal: the CUDA runtime pieces core needs, behind plain C++ signatures so that core's .cpp files compile
// with g++ alone. Defined in cuda_runtime.cpp, which is built only with CUDA; callers reach these functions
// only under `if constexpr (kCudaBuilt)`, so a CPU-only build never needs their definitions.
#pragma once

#include <cstddef>

#include "nsamp/core/device.h"

struct CUstream_st;
struct cublasContext;
struct CUgraph_st;
struct CUgraphExec_st;

namespace nsamp::detail {

int cuda_device_count();  // 0 on any error (no driver, no device)
CudaDeviceInfo cuda_device_info(int index);
void cuda_set_device(int index);

void* cuda_malloc_or_null(std::size_t bytes, int device_index);  // nullptr when out of memory
void cuda_free(void* ptr, int device_index);

CUstream_st* cuda_stream_create(int device_index);
void cuda_stream_destroy(CUstream_st* s);
void cuda_stream_synchronize(CUstream_st* s, const char* what);

// The handle gets `workspace` (bytes of device memory that outlive it) as its workspace: cuBLAS then never
// allocates inside a captured graph.
cublasContext* cublas_create(CUstream_st* s, bool allow_tf32, void* workspace, std::size_t workspace_bytes);
void cublas_destroy(cublasContext* h);

// Stream-ordered copy between any two of host/device memory; synchronises the stream when either side is host
// memory, so that the caller may read the destination or free the source on return.
void cuda_memcpy(void* dst, bool dst_host, const void* src, bool src_host, std::size_t bytes, CUstream_st* s);
void cuda_memset_zero(void* dst, std::size_t bytes, CUstream_st* s);

// Stream capture (relaxed mode: the caching allocator may cudaMalloc a capture pool's blocks meanwhile).
void cuda_capture_begin(CUstream_st* s);
// Ends the capture; with `keep`, instantiates and returns the executable graph (and the graph in *graph),
// else discards it. Throws when the capture was invalidated.
CUgraphExec_st* cuda_capture_end(CUstream_st* s, bool keep, CUgraph_st** graph);
void cuda_graph_launch(CUgraphExec_st* exec, CUstream_st* s);
void cuda_graph_destroy(CUgraphExec_st* exec, CUgraph_st* graph);  // never throws

}  // namespace nsamp::detail
