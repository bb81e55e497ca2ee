#include "nsamp/samplers/hmc.h"

#include "nsamp/core/fill.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/mcmc.h"
#include "nsamp/kernels/reduce.h"

namespace nsamp::samplers {

HmcChains::HmcChains(const targets::Target& target, const Tensor& x0, double step, int leapfrog, Context& ctx)
    : target_(target), ctx_(ctx), step_(step), leapfrog_(leapfrog) {
  NSAMP_CHECK(x0.defined() && x0.rank() == 2 && x0.cols() == target.dim(), "HmcChains(", target.name(),
              "): initial states must be [B, ", target.dim(), "], got ", x0.desc());
  NSAMP_CHECK(leapfrog >= 1, "HmcChains(", target.name(), "): leapfrog steps must be >= 1, got ", leapfrog);
  set_step(step);
  const Shape s = x0.shape(), r{x0.rows()};
  const DType dt = x0.dtype();
  x_ = x0.to(ctx.device(), ctx);
  for (Tensor* t : {&g_, &y_, &gy_, &p0_, &p_, &tmp_}) *t = Tensor::empty(s, dt, ctx);
  for (Tensor* t : {&e_, &ey_, &k0_, &k1_, &log_alpha_, &log_u_}) *t = Tensor::empty(r, dt, ctx);
  accepted_ = Tensor::zeros(r, dt, ctx);
  target_.energy_and_grad(x_, e_, g_, ctx_);
}

void HmcChains::set_step(double step) {
  NSAMP_CHECK(step > 0, "HmcChains(", target_.name(), "): step must be positive, got ", step);
  step_ = step;
}

void HmcChains::run(std::int64_t steps) {
  const double h = step_;
  // out = a + c * b, through tmp_.
  auto axpy = [this](const Tensor& a, double c, const Tensor& b, Tensor& out) {
    kernels::affine(b, c, 0.0, tmp_, ctx_);
    kernels::add(a, tmp_, out, ctx_);
  };
  for (std::int64_t i = 0; i < steps; ++i) {
    fill_normal(p0_, ctx_);
    axpy(p0_, -0.5 * h, g_, p_);
    axpy(x_, h, p_, y_);
    for (int l = 1; l <= leapfrog_; ++l) {
      target_.energy_and_grad(y_, ey_, gy_, ctx_);
      axpy(p_, l < leapfrog_ ? -h : -0.5 * h, gy_, p_);
      if (l < leapfrog_) axpy(y_, h, p_, y_);
    }
    kernels::row_sq_norm(p0_, k0_, ctx_);
    kernels::row_sq_norm(p_, k1_, ctx_);
    kernels::sub(k0_, k1_, log_alpha_, ctx_);
    kernels::affine(log_alpha_, 0.5, 0.0, log_alpha_, ctx_);
    kernels::add(log_alpha_, e_, log_alpha_, ctx_);
    kernels::sub(log_alpha_, ey_, log_alpha_, ctx_);
    fill_uniform(log_u_, ctx_);
    kernels::unary_forward(kernels::UnaryOp::Log, log_u_, log_u_, ctx_);
    kernels::metropolis_accept(x_, e_, g_, y_, ey_, gy_, log_alpha_, log_u_, accepted_, ctx_);
    ++steps_;
  }
}

double HmcChains::acceptance_rate() const {
  if (steps_ == 0 || x_.rows() == 0) return 0.0;
  double total = 0;
  for (double v : accepted_.to_doubles(ctx_)) total += v;
  return total / (double(steps_) * double(x_.rows()));
}

}  // namespace nsamp::samplers
