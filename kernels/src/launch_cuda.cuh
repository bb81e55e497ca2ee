// Internal helpers shared by the CUDA launchers of every family.
#pragma once

#include <cstdint>

namespace nsamp::kernels::detail {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;  // every lane of a warp, for the *_sync intrinsics

// Grid for a grid-stride loop over `work` items: enough blocks to fill any current GPU, capped so that very
// large tensors are covered by striding rather than by huge grids.
inline int grid_for(std::int64_t work, int threads = kThreads) {
  const std::int64_t blocks = (work + threads - 1) / threads;
  constexpr std::int64_t kMaxBlocks = 132 * 32;  // 32 blocks per SM on an H100
  return static_cast<int>(blocks < 1 ? 1 : (blocks < kMaxBlocks ? blocks : kMaxBlocks));
}

// The block's dynamic shared memory as an array `name` of T (a CPU emulation of the kernels defines its own).
#ifndef NSAMP_DYNAMIC_SHARED
#define NSAMP_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

#define NSAMP_GRID_STRIDE(i, n)                                                       \
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += std::int64_t(gridDim.x) * blockDim.x)

}  // namespace nsamp::kernels::detail
