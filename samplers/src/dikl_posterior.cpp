#include "nsamp/samplers/dikl_posterior.h"

#include <cmath>
#include <limits>

#include "device_values.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/index.h"
#include "nsamp/kernels/reduce.h"
#include "nsamp/samplers/mala.h"

namespace nsamp::samplers {

namespace {

// Rows b of x repeated n times each: [B * n, d].
Tensor repeat_rows(const Tensor& x, std::int64_t n, Context& ctx) {
  std::vector<std::int32_t> idx(std::size_t(x.rows() * n));
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = std::int32_t(std::int64_t(i) / n);
  const Tensor it = Tensor::from_vector(idx, Shape{std::int64_t(idx.size())}, ctx.device(), ctx);
  Tensor out = Tensor::empty(Shape{x.rows() * n, x.cols()}, x.dtype(), ctx);
  kernels::gather_rows(x, it, out, ctx);
  return out;
}

std::vector<double> repeat(const std::vector<double>& v, std::int64_t n) {
  std::vector<double> out;
  out.reserve(v.size() * std::size_t(n));
  for (double x : v) out.insert(out.end(), std::size_t(n), x);
  return out;
}

}  // namespace

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
  NSAMP_CHECK(n >= 1 && log_w.defined() && log_w.numel() % n == 0, "gumbel_max_select: ", log_w.desc(),
              " is not a whole number of groups of ", n);
  const std::vector<double> lw = log_w.to_doubles(ctx);
  Context host(Device::cpu());
  Tensor u = Tensor::empty(Shape{log_w.numel()}, DType::F64, Device::cpu(), host);
  fill_uniform_at(u, ctx.seed(), ctx.reserve_rng(rng_counters(u.numel(), DType::F64)), host);
  const double* uv = u.data<double>();
  std::vector<std::int64_t> pick(lw.size() / std::size_t(n), 0);
  for (std::size_t g = 0; g < pick.size(); ++g) {
    double best = -std::numeric_limits<double>::infinity();
    for (std::int64_t i = 0; i < n; ++i) {
      const std::size_t k = g * std::size_t(n) + std::size_t(i);
      const double v = lw[k] - std::log(-std::log(uv[k]));  // NaN never compares greater
      if (v > best) best = v, pick[g] = i;
    }
  }
  return pick;
}

DiklPosterior::DiklPosterior(const targets::Target& target, DiklPosteriorConfig config)
    : target_(target), cfg_(config), step_(config.mala_step) {
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
  NSAMP_CHECK(xt.defined() && xt.rank() == 2 && xt.cols() == target_.dim(), "DiKL posterior (",
              target_.name(), "): x_t must be [B, ", target_.dim(), "], got ", xt.desc());
  const std::int64_t B = xt.rows(), d = xt.cols(), n = cfg_.n_is, P = B * n;
  const DType dt = xt.dtype();
  const std::vector<double> av = a.to_doubles(ctx), sv = s.to_doubles(ctx);
  NSAMP_CHECK(std::int64_t(av.size()) == B && std::int64_t(sv.size()) == B,
              "DiKL posterior: a and s must hold ", B, " values, got ", a.desc(), " and ", s.desc());

  // Stage A: proposals x_t / a + (s / a) xi, clipped to +-1000.
  const std::vector<double> ar = repeat(av, n), sr = repeat(sv, n);
  std::vector<double> inv_a(ar.size()), s_over_a(ar.size());
  for (std::size_t i = 0; i < ar.size(); ++i) inv_a[i] = 1.0 / ar[i], s_over_a[i] = sr[i] / ar[i];
  const Tensor xt_rep = repeat_rows(xt, n, ctx);
  Tensor x0 = Tensor::empty(Shape{P, d}, dt, ctx), xi = Tensor::empty(Shape{P, d}, dt, ctx);
  fill_normal(xi, ctx);
  kernels::mul(xi, detail::device_column(s_over_a, dt, ctx), xi, ctx);
  kernels::mul(xt_rep, detail::device_column(inv_a, dt, ctx), x0, ctx);
  kernels::add(x0, xi, x0, ctx);
  kernels::clamp_forward(x0, -1000.0, 1000.0, x0, ctx);

  // One chain set through all levels: its state keeps E and grad E, so each level's weight increment
  // -(1 / K) E(x_(k-1)) and its change of beta cost no evaluation (K + 1 evaluations in all).
  MalaChains ais(target_, x0, cfg_.ais_transition ? cfg_.ais_step : 1.0, ctx,
                 gaussian_tilt(xt_rep, ar, sr, 0.0, "DiKL posterior", ctx));
  Tensor log_w = Tensor::zeros(Shape{P}, dt, ctx), inc = Tensor::empty(Shape{P}, dt, ctx);
  const int K = cfg_.ais_levels;
  for (int k = 1; k <= K; ++k) {
    kernels::affine(ais.energy(), -1.0 / K, 0.0, inc, ctx);
    kernels::add(log_w, inc, log_w, ctx);
    if (!cfg_.ais_transition) continue;
    ais.set_beta(double(k) / K);
    ais.run(1);
  }
  const std::vector<std::int64_t> pick = gumbel_max_select(log_w, n, ctx);
  std::vector<std::int32_t> rows(pick.size());
  for (std::size_t b = 0; b < pick.size(); ++b) rows[b] = std::int32_t(std::int64_t(b) * n + pick[b]);
  Tensor start = Tensor::empty(Shape{B, d}, dt, ctx);
  kernels::gather_rows(ais.x(), Tensor::from_vector(rows, Shape{B}, ctx.device(), ctx), start, ctx);

  // Stage B: MALA on the posterior, the last `averaged` states averaged.
  MalaChains chain(target_, start, step_, ctx, gaussian_tilt(xt, av, sv, 1.0, "DiKL posterior", ctx));
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
  kernels::mul(r.score, detail::device_column(av, dt, ctx), r.score, ctx);
  kernels::sub(r.score, xt, r.score, ctx);
  r.acceptance = chain.acceptance_rate();
  if (cfg_.adaptive) {
    if (r.acceptance > 0.6) step_ *= 1.5;
    if (r.acceptance < 0.5) step_ /= 1.5;
  }
  return r;
}

}  // namespace nsamp::samplers
