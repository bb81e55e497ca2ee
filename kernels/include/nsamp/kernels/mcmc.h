// MCMC family: the Metropolis-adjusted Langevin (MALA) proposal and accept/reject, and the accept/reject of
// any move whose log ratio the caller computed (HMC), batched over chains (one chain per row). The target's
// energy and gradient are evaluated between proposal and decision by the caller; or, for a target with an
// element functor, the whole step runs fused per chain (mala_fused_row, launched by the targets).
//
// Chains may run on a Gaussian tilt of the energy, DiKL's posterior p(x0 | x_t) ∝ exp(-beta E(x0))
// N(x_t; a x0, s^2 I): U(x) = beta E(x) + c |x_t - a x|^2 with c = 1 / (2 s^2), per chain. The chain state
// keeps the untilted E and grad E (what the AIS weights and DiKL's score identity need), and U, grad U are
// formed from them where the proposal and the decision need them, so changing beta costs no evaluation.
#pragma once

#include <cstdint>

#include "nsamp/core/hd.h"
#include "nsamp/core/philox.h"
#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

// The tilt on the host: xt [B, d], a and c [B] (per chain), beta. xt undefined: no tilt, U = E.
struct GaussianTilt {
  Tensor xt, a, c;
  double beta = 1.0;
  bool active() const { return xt.defined(); }
};

// The tilt's element math. Row b of the chains: x points at its d values.
template <class T>
struct TiltView {
  const T* xt = nullptr;  // null: no tilt
  const T* a = nullptr;
  const T* c = nullptr;
  T beta = T(1);
  NSAMP_HD_INLINE T u(std::int64_t b, std::int64_t d, const T* x, T e) const {
    if (!xt) return e;
    T q = 0;
    for (std::int64_t j = 0; j < d; ++j) {
      const T r = a[b] * x[j] - xt[b * d + j];
      q += r * r;
    }
    return beta * e + c[b] * q;
  }
  // dU/dx_j from dE/dx_j = g.
  NSAMP_HD_INLINE T du(std::int64_t b, std::int64_t d, std::int64_t j, T x, T g) const {
    if (!xt) return g;
    return beta * g + T(2) * c[b] * a[b] * (a[b] * x - xt[b * d + j]);
  }
};

template <class T>
TiltView<T> tilt_view(const GaussianTilt& t) {
  if (!t.active()) return {};
  return {t.xt.data<T>(), t.a.data<T>(), t.c.data<T>(), T(t.beta)};
}

// log of the Metropolis-Hastings ratio of a MALA move x -> y with step eta, from the row sums
//   fwd = |y - x + eta g_x|^2 (the forward proposal's exponent) and bwd = |x - y + eta g_y|^2:
//   log alpha = -(E_y - E_x) - bwd / (4 eta) + fwd / (4 eta).
template <class T>
NSAMP_HD_INLINE T mala_log_ratio(T e_x, T e_y, T fwd, T bwd, T eta) {
  return -(e_y - e_x) + (fwd - bwd) / (T(4) * eta);
}

// A step size fixed when the work is queued, or read (float64) from memory on the tensors' device when it
// runs: DiKL's adaptive posterior step, changed by the step itself inside a captured training step.
struct StepSize {
  double value = 0;
  const double* ptr = nullptr;
  StepSize(double v = 0) : value(v) {}  // NOLINT: a plain step converts
  explicit StepSize(const double* p) : ptr(p) {}
  template <class T>
  NSAMP_HD_INLINE T get() const {
    return T(ptr ? *ptr : value);
  }
  // A fixed step must be positive; a device one is the caller's to keep positive.
  bool valid() const { return ptr || value > 0; }
};

// y = x - step * grad U(x) + sqrt(2 step) * noise, all [B, d]; grad holds grad E (grad U = grad E untilted).
void langevin_propose(const Tensor& x, const Tensor& grad, const Tensor& noise, StepSize step, Tensor& y,
                      Context& ctx, const GaussianTilt& tilt = {});

// Per chain b: accept y_b when log_u_b < log alpha_b (a NaN or -inf ratio rejects); an accepted chain copies
// (y, e_y, g_y) into (x, e, grad) and adds 1 to accepted_b (counts are exact up to 2^24 per chain in
// float32). x, grad, y, gy: [B, d]; e, ey, log_u, accepted: [B].
// With a tilt, e / ey and grad / gy hold the untilted E and grad E, and the ratio is U's.
void mala_accept(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey, const Tensor& gy,
                 const Tensor& log_u, StepSize step, Tensor& accepted, Context& ctx,
                 const GaussianTilt& tilt = {});

// U and grad U of the tilt from E and grad E at x: eu [B] (may be e), gu [B, d] (may be grad; both or
// neither of grad and gu).
void tilt_energy(const Tensor& x, const Tensor& e, const Tensor* grad, const GaussianTilt& tilt, Tensor& eu,
                 Tensor* gu, Context& ctx);

// Counters of the context's Philox stream that one MALA step of B chains in d dimensions draws from: the
// noise as fill_normal of a [B, d] tensor at `noise`, then the uniforms as fill_uniform of a [B] tensor at
// `uniform`, so the fused step and the unfused sequence draw the same numbers.
// With `base` set (a device counter, core/rng_counter.h), both offsets are relative to its value at run time.
struct MalaDraws {
  std::uint64_t seed = 0, noise = 0, uniform = 0;
  const std::uint64_t* base = nullptr;
  NSAMP_HD_INLINE MalaDraws resolved() const {
    if (!base) return *this;
    MalaDraws r = *this;
    r.noise += *base;
    r.uniform += *base;
    r.base = nullptr;
    return r;
  }
};

// One fused MALA step of chain b (x, g: its row of the state, E and grad E; e, acc: its scalars; y, gy: a
// row of scratch): the proposal, f.eval(y, gy) (any element functor with T eval(const T* x, T* g)), the
// decision on U (the tilt's), and the copy of an accepted move, with the draws of the unfused sequence
// (langevin_propose, the target, mala_accept).
template <class T, class F>
NSAMP_HD void mala_fused_row(const F& f, const TiltView<T>& tilt, const MalaDraws& draws, std::int64_t b,
                             std::int64_t d, T step, T* x, T* g, T* e, T* y, T* gy, T* acc) {
  constexpr int kPer = philox::values_per_counter<T>();
  const MalaDraws r = draws.resolved();
  const T s = hd::sqrt(T(2) * step);
  T z[kPer];
  std::uint64_t block = ~std::uint64_t(0);
  for (std::int64_t j = 0; j < d; ++j) {
    const std::uint64_t k = std::uint64_t(b * d + j);
    if (k / kPer != block) philox::normal_block(r.seed, r.noise + (block = k / kPer), z);
    y[j] = x[j] - step * tilt.du(b, d, j, x[j], g[j]) + s * z[k % kPer];
  }
  const T ey = f.eval(y, gy);
  T fwd = 0, bwd = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const T fj = y[j] - x[j] + step * tilt.du(b, d, j, x[j], g[j]);
    const T rj = x[j] - y[j] + step * tilt.du(b, d, j, y[j], gy[j]);
    fwd += fj * fj;
    bwd += rj * rj;
  }
  T u[kPer];
  philox::uniform_block(r.seed, r.uniform + std::uint64_t(b) / kPer, u);
  const T log_u = hd::log(u[std::uint64_t(b) % kPer]);
  if (log_u < mala_log_ratio(tilt.u(b, d, x, *e), tilt.u(b, d, y, ey), fwd, bwd, step)) {  // NaN rejects
    for (std::int64_t j = 0; j < d; ++j) {
      x[j] = y[j];
      g[j] = gy[j];
    }
    *e = ey;
    *acc += T(1);
  }
}

// The same decision with the log ratio given per chain (log_alpha [B]; HMC: E_x - E_y + |p_0|^2/2 -
// |p_L|^2/2).
void metropolis_accept(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey,
                       const Tensor& gy, const Tensor& log_alpha, const Tensor& log_u, Tensor& accepted,
                       Context& ctx);

namespace detail {
void metropolis_accept_cuda(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey,
                            const Tensor& gy, const Tensor& log_alpha, const Tensor& log_u, Tensor& accepted,
                            Context& ctx);
void langevin_propose_cuda(const Tensor& x, const Tensor& grad, const Tensor& noise, StepSize step, Tensor& y,
                           const GaussianTilt& tilt, Context& ctx);
void mala_accept_cuda(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey, const Tensor& gy,
                      const Tensor& log_u, StepSize step, Tensor& accepted, const GaussianTilt& tilt,
                      Context& ctx);
void tilt_energy_cuda(const Tensor& x, const Tensor& e, const Tensor* grad, const GaussianTilt& tilt,
                      Tensor& eu, Tensor* gu, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
