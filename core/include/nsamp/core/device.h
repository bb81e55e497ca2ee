// Device discovery: what the process can see, and the default choice (CUDA when present, else the CPU).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "nsamp/core/types.h"

namespace nsamp {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int multiprocessors = 0;
  std::size_t total_memory = 0;  // bytes
};

// Number of usable CUDA devices: 0 in a CPU-only build, without a driver, or without a GPU. Never throws.
int cuda_device_count();
std::vector<CudaDeviceInfo> cuda_devices();
Device default_device();
// "auto" | "cpu" | "cuda" | "cuda:N"; throws nsamp::Error naming the bad string otherwise.
Device parse_device(const std::string& s);

}  // namespace nsamp
