// SDE family: one fused step of a controlled path sampler (path_samplers.md). From the network's raw
// outputs, the target's energy gradient and Philox noise drawn in the kernel, it forms the control, the
// running cost and the Ito term of the log-RND, and advances the state: one pass over [B, d] per step instead
// of the dozen tensor ops (and their temporaries) of the same step written with the autograd ops.
//
// Every method of the family is one setting of SdeStepCoef:
//   score  = score_scale * clip(score_x x + score_g gradE)        (the detached score term of the control)
//   u      = clip(nn) + score * clip(nt)                          (nt: the scalar time network, [1] or [B])
//   r      = ref x                                                (the reference control; 0 but for EulerDDS)
//   dW     = sqrt(h) xi,  xi the Philox normal of fill_normal_at(seed, offset) (the same numbers bit for bit)
//   R     += h |u - r|^2 / 2 + (u - r).dW + constant
//   x'     = decay x + diffusion (h u + dW)
// Euler-Maruyama: h = dt, diffusion = sigma(t), decay = 1 + mu'(t) dt. DDS's exponential integrator: h =
// b^2 sigma^2, diffusion = 1, decay = sqrt(1 - b^2) (then dW = sigma b xi). The running cost is the kl /
// evaluation form; the log-variance form u.(w - u/2) with w = u has the same value, so the lv forward pass
// uses it too.
//
// The optional lv gradient: with w = stopgrad(u), d(dR)/du = h (w - u) + dW = dW, so the cotangent of u in
// the step-wise lv backward pass is cot_b dW_b; the kernel writes it to u_grad when `cot` is given.
#pragma once

#include <cmath>
#include <cstdint>

#include "nsamp/core/hd.h"
#include "nsamp/core/philox.h"
#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

struct SdeStepCoef {
  double h = 0;          // running-cost weight of the step (dt, or b^2 sigma^2)
  double diffusion = 1;  // multiplies h u + dW in the state update
  double decay = 1;      // multiplies x in the state update
  double clip = 10;      // elementwise clip of nn, nt and the score argument
  double score_x = 0, score_g = -1, score_scale = 1;
  double ref = 0;
  double constant = 0;  // added to every path's dR (DIS's divergence term at evaluation)
};

// The coefficients in the element type, with sqrt(h) precomputed.
template <class T>
struct SdeCoef {
  T h, sqrt_h, diffusion, decay, clip, score_x, score_g, score_scale, ref;
  explicit SdeCoef(const SdeStepCoef& k)
      : h(T(k.h)),
        sqrt_h(T(std::sqrt(k.h))),
        diffusion(T(k.diffusion)),
        decay(T(k.decay)),
        clip(T(k.clip)),
        score_x(T(k.score_x)),
        score_g(T(k.score_g)),
        score_scale(T(k.score_scale)),
        ref(T(k.ref)) {}
};

template <class T>
NSAMP_HD_INLINE T sde_clip(T v, T c) {
  return v < -c ? -c : (v > c ? c : v);  // NaN passes through, as clamp does
}

// One element of a step: returns its share of dR and writes the new state and dW.
template <class T>
NSAMP_HD_INLINE T sde_element(T x, T nn, T nt, T g, T xi, const SdeCoef<T>& k, T* x_next, T* dw) {
  const T u = sde_clip(nn, k.clip) +
              k.score_scale * sde_clip(k.score_x * x + k.score_g * g, k.clip) * sde_clip(nt, k.clip);
  const T w = k.sqrt_h * xi, diff = u - k.ref * x;
  *x_next = k.decay * x + k.diffusion * (k.h * u + w);
  *dw = w;
  return T(0.5) * k.h * diff * diff + diff * w;
}

// x_next = decay x + diffusion (h u + dW) and R += dR, for x, nn, grad_e [B, d], nt [1] / [1, 1] / [B] /
// [B, 1], R [B]; x_next may be x itself (each element is read before it is written). Noise counters
// offset .. offset + rng_counters(B d) - 1 of `seed` (the offset read when the kernel runs, see
// philox::Offset). With `cot` [B] given, u_grad [B, d] = cot dW.
void sde_step(const Tensor& x, const Tensor& nn, const Tensor& nt, const Tensor& grad_e, const SdeStepCoef& k,
              std::uint64_t seed, philox::Offset offset, Tensor& x_next, Tensor& R, const Tensor* cot,
              Tensor* u_grad, Context& ctx);

// The truncated-normal prior of DIS and DDS drawn where it is used (no host round trip, so a training step
// that starts from it can be captured as a CUDA graph): x[r, c] = scale z, z the entry e = (r / repeats) d +
// c of the Philox normal fills at offset + k round_stride, k = 0, 1, ..., rounds - 1, the first with |z| <=
// a; when all `rounds` draws fall outside, the last is clamped to +-a. Rows with the same r / repeats hold
// the same point (lv_traj's repeated start points). round_stride must be at least rng_counters(rows/repeats
// d).
void truncated_normal_rows(Tensor& x, std::uint64_t seed, philox::Offset offset, std::uint64_t round_stride,
                           int rounds, double a, std::int64_t repeats, double scale, Context& ctx);

// The log-variance loss (lv, lv_traj) from the paths' log-RNDs R [B], computed where R lives. Paths are taken
// in groups of `group` consecutive ones (the whole batch for lv, each start point's copies for lv_traj); a
// path with a non-finite R or R >= drop is left out; every group with at least 2 paths left contributes its
// unbiased variance, and loss = (mean of those variances) / dim. Writes cot [B] = dloss/dR (0 for the paths
// left out) and stats float64 [2] = (loss, paths used); loss is NaN when no group is usable, which makes the
// optimiser skip the step. Sums in float64.
void log_variance_loss(const Tensor& R, std::int64_t group, double drop, double dim, Tensor& cot,
                       Tensor& stats, Context& ctx);

// The KL loss (PIS's objective) from the paths' R [B] (computed with gradients through the whole path): the
// mean of the finite R over dim, paths with a non-finite R left out. Writes cot [B] = dloss/dR (1 / (n dim)
// for the n paths kept, 0 for the others) and stats float64 [2] = (loss, n); loss is NaN when no path is
// finite, which makes the optimiser skip the step. Sums in float64.
void kl_path_loss(const Tensor& R, double dim, Tensor& cot, Tensor& stats, Context& ctx);

template <class T>
NSAMP_HD_INLINE T truncated_normal_element(std::uint64_t seed, std::uint64_t offset, std::uint64_t stride,
                                           int rounds, T a, std::int64_t e) {
  constexpr int kPer = philox::values_per_counter<T>();
  T z = 0;
  for (int k = 0; k < rounds; ++k) {
    T block[kPer];
    philox::normal_block(seed, offset + std::uint64_t(k) * stride + std::uint64_t(e / kPer), block);
    z = block[e % kPer];
    if (!(hd::abs(z) > a)) return z;
  }
  return z < 0 ? -a : a;
}

NSAMP_HD_INLINE bool lv_usable(double r, double drop) { return r - r == 0 && r < drop; }  // finite, < drop

namespace detail {
void truncated_normal_rows_cuda(Tensor& x, std::uint64_t seed, philox::Offset offset, std::uint64_t stride,
                                int rounds, double a, std::int64_t repeats, double scale, Context& ctx);
void log_variance_loss_cuda(const Tensor& R, std::int64_t group, double drop, double dim, Tensor& cot,
                            Tensor& stats, Context& ctx);
void kl_path_loss_cuda(const Tensor& R, double dim, Tensor& cot, Tensor& stats, Context& ctx);
void sde_step_cuda(const Tensor& x, const Tensor& nn, const Tensor& nt, const Tensor& grad_e,
                   const SdeStepCoef& k, std::uint64_t seed, philox::Offset offset, Tensor& x_next, Tensor& R,
                   const Tensor* cot, Tensor* u_grad, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
