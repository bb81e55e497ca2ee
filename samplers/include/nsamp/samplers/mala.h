// Metropolis-adjusted Langevin chains on any target (built-in or user), batched: one chain per row. Used for
// reference sets and inside DiKL's posterior estimator, where the chains run on a Gaussian tilt of the
// target (kernels/mcmc.h). Each step: Gaussian noise, the Langevin proposal, one fused energy+gradient
// evaluation of the proposal, uniform draws, the accept/reject pass; for the dense built-in targets all of it
// is one pass per chain (Target::mala_step_fused), drawing the same numbers as the unfused sequence. The
// draws come from Context::draw_rng, so chains run inside a captured step draw from its device counter.
#pragma once

#include "nsamp/kernels/mcmc.h"
#include "nsamp/targets/target.h"

namespace nsamp::samplers {

class MalaChains {
 public:
  // x0 [B, dim] on the context's device (copied); step > 0; a tilt's tensors on the context's device.
  // Evaluates E and grad E at x0 once.
  MalaChains(const targets::Target& target, const Tensor& x0, double step, Context& ctx,
             kernels::GaussianTilt tilt = {});
  void run(std::int64_t steps);
  const Tensor& x() const { return x_; }
  // The untilted E and grad E at x (U's are formed from them and the tilt).
  const Tensor& energy() const { return e_; }
  const Tensor& grad() const { return g_; }
  double step() const { return step_; }  // the fixed step (see set_step(Tensor))
  void set_step(double step);
  // The step read from `step` (float64 [1] on the context's device, kept positive by its owner) when each
  // step runs: a step that changes inside a captured CUDA graph (DiKL's adaptive posterior step).
  void set_step(const Tensor& step);
  // The tilt's beta (AIS levels); costs no evaluation.
  void set_beta(double beta);
  // false: always the unfused sequence (tests compare the two paths).
  void set_fused(bool fused) { fused_ = fused; }
  std::int64_t steps_done() const { return steps_; }
  const Tensor& accepted() const { return accepted_; }  // accepted moves per chain [B], the chains' dtype
  // Accepted moves per chain since construction (one device-to-host read).
  double acceptance_rate() const;

 private:
  const targets::Target& target_;
  Context& ctx_;
  double step_;
  Tensor step_dev_;
  kernels::GaussianTilt tilt_;
  bool fused_ = true;
  std::int64_t steps_ = 0;
  Tensor x_, e_, g_, y_, ey_, gy_, noise_, log_u_, accepted_;
};

}  // namespace nsamp::samplers
