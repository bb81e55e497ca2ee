// Metropolis-adjusted Langevin chains on any target (built-in or user), batched: one chain per row. Used for
// reference sets and, later, inside DiKL's posterior estimator. Each step: Gaussian noise, the Langevin
// proposal, one fused energy+gradient evaluation of the proposal, uniform draws, the accept/reject pass.
#pragma once

#include "nsamp/targets/target.h"

namespace nsamp::samplers {

class MalaChains {
 public:
  // x0 [B, dim] on the context's device (copied); step > 0.
  MalaChains(const targets::Target& target, const Tensor& x0, double step, Context& ctx);
  void run(std::int64_t steps);
  const Tensor& x() const { return x_; }
  const Tensor& energy() const { return e_; }
  const Tensor& grad() const { return g_; }
  double step() const { return step_; }
  void set_step(double step);
  std::int64_t steps_done() const { return steps_; }
  // Accepted moves per chain since construction (one device-to-host read).
  double acceptance_rate() const;

 private:
  const targets::Target& target_;
  Context& ctx_;
  double step_;
  std::int64_t steps_ = 0;
  Tensor x_, e_, g_, y_, ey_, gy_, noise_, log_u_, accepted_;
};

}  // namespace nsamp::samplers
