// Checks at load time that the CPU has the instruction set the build targets. This file alone is compiled
// for the baseline instruction set (core/CMakeLists.txt), and the load-time path is plain C (no template,
// whose weak copy the linker might take from a translation unit built for the wider set), so that the check
// itself runs on any x86-64 CPU.
#include "nsamp/core/cpu_arch.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "nsamp/core/error.h"

#ifndef NSAMP_CPU_ARCH
#define NSAMP_CPU_ARCH "none"
#endif
#ifndef NSAMP_CPU_FEATURES
#define NSAMP_CPU_FEATURES ""
#endif

namespace nsamp {

namespace {

enum Has { kYes, kNo, kUnknown };

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define NSAMP_CPU_CHECK 1
// __builtin_cpu_supports takes a literal, so the names the CMake levels use are listed here (each known to
// GCC 12 and clang 14).
Has cpu_has(const char* name, std::size_t len) {
  __builtin_cpu_init();  // this may run before libgcc's own constructor
#define NSAMP_FEATURE(f) \
  if (len == sizeof(f) - 1 && std::strncmp(name, f, len) == 0) return __builtin_cpu_supports(f) ? kYes : kNo;
  NSAMP_FEATURE("sse3")
  NSAMP_FEATURE("ssse3")
  NSAMP_FEATURE("sse4.1")
  NSAMP_FEATURE("sse4.2")
  NSAMP_FEATURE("popcnt")
  NSAMP_FEATURE("avx")
  NSAMP_FEATURE("avx2")
  NSAMP_FEATURE("fma")
  NSAMP_FEATURE("bmi")
  NSAMP_FEATURE("bmi2")
  NSAMP_FEATURE("avx512f")
  NSAMP_FEATURE("avx512bw")
  NSAMP_FEATURE("avx512cd")
  NSAMP_FEATURE("avx512dq")
  NSAMP_FEATURE("avx512vl")
#undef NSAMP_FEATURE
  return kUnknown;
}
#else
#define NSAMP_CPU_CHECK 0
Has cpu_has(const char*, std::size_t) { return kUnknown; }
#endif

// Appends to out (a C string of capacity cap) the names of `list` (separated by spaces, commas or
// semicolons) for which cpu_has says `which`, space-separated; returns how many.
int collect(const char* list, Has which, char* out, std::size_t cap) {
  int n = 0;
  for (const char* p = list; *p;) {
    const std::size_t len = std::strcspn(p, " ,;");
    if (len > 0 && cpu_has(p, len) == which) {
      const std::size_t used = std::strlen(out);
      if (used + len + 2 < cap) {
        if (used > 0) std::strcat(out, " ");
        std::strncat(out, p, len);
      }
      ++n;
    }
    p += len;
    if (*p) ++p;
  }
  return n;
}

// Runs before the other static initialisers (101 is the first priority open to programs), so that a CPU
// without the build's instructions gets this message and not an illegal-instruction signal. Linked into
// every program by the anchor symbol below, which nsamp_core's link interface names.
__attribute__((constructor(101))) void check_at_load() {
  if (!NSAMP_CPU_CHECK) return;
  char missing[256] = "";
  if (collect(NSAMP_CPU_FEATURES, kNo, missing, sizeof missing) == 0) return;
  std::fprintf(stderr,
               "nsamp: this build targets the instruction set %s, and this CPU lacks %s; rebuild nsamp with "
               "-DNSAMP_CPU_ARCH=none (or the level this CPU has)\n",
               NSAMP_CPU_ARCH, missing);
  std::_Exit(EXIT_FAILURE);
}

}  // namespace

// The anchor (a C name, for the linker's --undefined).
extern "C" void nsamp_cpu_arch_check_anchor() {}

const char* built_cpu_arch() { return NSAMP_CPU_ARCH; }

std::string missing_cpu_features() {
  return NSAMP_CPU_CHECK ? detail::missing_cpu_features(NSAMP_CPU_FEATURES) : "";
}

namespace detail {

std::string missing_cpu_features(std::string_view features) {
  const std::string list(features);
  char unknown[256] = "";
  NSAMP_CHECK(collect(list.c_str(), kUnknown, unknown, sizeof unknown) == 0, "cpu features: ", unknown,
              NSAMP_CPU_CHECK ? " is not a feature the check knows" : ": this platform has no check");
  char missing[512] = "";
  collect(list.c_str(), kNo, missing, sizeof missing);
  return missing;
}

}  // namespace detail

}  // namespace nsamp
