// NVTX ranges for profilers (Nsight Systems, Nsight Compute's --nvtx filters): NSAMP_RANGE("family/op")
// opens a range that closes at the end of the scope. Every CUDA op dispatch and every training phase has
// one ("elementwise/binary", "dikl/posterior", ...). With the CUDA backend the ranges go through NVTX3
// (header-only; without a profiler attached a push costs one predictable branch); a CPU-only build compiles
// them to nothing.
#pragma once

#include "nsamp/core/config.h"

#if NSAMP_WITH_CUDA && defined(__has_include)
#if __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
#define NSAMP_HAVE_NVTX 1
#endif
#endif

namespace nsamp {

#ifdef NSAMP_HAVE_NVTX
class ScopedRange {
 public:
  explicit ScopedRange(const char* name) { nvtxRangePushA(name); }
  ~ScopedRange() { nvtxRangePop(); }
  ScopedRange(const ScopedRange&) = delete;
  ScopedRange& operator=(const ScopedRange&) = delete;
};
#define NSAMP_RANGE_CAT2(a, b) a##b
#define NSAMP_RANGE_CAT(a, b) NSAMP_RANGE_CAT2(a, b)
#define NSAMP_RANGE(name) ::nsamp::ScopedRange NSAMP_RANGE_CAT(nsamp_range_, __LINE__)(name)
#else
#define NSAMP_RANGE(name) static_cast<void>(0)
#endif

}  // namespace nsamp
