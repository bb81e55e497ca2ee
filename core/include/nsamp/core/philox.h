// Counter-based Philox4x32-10 (Salmon et al., SC'11) and its mapping to uniform and normal numbers, written
// once for the host and the device: a (seed, counter) pair gives the same numbers on both backends, up to the
// last-ulp differences of log/cos between the C library and CUDA.
#pragma once

#include <cstdint>

#include "nsamp/core/hd.h"

namespace nsamp::philox {

struct U32x4 {
  std::uint32_t v[4];
};

NSAMP_HD_INLINE std::uint32_t mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t* hi) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  *hi = static_cast<std::uint32_t>(p >> 32);
  return static_cast<std::uint32_t>(p);
}

// The raw generator: 10 rounds on a 128-bit counter under a 64-bit key.
NSAMP_HD_INLINE U32x4 philox4x32_10(U32x4 ctr, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, hi1;
    const std::uint32_t lo0 = mulhilo(kM0, ctr.v[0], &hi0);
    const std::uint32_t lo1 = mulhilo(kM1, ctr.v[2], &hi1);
    ctr = U32x4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// The nsamp stream: key = seed, counter = (index, stream). Fills use stream 0; kernels that draw noise inside
// (SDE steps, MCMC) use their own stream numbers so they never overlap a fill's counters.
NSAMP_HD_INLINE U32x4 draw(std::uint64_t seed, std::uint64_t index, std::uint64_t stream = 0) {
  const U32x4 ctr{{static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                   static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}};
  return philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// A counter offset whose varying part may live in memory the kernels read (device memory for CUDA, host
// memory for the CPU path): counter base = offset + *base. A captured CUDA graph bakes its kernels'
// arguments, so a training step replayed as a graph draws fresh numbers only if the per-step part of its
// offsets is read from memory that the step itself advances (core/rng_counter.h). Converts from a plain
// offset (base null), so every launcher that takes one takes the other.
struct Offset {
  std::uint64_t offset = 0;
  const std::uint64_t* base = nullptr;
  NSAMP_HD_INLINE Offset(std::uint64_t o = 0, const std::uint64_t* b = nullptr) : offset(o), base(b) {}
  NSAMP_HD_INLINE std::uint64_t value() const { return base ? offset + *base : offset; }
  NSAMP_HD_INLINE Offset operator+(std::uint64_t n) const { return Offset(offset + n, base); }
};

// Uniform in the open interval (0, 1), symmetric about 1/2, safe to take logs of. One bit fewer than the
// mantissa holds, so that k + 1/2 stays exact and the largest value rounds below 1.
NSAMP_HD_INLINE float uniform_f32(std::uint32_t x) { return (static_cast<float>(x >> 9) + 0.5f) * 0x1p-23f; }
NSAMP_HD_INLINE double uniform_f64(std::uint32_t a, std::uint32_t b) {
  const std::uint64_t bits = (static_cast<std::uint64_t>(a) << 20) ^ (b >> 12);  // 52 random bits
  return (static_cast<double>(bits) + 0.5) * 0x1p-52;
}

// Box-Muller on a pair of uniforms in (0, 1).
template <class T>
NSAMP_HD_INLINE void box_muller(T u1, T u2, T* z0, T* z1) {
  const T r = hd::sqrt(T(-2) * hd::log(u1));
  const T theta = T(6.283185307179586476925286766559) * u2;
  *z0 = r * hd::cos(theta);
  *z1 = r * hd::sin(theta);
}

// Counters per element: float32 takes 4 values from one counter, float64 takes 2 (two words each).
template <class T>
NSAMP_HD constexpr int values_per_counter() {
  return sizeof(T) == 4 ? 4 : 2;
}

// Values number k*n .. k*n+n-1 of a fill (n = values_per_counter<T>()) from counter `index`.
NSAMP_HD_INLINE void uniform_block(std::uint64_t seed, std::uint64_t index, float out[4]) {
  const U32x4 r = draw(seed, index);
  for (int i = 0; i < 4; ++i) out[i] = uniform_f32(r.v[i]);
}
NSAMP_HD_INLINE void uniform_block(std::uint64_t seed, std::uint64_t index, double out[2]) {
  const U32x4 r = draw(seed, index);
  out[0] = uniform_f64(r.v[0], r.v[1]);
  out[1] = uniform_f64(r.v[2], r.v[3]);
}
NSAMP_HD_INLINE void normal_block(std::uint64_t seed, std::uint64_t index, float out[4]) {
  const U32x4 r = draw(seed, index);
  box_muller(uniform_f32(r.v[0]), uniform_f32(r.v[1]), &out[0], &out[1]);
  box_muller(uniform_f32(r.v[2]), uniform_f32(r.v[3]), &out[2], &out[3]);
}
NSAMP_HD_INLINE void normal_block(std::uint64_t seed, std::uint64_t index, double out[2]) {
  const U32x4 r = draw(seed, index);
  box_muller(uniform_f64(r.v[0], r.v[1]), uniform_f64(r.v[2], r.v[3]), &out[0], &out[1]);
}

}  // namespace nsamp::philox
