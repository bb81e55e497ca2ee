// The host instruction set a build targets (CMake's NSAMP_CPU_ARCH) and whether the running CPU has it.
#pragma once

#include <string>
#include <string_view>

namespace nsamp {

// The -march value the host code was compiled for ("x86-64-v3", "native", ...), or "none".
const char* built_cpu_arch();

// The instruction-set extensions the build needs that this CPU lacks, space-separated; empty when it runs
// this build (or when the build names none to check, as for `native`). A library linked into a program on
// such a CPU stops it at load time with this list, before any of its code runs.
std::string missing_cpu_features();

namespace detail {
// The names in `features` (space- or comma-separated __builtin_cpu_supports names) that this CPU lacks; a
// name the check does not know throws.
std::string missing_cpu_features(std::string_view features);
}  // namespace detail

}  // namespace nsamp
