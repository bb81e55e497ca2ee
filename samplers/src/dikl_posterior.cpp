#include "nsamp/samplers/dikl_posterior.h"

#include <cmath>
#include <limits>

#include "device_values.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/dikl.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/index.h"
#include "nsamp/kernels/reduce.h"
#include "nsamp/samplers/mala.h"

namespace nsamp::samplers {

kernels::GaussianTilt gaussian_tilt(const Tensor& xt, const std::vector<double>& a,
                                    const std::vector<double>& s, double beta, const char* who,
                                    Context& ctx) {
  NSAMP_CHECK(xt.defined() && xt.rank() == 2, who, ": x_t must be [P, d], got ", xt.desc());
  NSAMP_CHECK(std::int64_t(a.size()) == xt.rows() && std::int64_t(s.size()) == xt.rows(), who,
              ": a and s must hold one value per row of x_t (", xt.rows(), "), got ", a.size(), " and ",
              s.size());
  std::vector<double> c(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    NSAMP_CHECK(a[i] > 0 && s[i] > 0 && std::isfinite(a[i]) && std::isfinite(s[i]), who,
                ": a and s must be positive and finite, row ", i, " has a = ", a[i], ", s = ", s[i]);
    c[i] = 0.5 / (s[i] * s[i]);
  }
  return {xt, detail::device_values(a, Shape{xt.rows()}, xt.dtype(), ctx),
          detail::device_values(c, Shape{xt.rows()}, xt.dtype(), ctx), beta};
}

TiltedTarget::TiltedTarget(const targets::Target& base, Tensor xt, Tensor a, Tensor s, double beta,
                           Context& ctx)
    : base_(base) {
  NSAMP_CHECK(xt.defined() && xt.rank() == 2 && xt.cols() == base.dim(), "TiltedTarget(", base.name(),
              "): x_t must be [P, ", base.dim(), "], got ", xt.desc());
  NSAMP_CHECK(a.defined() && s.defined(), "TiltedTarget(", base.name(), "): a and s must be defined");
  tilt_ = gaussian_tilt(xt, a.to_doubles(ctx), s.to_doubles(ctx), beta, "TiltedTarget", ctx);
}

void TiltedTarget::evaluate(const Tensor& x, Tensor& e, Tensor* grad, Context& ctx) const {
  NSAMP_CHECK(x.rows() == tilt_.xt.rows() && x.dtype() == tilt_.xt.dtype(), "TiltedTarget(", base_.name(),
              "): x must be ", tilt_.xt.desc(), " like x_t, got ", x.desc());
  if (grad)
    base_.energy_and_grad(x, e, *grad, ctx);
  else
    base_.energy(x, e, ctx);
  kernels::tilt_energy(x, e, grad, tilt_, e, grad, ctx);
}

std::vector<std::int64_t> gumbel_max_select(const Tensor& log_w, std::int64_t n, Context& ctx) {
  NSAMP_CHECK(n >= 1 && log_w.defined() && log_w.numel() % n == 0,
              "gumbel_max_select: ", log_w.defined() ? log_w.desc() : "undefined log-weights",
              " is not a whole number of groups of ", n);
  Tensor rows = Tensor::empty(Shape{log_w.numel() / n}, DType::I32, log_w.device(), ctx);
  kernels::gumbel_max_rows(log_w, n, ctx.seed(), ctx.draw_rng(rng_counters(log_w.numel(), DType::F64)), rows,
                           ctx);
  const std::vector<std::int32_t> r = rows.to_vector<std::int32_t>(ctx);
  std::vector<std::int64_t> pick(r.size());
  for (std::size_t g = 0; g < r.size(); ++g) pick[g] = std::int64_t(r[g]) - std::int64_t(g) * n;
  return pick;
}

DiklPosterior::DiklPosterior(const targets::Target& target, DiklPosteriorConfig config)
    : target_(target), cfg_(config), step0_(config.mala_step) {
  NSAMP_CHECK(cfg_.n_is >= 1 && cfg_.ais_levels >= 1,
              "DiKL posterior: n_is and ais_levels must be >= 1, got ", cfg_.n_is, " and ", cfg_.ais_levels);
  NSAMP_CHECK(cfg_.mala_steps >= 1 && cfg_.averaged >= 1 && cfg_.averaged <= cfg_.mala_steps,
              "DiKL posterior: need 1 <= averaged (", cfg_.averaged, ") <= mala_steps (", cfg_.mala_steps,
              ")");
  NSAMP_CHECK(cfg_.mala_step > 0 && (!cfg_.ais_transition || cfg_.ais_step > 0),
              "DiKL posterior: steps must be positive");
}

DiklPosteriorResult DiklPosterior::estimate(const Tensor& xt, const Tensor& a, const Tensor& s,
                                            Context& ctx) {
  check_inputs(xt, a, s);
  const std::vector<double> av = a.to_doubles(ctx), sv = s.to_doubles(ctx);
  for (std::size_t i = 0; i < av.size(); ++i)
    NSAMP_CHECK(av[i] > 0 && sv[i] > 0 && std::isfinite(av[i]) && std::isfinite(sv[i]), "DiKL posterior (",
                target_.name(), "): a and s must be positive and finite, row ", i, " has a = ", av[i],
                ", s = ", sv[i]);
  return enqueue(xt, a, s, ctx);
}

void DiklPosterior::check_inputs(const Tensor& xt, const Tensor& a, const Tensor& s) const {
  NSAMP_CHECK(xt.defined() && xt.rank() == 2 && xt.cols() == target_.dim(), "DiKL posterior (",
              target_.name(), "): x_t must be [B, ", target_.dim(), "], got ", xt.desc());
  const std::int64_t B = xt.rows();
  for (const Tensor* t : {&a, &s})
    NSAMP_CHECK(t->defined() && t->numel() == B && t->dtype() == xt.dtype() &&
                    (t->rank() == 1 || (t->rank() == 2 && t->cols() == 1)),
                "DiKL posterior (", target_.name(), "): a and s must hold ", B, " values of x_t's dtype ([",
                B, "] or [", B, ", 1]), got ", a.desc(), " and ", s.desc());
}

DiklPosteriorResult DiklPosterior::enqueue(const Tensor& xt, const Tensor& a, const Tensor& s, Context& ctx) {
  check_inputs(xt, a, s);
  const std::int64_t B = xt.rows(), d = xt.cols(), n = cfg_.n_is, P = B * n;
  const DType dt = xt.dtype();
  if (!step_.defined())
    step_ = detail::device_values({step0_}, Shape{1}, DType::F64, ctx);
  else if (step_.device() != ctx.device())
    step_ = step_.to(ctx.device(), ctx);

  // Stage A: proposals x_t / a + (s / a) xi, clipped to +-1000.
  Tensor xi = Tensor::empty(Shape{P, d}, dt, ctx), x0 = Tensor::empty(Shape{P, d}, dt, ctx),
         xt_rep = Tensor::empty(Shape{P, d}, dt, ctx), a_rep = Tensor::empty(Shape{P}, dt, ctx),
         c_rep = Tensor::empty(Shape{P}, dt, ctx);
  fill_normal(xi, ctx);
  kernels::dikl_proposals(xt, a, s, xi, n, x0, xt_rep, a_rep, c_rep, ctx);

  // One chain set through all levels: its state keeps E and grad E, so each level's weight increment
  // -(1 / K) E(x_(k-1)) and its change of beta cost no evaluation (K + 1 evaluations in all).
  MalaChains ais(target_, x0, cfg_.ais_transition ? cfg_.ais_step : 1.0, ctx, {xt_rep, a_rep, c_rep, 0.0});
  Tensor log_w = Tensor::zeros(Shape{P}, dt, ctx), inc = Tensor::empty(Shape{P}, dt, ctx);
  const int K = cfg_.ais_levels;
  for (int k = 1; k <= K; ++k) {
    kernels::affine(ais.energy(), -1.0 / K, 0.0, inc, ctx);
    kernels::add(log_w, inc, log_w, ctx);
    if (!cfg_.ais_transition) continue;
    ais.set_beta(double(k) / K);
    ais.run(1);
  }
  Tensor rows = Tensor::empty(Shape{B}, DType::I32, ctx), start = Tensor::empty(Shape{B, d}, dt, ctx);
  kernels::gumbel_max_rows(log_w, n, ctx.seed(), ctx.draw_rng(rng_counters(P, DType::F64)), rows, ctx);
  kernels::gather_rows(ais.x(), rows, start, ctx);

  // Stage B: MALA on the posterior, the last `averaged` states averaged; the step is read from step_.
  const Tensor a_row = a.reshape(Shape{B}), a_col = a.reshape(Shape{B, 1});
  Tensor c = Tensor::empty(Shape{B}, dt, ctx);
  kernels::tilt_coefficient(s, c, ctx);
  MalaChains chain(target_, start, step0_, ctx, {xt, a_row, c, 1.0});
  chain.set_step(step_);
  chain.run(cfg_.mala_steps - cfg_.averaged);
  DiklPosteriorResult r;
  r.x0_mean = Tensor::zeros(Shape{B, d}, dt, ctx);
  r.grad_log_p_mean = Tensor::zeros(Shape{B, d}, dt, ctx);
  for (int j = 0; j < cfg_.averaged; ++j) {
    chain.run(1);
    kernels::add(r.x0_mean, chain.x(), r.x0_mean, ctx);
    kernels::sub(r.grad_log_p_mean, chain.grad(), r.grad_log_p_mean, ctx);  // grad log p_d = -grad E
  }
  kernels::affine(r.x0_mean, 1.0 / cfg_.averaged, 0.0, r.x0_mean, ctx);
  kernels::affine(r.grad_log_p_mean, 1.0 / cfg_.averaged, 0.0, r.grad_log_p_mean, ctx);
  r.score = Tensor::empty(Shape{B, d}, dt, ctx);
  kernels::add(r.x0_mean, r.grad_log_p_mean, r.score, ctx);
  kernels::mul(r.score, a_col, r.score, ctx);
  kernels::sub(r.score, xt, r.score, ctx);
  r.acceptance = Tensor::empty(Shape{1}, DType::F64, ctx);
  kernels::mala_adapt(chain.accepted(), chain.steps_done(), cfg_.adaptive, step_, r.acceptance, ctx);
  return r;
}

double DiklPosterior::mala_step(Context& ctx) const {
  return step_.defined() ? step_.to_doubles(ctx)[0] : step0_;
}

void DiklPosterior::set_mala_step(double step, Context& ctx) {
  NSAMP_CHECK(step > 0 && std::isfinite(step), "DiKL posterior: MALA step must be positive, got ", step);
  step0_ = step;
  if (step_.defined()) fill_constant(step_, step, ctx);
}

}  // namespace nsamp::samplers
