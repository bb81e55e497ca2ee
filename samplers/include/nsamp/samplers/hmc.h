// Hamiltonian Monte Carlo chains on any target (built-in or user), batched: one chain per row, unit mass.
// Each step draws a momentum p ~ N(0, I), takes `leapfrog` leapfrog steps of size h (a half kick, then
// drift / gradient / kick, the last kick a half one) and accepts with probability
// min(1, exp(E(x) - E(y) + |p_0|^2 / 2 - |p_L|^2 / 2)). One leapfrog step is the same Markov kernel as MALA
// with step h^2 / 2 (MalaChains). Costs `leapfrog` fused energy+gradient evaluations per step.
#pragma once

#include "nsamp/targets/target.h"

namespace nsamp::samplers {

class HmcChains {
 public:
  // x0 [B, dim] on the context's device (copied); step > 0, leapfrog >= 1.
  HmcChains(const targets::Target& target, const Tensor& x0, double step, int leapfrog, Context& ctx);
  void run(std::int64_t steps);
  const Tensor& x() const { return x_; }
  const Tensor& energy() const { return e_; }
  const Tensor& grad() const { return g_; }
  double step() const { return step_; }
  int leapfrog() const { return leapfrog_; }
  void set_step(double step);
  std::int64_t steps_done() const { return steps_; }
  // Accepted moves per chain since construction (one device-to-host read).
  double acceptance_rate() const;

 private:
  const targets::Target& target_;
  Context& ctx_;
  double step_;
  int leapfrog_;
  std::int64_t steps_ = 0;
  Tensor x_, e_, g_, y_, ey_, gy_, p0_, p_, tmp_, k0_, k1_, log_alpha_, log_u_, accepted_;
};

}  // namespace nsamp::samplers
