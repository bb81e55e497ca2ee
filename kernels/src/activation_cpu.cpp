// Elementwise family: the float32 activation loops of the CPU launcher, in blocks that the compiler
// vectorises. The transcendental functions (erfc for GELU, exp for SiLU and GELU's derivative, tanh,
// log1p) dominate CPU training of the GELU and SiLU networks when called one element at a time (glibc's
// scalar erfcf took 30% of a DDS step). glibc's libmvec has vector versions of each, within 4 ulp of the
// exact result; GCC picks the width when it compiles (8-wide AVX2 at the default NSAMP_CPU_ARCH x86-64-v3,
// 4-wide SSE with `none`; each width gives its own last bits), and libmvec dispatches that width to the CPU's
// best implementation at load time. float64 keeps the scalar C library: it is the reference dtype.
#include <math.h>

#include <algorithm>

#include "activation_cpu.h"
#include "parallel_cpu.h"

#if NSAMP_HAVE_LIBMVEC
// The declarations <bits/math-vector.h> makes only under -ffast-math (which this project does not use: it
// would license reassociation and drop NaN and infinity handling everywhere): they tell GCC that vector
// clones of these functions exist in libmvec, so that `omp simd` loops calling them vectorise. This file is
// its own translation unit (outside unity builds) so that no other loop sees them.
extern "C" {
__attribute__((__simd__("notinbranch"))) float expf(float) noexcept;
__attribute__((__simd__("notinbranch"))) float erfcf(float) noexcept;
__attribute__((__simd__("notinbranch"))) float tanhf(float) noexcept;
__attribute__((__simd__("notinbranch"))) float log1pf(float) noexcept;
}
#endif

// Only where the vector functions exist: clang takes `omp simd` as an order and warns (an error under
// NSAMP_WERROR) when a loop of scalar calls cannot follow it.
#if NSAMP_HAVE_LIBMVEC
#define NSAMP_ACT_SIMD _Pragma("omp simd")
#else
#define NSAMP_ACT_SIMD
#endif

namespace nsamp::kernels::detail {

namespace {

// Elements per block: a multiple of every vector width. A partial block (the tail of a row or of the
// array) is padded with zeros and computed in full, so that no element takes a scalar path.
constexpr int kBlock = 64;

template <Activation A>
void forward_block(const float* in, float* out) {
  NSAMP_ACT_SIMD
  for (int i = 0; i < kBlock; ++i) out[i] = activation_forward(A, in[i]);
}

template <Activation A>
void backward_block(const float* in, const float* gy, float* out) {
  NSAMP_ACT_SIMD
  for (int i = 0; i < kBlock; ++i) out[i] = gy[i] * activation_derivative(A, in[i]);
}

// y[0, m) = act(x[0, m)), m <= kBlock, through local buffers: x and y may be the same array.
template <Activation A>
void forward_span(const float* x, float* y, int m) {
  alignas(64) float in[kBlock], out[kBlock];
  std::copy(x, x + m, in);
  std::fill(in + m, in + kBlock, 0.0f);
  forward_block<A>(in, out);
  std::copy(out, out + m, y);
}

template <Activation A>
void forward(std::int64_t n, const float* x, float* y, bool parallel = true) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (parallel && n > kParallelMin)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t o = b * kBlock;
    forward_span<A>(x + o, y + o, static_cast<int>(std::min<std::int64_t>(kBlock, n - o)));
  }
}

template <Activation A>
void backward(std::int64_t n, const float* x, const float* gy, float* gx) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t o = b * kBlock;
    const int m = static_cast<int>(std::min<std::int64_t>(kBlock, n - o));
    alignas(64) float in[kBlock], g[kBlock], out[kBlock];
    std::copy(x + o, x + o + m, in);
    std::copy(gy + o, gy + o + m, g);
    std::fill(in + m, in + kBlock, 0.0f);
    std::fill(g + m, g + kBlock, 0.0f);
    backward_block<A>(in, g, out);
    std::copy(out, out + m, gx + o);
  }
}

// The bias first, then the activation over z as one flat array (not row by row: a row narrower than a block
// would pad, 64 sigmoids for the one of an attention gate).
template <Activation A>
void bias_forward(std::int64_t R, std::int64_t C, const float* bias, float* z, float* a) {
#pragma omp parallel for schedule(static) if (R * C > kParallelMin)
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t c = 0; c < C; ++c) z[r * C + c] += bias[c];
  forward<A>(R * C, z, a);
}

}  // namespace

void activation_forward_f32(Activation act, std::int64_t n, const float* x, float* y) {
  with_activation(act, [&](auto a) { forward<decltype(a)::value>(n, x, y); });
}

void activation_forward_f32_serial(Activation act, std::int64_t n, const float* x, float* y) {
  with_activation(act, [&](auto a) { forward<decltype(a)::value>(n, x, y, false); });
}

void activation_backward_f32(Activation act, std::int64_t n, const float* x, const float* gy, float* gx) {
  with_activation(act, [&](auto a) { backward<decltype(a)::value>(n, x, gy, gx); });
}

void bias_activation_forward_f32(Activation act, std::int64_t R, std::int64_t C, const float* bias, float* z,
                                 float* a) {
  with_activation(act, [&](auto k) { bias_forward<decltype(k)::value>(R, C, bias, z, a); });
}

}  // namespace nsamp::kernels::detail
