// Host+device portability: element math written once, compiled by both g++ and nvcc.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define NSAMP_HD __host__ __device__
#define NSAMP_HD_INLINE __host__ __device__ __forceinline__
#else
#define NSAMP_HD
#define NSAMP_HD_INLINE inline
#endif

namespace nsamp::hd {

// Overloads that resolve to the C math library on the host and to CUDA's accurate (non fast-math)
// intrinsics on the device, for float and double alike.
NSAMP_HD_INLINE float exp(float x) { return ::expf(x); }
NSAMP_HD_INLINE double exp(double x) { return ::exp(x); }
// exp(x) for the weights of a log-sum-exp (x = value - running max <= 0), with x < -88 flushed to 0: such
// terms are below 6e-39, under the rounding of the sum they join (which holds at least 1) in float and in
// double, and skipping them avoids glibc's slow underflow path (subnormal results), which took as long as the
// exponentials themselves on the GMM energies.
template <class T>
NSAMP_HD_INLINE T exp_weight(T x) {
  return x < T(-88) ? T(0) : exp(x);
}
NSAMP_HD_INLINE float log(float x) { return ::logf(x); }
NSAMP_HD_INLINE double log(double x) { return ::log(x); }
NSAMP_HD_INLINE float log1p(float x) { return ::log1pf(x); }
NSAMP_HD_INLINE double log1p(double x) { return ::log1p(x); }
NSAMP_HD_INLINE float expm1(float x) { return ::expm1f(x); }
NSAMP_HD_INLINE double expm1(double x) { return ::expm1(x); }
NSAMP_HD_INLINE double floor(double x) { return ::floor(x); }
NSAMP_HD_INLINE float sqrt(float x) { return ::sqrtf(x); }
NSAMP_HD_INLINE double sqrt(double x) { return ::sqrt(x); }
NSAMP_HD_INLINE float tanh(float x) { return ::tanhf(x); }
NSAMP_HD_INLINE double tanh(double x) { return ::tanh(x); }
NSAMP_HD_INLINE float erf(float x) { return ::erff(x); }
NSAMP_HD_INLINE double erf(double x) { return ::erf(x); }
NSAMP_HD_INLINE float erfc(float x) { return ::erfcf(x); }
NSAMP_HD_INLINE double erfc(double x) { return ::erfc(x); }
NSAMP_HD_INLINE float sin(float x) { return ::sinf(x); }
NSAMP_HD_INLINE double sin(double x) { return ::sin(x); }
NSAMP_HD_INLINE float cos(float x) { return ::cosf(x); }
NSAMP_HD_INLINE double cos(double x) { return ::cos(x); }
NSAMP_HD_INLINE float abs(float x) { return ::fabsf(x); }
NSAMP_HD_INLINE double abs(double x) { return ::fabs(x); }

// a * x + b with two roundings on both backends. nvcc contracts a * x + b into one fused multiply-add (one
// rounding); host code does not, being compiled with -ffp-contract=off (cmake/nsamp_options.cmake) although
// its x86-64-v3 default has FMA; where results must match bit for bit (random fills), use this.
NSAMP_HD_INLINE float mul_add_rn(float a, float x, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(a, x), b);
#else
  return a * x + b;
#endif
}
NSAMP_HD_INLINE double mul_add_rn(double a, double x, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(__dmul_rn(a, x), b);
#else
  return a * x + b;
#endif
}

template <class T>
NSAMP_HD_INLINE T max(T a, T b) {
  return a > b ? a : b;
}
template <class T>
NSAMP_HD_INLINE T min(T a, T b) {
  return a < b ? a : b;
}

template <class T>
NSAMP_HD_INLINE T infinity() {
  return T(HUGE_VAL);
}
template <class T>
NSAMP_HD_INLINE T quiet_nan() {
  return T(NAN);
}
template <class T>
NSAMP_HD_INLINE bool is_nan(T x) {
  return x != x;
}

}  // namespace nsamp::hd
