#include "nsamp/samplers/mala.h"

#include <cmath>

#include "nsamp/core/fill.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/mcmc.h"

namespace nsamp::samplers {

MalaChains::MalaChains(const targets::Target& target, const Tensor& x0, double step, Context& ctx,
                       kernels::GaussianTilt tilt)
    : target_(target), ctx_(ctx), step_(step), tilt_(std::move(tilt)) {
  NSAMP_CHECK(x0.defined() && x0.rank() == 2 && x0.cols() == target.dim(), "MalaChains(", target.name(),
              "): initial states must be [B, ", target.dim(), "], got ", x0.desc());
  set_step(step);
  const Shape s = x0.shape(), r{x0.rows()};
  const DType dt = x0.dtype();
  x_ = x0.to(ctx.device(), ctx);
  e_ = Tensor::empty(r, dt, ctx);
  g_ = Tensor::empty(s, dt, ctx);
  y_ = Tensor::empty(s, dt, ctx);
  ey_ = Tensor::empty(r, dt, ctx);
  gy_ = Tensor::empty(s, dt, ctx);
  noise_ = Tensor::empty(s, dt, ctx);
  log_u_ = Tensor::empty(r, dt, ctx);
  accepted_ = Tensor::zeros(r, dt, ctx);
  target_.energy_and_grad(x_, e_, g_, ctx_);
  if (tilt_.active()) kernels::tilt_energy(x_, e_, &g_, tilt_, ey_, &gy_, ctx_);  // checks the tilt up front
}

void MalaChains::set_beta(double beta) {
  NSAMP_CHECK(tilt_.active(), "MalaChains(", target_.name(), "): set_beta needs a tilt");
  NSAMP_CHECK(std::isfinite(beta), "MalaChains(", target_.name(), "): beta must be finite, got ", beta);
  tilt_.beta = beta;
}

void MalaChains::set_step(double step) {
  NSAMP_CHECK(step > 0, "MalaChains(", target_.name(), "): step must be positive, got ", step);
  step_ = step;
  step_dev_ = Tensor();
}

void MalaChains::set_step(const Tensor& step) {
  NSAMP_CHECK(
      step.defined() && step.numel() == 1 && step.dtype() == DType::F64 && step.device() == ctx_.device(),
      "MalaChains(", target_.name(), "): a device step must be one float64 on ", ctx_.device().str(),
      ", got ", step.desc());
  step_dev_ = step;
}

void MalaChains::run(std::int64_t steps) {
  const std::int64_t B = x_.rows(), d = x_.cols();
  for (std::int64_t i = 0; i < steps; ++i) {
    const philox::Offset noise = ctx_.draw_rng(rng_counters(B * d, x_.dtype())),
                         uniform = ctx_.draw_rng(rng_counters(B, x_.dtype()));
    kernels::MalaDraws r;
    r.seed = ctx_.seed();
    r.noise = noise.offset;
    r.uniform = uniform.offset;
    r.base = noise.base;
    const kernels::StepSize step =
        step_dev_.defined() ? kernels::StepSize(step_dev_.data<double>()) : kernels::StepSize(step_);
    const targets::MalaStepArgs m{x_, e_, g_, y_, gy_, accepted_, tilt_, step, r};
    if (!(fused_ && target_.mala_step_fused(m, ctx_))) {
      fill_normal_at(noise_, r.seed, noise, ctx_);
      kernels::langevin_propose(x_, g_, noise_, step, y_, ctx_, tilt_);
      target_.energy_and_grad(y_, ey_, gy_, ctx_);
      fill_uniform_at(log_u_, r.seed, uniform, ctx_);
      kernels::unary_forward(kernels::UnaryOp::Log, log_u_, log_u_, ctx_);
      kernels::mala_accept(x_, e_, g_, y_, ey_, gy_, log_u_, step, accepted_, ctx_, tilt_);
    }
    ++steps_;
  }
}

double MalaChains::acceptance_rate() const {
  if (steps_ == 0 || x_.rows() == 0) return 0.0;
  double total = 0;
  if (accepted_.dtype() == DType::F32)
    for (float v : accepted_.to_vector<float>(ctx_)) total += v;
  else
    for (double v : accepted_.to_vector<double>(ctx_)) total += v;
  return total / (double(steps_) * double(x_.rows()));
}

}  // namespace nsamp::samplers
