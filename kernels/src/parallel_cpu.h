// Internal helpers shared by the CPU launchers of the element-wise families (OpenMP loops).
#pragma once

#include <cstdint>

namespace nsamp::kernels::detail {

// Below this many elements an OpenMP team costs more than it saves.
constexpr std::int64_t kParallelMin = 1 << 15;

}  // namespace nsamp::kernels::detail
