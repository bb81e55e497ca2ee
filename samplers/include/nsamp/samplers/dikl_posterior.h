// DiKL's estimator of the target's noisy score (dikl.md, "Target noisy score"): for each noisy point
// x_t = a x0 + s eps (its own a = alpha_t, s = sigma_t per row), samples of the posterior
//   p(x0 | x_t) ∝ p_d(x0) N(x_t; a x0, s^2 I)
// give the mixed score identity s_d = a (mean x0 + mean grad log p_d(x0)) - x_t (Tweedie's estimate weighted
// s^2 plus the target score identity weighted a^2 = 1 - s^2).
//
// Stage A (importance sampling / AIS): n_is proposals from q = N(x_t / a, (s / a)^2 I) (clipped to +-1000
// per coordinate), annealed over K levels of the geometric path q^(1-b) pi^b, b = k / K. Since
// pi ∝ p_d q as a function of x0, level b is the tilted energy U_b(x0) = b E(x0) + |x_t - a x0|^2 / (2 s^2),
// and the AIS increment of level k is -(1 / K) E(x_{k-1}). Each level's transition is one Metropolis-
// adjusted step on U_b: MALA with step eta, or one HMC leapfrog step with step size h, which is the same
// kernel as MALA with eta = h^2 / 2 (the proposal x - (h^2/2) grad U + h p and its acceptance ratio
// coincide), so both run as MALA here. (The spec does not say whether DiKL's HMC step is Metropolis-adjusted;
// the adjusted kernel keeps every level invariant, which the AIS weights need.) The chains carry E and
// grad E, so the K levels cost K + 1 energy+gradient evaluations. One particle per x_t is kept by Gumbel-max
// on the log-weights. Stage B: MALA on U_1 from that particle; the last `averaged` states give mean x0 and
// mean grad log p_d. Optional adaptive step: x1.5 when the mean acceptance exceeds 0.6, /1.5 below 0.5,
// carried across calls. Every MALA step of a dense built-in target is one fused pass per chain
// (Target::mala_step_fused); user targets and particle systems run the unfused sequence.
//
// Particle systems: the posterior runs in the full space. Their energy is translation-invariant, so the
// tilted density splits into a Gaussian centre-of-mass factor and the mean-free factor, whose marginal is the
// posterior of the mean-free subspace; DiKL's trainer projects the resulting s_d onto that subspace.
#pragma once

#include <cstdint>

#include "nsamp/targets/target.h"

namespace nsamp::samplers {

// U(x) = beta E(x) + |x_t - a x|^2 / (2 s^2) per row, as a Target (for any sampler of targets, e.g. HMC on
// the posterior): rows of x pair with rows of x_t [P, d], a and s [P] (repeat x_t's rows to give each several
// chains). MALA chains take the tilt itself (MalaChains' tilt argument), which keeps E and grad E apart.
class TiltedTarget final : public targets::Target {
 public:
  TiltedTarget(const targets::Target& base, Tensor xt, Tensor a, Tensor s, double beta, Context& ctx);
  std::string name() const override { return base_.name() + " (posterior)"; }
  std::int64_t dim() const override { return base_.dim(); }
  void set_beta(double beta) { tilt_.beta = beta; }
  const kernels::GaussianTilt& tilt() const { return tilt_; }

 protected:
  void evaluate(const Tensor& x, Tensor& e, Tensor* grad, Context& ctx) const override;

 private:
  const targets::Target& base_;
  kernels::GaussianTilt tilt_;
};

// The tilt of x_t [P, d] with per-row a and s (positive, finite; checked): c = 1 / (2 s^2), on x_t's device.
kernels::GaussianTilt gaussian_tilt(const Tensor& xt, const std::vector<double>& a,
                                    const std::vector<double>& s, double beta, const char* who, Context& ctx);

struct DiklPosteriorConfig {
  int n_is = 10;               // stage A proposals per x_t
  int ais_levels = 15;         // K; 1 = plain importance sampling
  bool ais_transition = true;  // false: no transition kernel between levels (LJ-13's plain IS)
  double ais_step = 0.5;       // MALA step of the AIS transitions (HMC step h: h^2 / 2)
  int mala_steps = 5;          // stage B
  double mala_step = 0.01;     // eta_0
  bool adaptive = false;
  int averaged = 1;  // last states averaged (<= mala_steps)
};

struct DiklPosteriorResult {
  Tensor x0_mean, grad_log_p_mean;  // [B, d]
  Tensor score;                     // a (x0_mean + grad_log_p_mean) - x_t, [B, d]
  Tensor acceptance;                // float64 [1] on the device: stage B's mean acceptance
};

class DiklPosterior {
 public:
  DiklPosterior(const targets::Target& target, DiklPosteriorConfig config);
  // x_t [B, d]; a, s [B] or [B, 1] (alpha_t, sigma_t of each row, x_t's dtype). Draws from ctx's Philox
  // stream (Context::draw_rng). Checks that a and s are positive and finite (one host read).
  DiklPosteriorResult estimate(const Tensor& xt, const Tensor& a, const Tensor& s, Context& ctx);
  // The same with no host transfer, so that it may run inside a captured step; a and s are the caller's to
  // keep positive and finite (DiKL's schedule is checked when it is made). The first call uploads the step.
  DiklPosteriorResult enqueue(const Tensor& xt, const Tensor& a, const Tensor& s, Context& ctx);
  // The adaptive step carried across calls (a device value once a call has run; reading it synchronises).
  double mala_step(Context& ctx) const;
  void set_mala_step(double step, Context& ctx);            // a resumed run's
  const Tensor& mala_step_tensor() const { return step_; }  // float64 [1]; undefined before the first call

 private:
  void check_inputs(const Tensor& xt, const Tensor& a, const Tensor& s) const;
  const targets::Target& target_;
  DiklPosteriorConfig cfg_;
  double step0_;
  Tensor step_;
};

// Index of the kept particle per group of n consecutive log-weights [B * n]: argmax_i (log w_i + G_i), G_i
// standard Gumbel from the context's Philox stream; a group whose weights are all -inf or NaN keeps 0
// (kernels::gumbel_max_rows, read back).
std::vector<std::int64_t> gumbel_max_select(const Tensor& log_w, std::int64_t n, Context& ctx);

}  // namespace nsamp::samplers
