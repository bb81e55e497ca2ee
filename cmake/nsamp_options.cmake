# CUDA detection, architectures, warnings and sanitizers shared by every nsamp target.

if(NSAMP_SANITIZE AND NOT NSAMP_CUDA STREQUAL "OFF")
  message(FATAL_ERROR "NSAMP_SANITIZE=ON needs a CPU-only build: configure with -DNSAMP_CUDA=OFF")
endif()

set(NSAMP_WITH_CUDA OFF)
if(NSAMP_CUDA STREQUAL "AUTO" OR NSAMP_CUDA STREQUAL "ON")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(NSAMP_WITH_CUDA ON)
  elseif(NSAMP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "NSAMP_CUDA=ON but no CUDA compiler (nvcc) was found; set CMAKE_CUDA_COMPILER or use NSAMP_CUDA=OFF")
  endif()
elseif(NOT NSAMP_CUDA STREQUAL "OFF")
  message(FATAL_ERROR "NSAMP_CUDA must be AUTO, ON or OFF (got '${NSAMP_CUDA}')")
endif()

if(NSAMP_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures (default sm_90: H100/H200)")
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "nsamp: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "nsamp: CUDA backend OFF (CPU only)")
endif()

# The host instruction set. x86-64-v3 (AVX2, FMA, BMI2: Intel since Haswell, AMD since Excavator and every
# Zen, so every current server host, the GPU machines' included) is the default on x86-64: Eigen's GEMM gets
# FMA and 8 lanes instead of SSE2's 4, and CPU training of the EGNN and DDS networks takes 0.5-0.6 of the
# time. scripts/device-pack ships the binaries built here, so `native` (which ties them to this CPU) is not
# the default. `none` leaves the compiler's default (baseline x86-64: SSE2). A build run on a CPU without its
# level stops at load time with a message (core/src/cpu_arch.cpp), not on an illegal instruction.
set(nsamp_default_arch none)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang" AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(nsamp_default_arch x86-64-v3)
endif()
set(NSAMP_CPU_ARCH ${nsamp_default_arch} CACHE STRING
    "Host instruction set: an -march value (x86-64-v2, x86-64-v3, x86-64-v4, native, ...) or none")
set_property(CACHE NSAMP_CPU_ARCH PROPERTY STRINGS none x86-64-v2 x86-64-v3 x86-64-v4 native)
if(NSAMP_CPU_ARCH STREQUAL "")
  set(NSAMP_CPU_ARCH none CACHE STRING "Host instruction set" FORCE)
endif()
# What the load-time check asks the CPU for (__builtin_cpu_supports names, each one that core/src/cpu_arch.cpp
# lists; LZCNT, MOVBE and F16C are not among them in clang 14, and the CPUs with AVX2 have them).
set(NSAMP_CPU_FEATURES "")
set(nsamp_v2 sse3 ssse3 sse4.1 sse4.2 popcnt)
if(NSAMP_CPU_ARCH STREQUAL "x86-64-v2")
  set(NSAMP_CPU_FEATURES ${nsamp_v2})
elseif(NSAMP_CPU_ARCH STREQUAL "x86-64-v3")
  set(NSAMP_CPU_FEATURES ${nsamp_v2} avx avx2 fma bmi bmi2)
elseif(NSAMP_CPU_ARCH STREQUAL "x86-64-v4")
  set(NSAMP_CPU_FEATURES ${nsamp_v2} avx avx2 fma bmi bmi2 avx512f avx512bw avx512cd avx512dq avx512vl)
endif()
set(nsamp_host_flags "")
if(NOT NSAMP_CPU_ARCH STREQUAL "none")
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag(-march=${NSAMP_CPU_ARCH} nsamp_march_ok_${NSAMP_CPU_ARCH})
  if(NOT nsamp_march_ok_${NSAMP_CPU_ARCH})
    message(FATAL_ERROR "NSAMP_CPU_ARCH=${NSAMP_CPU_ARCH}: ${CMAKE_CXX_COMPILER_ID} does not accept "
                        "-march=${NSAMP_CPU_ARCH}; give a level it knows, or none")
  endif()
  list(APPEND nsamp_host_flags -march=${NSAMP_CPU_ARCH})
endif()
# The rounding the source says: GCC contracts a * b + c into an FMA by default once the target has one (and
# clang within an expression), which changes results with the instruction set and breaks identities such as
# a * b - a * b == 0. Eigen's kernels call FMA explicitly and keep it.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  list(APPEND nsamp_host_flags -ffp-contract=off)
endif()
foreach(flag IN LISTS nsamp_host_flags)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:${flag}>)
  if(NSAMP_WITH_CUDA)
    add_compile_options($<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${flag}>)
  endif()
endforeach()
if(NSAMP_CPU_FEATURES OR NSAMP_CPU_ARCH STREQUAL "none")
  message(STATUS "nsamp: host instruction set ${NSAMP_CPU_ARCH}")
else()
  message(STATUS "nsamp: host instruction set ${NSAMP_CPU_ARCH} (not checked at load time: "
                 "only x86-64-v2, v3 and v4 are)")
endif()

# Warnings for project code only (never for third-party headers, which come in as SYSTEM includes).
function(nsamp_target_warnings target)
  set(host_flags -Wall -Wextra -Wno-unknown-pragmas)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    list(APPEND host_flags -Wshadow=local)  # clang (scripts/fuzz) spells it differently
  endif()
  if(NSAMP_WERROR)
    list(APPEND host_flags -Werror)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${host_flags}>)
  if(NSAMP_WITH_CUDA)
    list(JOIN host_flags "," host_joined)
    # -lineinfo: compute-sanitizer and Nsight Compute name source lines; no effect on the generated code
    set(cuda_flags -Xcompiler=${host_joined} -lineinfo)
    if(NSAMP_WERROR)
      list(APPEND cuda_flags -Werror=all-warnings)
    endif()
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${cuda_flags}>)
  endif()
  if(NSAMP_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
