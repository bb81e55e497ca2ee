#include "nsamp/samplers/path_samplers.h"

#include <cmath>
#include <memory>

#include "device_values.h"
#include "nsamp/autograd/ops.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/sde.h"

namespace nsamp::samplers {

namespace {

constexpr double kLog2Pi = 1.8378770664093453;
constexpr double kLvDrop = 1e8;

using ag::Tape;
using ag::Var;

// x with Phi(x) = p, by bisection on erfc (only needed once per sampler).
double normal_quantile(double p) {
  double lo = -40, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

Var constant(Tensor t) { return Var::leaf(std::move(t), false); }

// E(x) [B] as a tape node: the value and dE/dx from one fused target evaluation; backward is cot * dE/dx.
Var energy_node(Tape& tp, const targets::Target& target, const Var& x) {
  Context& ctx = tp.ctx();
  const Tensor& xv = x.value();
  Tensor e = Tensor::empty(Shape{xv.rows()}, xv.dtype(), xv.device(), ctx);
  Tensor g = Tensor::empty(xv.shape(), xv.dtype(), xv.device(), ctx);
  target.energy_and_grad(xv, e, g, ctx);
  return tp.record("target_energy", {x}, e, [g](ag::NodeGrads& ng) {
    Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device(), ng.ctx());
    kernels::mul(g, ng.out().reshape(Shape{g.rows(), 1}), gx, ng.ctx());
    ng.add(0, gx);
  });
}

Var row_dot(Tape& tp, const Var& a, const Var& b) { return ag::sum_rows(tp, ag::mul(tp, a, b)); }

}  // namespace

const char* path_method_name(PathMethod m) {
  switch (m) {
    case PathMethod::Pis:
      return "pis";
    case PathMethod::Dis:
      return "dis";
    case PathMethod::Dds:
      return "dds";
    case PathMethod::EulerDds:
      return "euler-dds";
  }
  return "?";
}

const char* path_loss_name(PathLoss l) {
  switch (l) {
    case PathLoss::Kl:
      return "kl";
    case PathLoss::Lv:
      return "lv";
    case PathLoss::LvTraj:
      return "lv_traj";
  }
  return "?";
}

PathMethod parse_path_method(const std::string& name) {
  for (PathMethod m : {PathMethod::Pis, PathMethod::Dis, PathMethod::Dds, PathMethod::EulerDds})
    if (name == path_method_name(m)) return m;
  NSAMP_FAIL("unknown path method '", name, "' (valid: pis, dis, dds, euler-dds)");
}

PathLoss parse_path_loss(const std::string& name) {
  for (PathLoss l : {PathLoss::Kl, PathLoss::Lv, PathLoss::LvTraj})
    if (name == path_loss_name(l)) return l;
  NSAMP_FAIL("unknown loss '", name, "' (valid: kl, lv, lv_traj)");
}

double PathConfig::terminal_time() const {
  if (T > 0) return T;
  return method == PathMethod::Pis ? 5.0 : method == PathMethod::Dds ? 12.8 : 1.0;
}

PathSampler::PathSampler(const targets::Target& target, PathConfig config, DType dtype, Context& ctx)
    : target_(target),
      cfg_(config),
      dtype_(dtype),
      d_(target.dim()),
      mf_(target.particles(), dtype, ctx),
      nn_t_(config.channels, 1, config.layers + 1, dtype, ctx, "time_net") {
  d_eff_ = mf_.dof(d_);
  if (mf_.active()) {
    egnn_ = std::make_unique<Egnn>(target.particles(),
                                   egnn_config(config.channels, config.egnn_layers, ag::Activation::SiLU),
                                   dtype, ctx, "control");
  } else {
    nn_ = std::make_unique<FourierMLP>(target.dim(), config.channels, config.layers, /*zero_init=*/true,
                                       dtype, ctx, "control");
  }
  NSAMP_CHECK(cfg_.steps >= 1, "path sampler: steps must be at least 1, got ", cfg_.steps);
  NSAMP_CHECK(cfg_.clip > 0, "path sampler: clip must be positive, got ", cfg_.clip);
  NSAMP_CHECK(cfg_.traj_per_sample >= 1, "path sampler: traj_per_sample must be at least 1, got ",
              cfg_.traj_per_sample);
  NSAMP_CHECK(cfg_.prior_quantile > 0 && cfg_.prior_quantile < 0.5,
              "path sampler: prior_quantile must be in (0, 0.5), got ", cfg_.prior_quantile);
}

std::vector<Var> PathSampler::parameters() const {
  std::vector<Var> p = egnn_ ? egnn_->parameters() : nn_->parameters();
  for (const Var& v : nn_t_.parameters()) p.push_back(v);
  return p;
}

std::uint64_t PathSampler::counters_per_batch(std::int64_t batch) const {
  // `steps` noise draws, then up to 8 rounds of the prior's rejection sampling.
  return std::uint64_t(cfg_.steps + 8) * rng_counters(batch * d_, dtype_);
}

Tensor PathSampler::prior(std::int64_t B, int repeats, std::uint64_t seed, philox::Offset offset,
                          Context& ctx) const {
  if (cfg_.method == PathMethod::Pis) return Tensor::zeros(Shape{B, d_}, dtype_, ctx.device(), ctx);
  // N(0, I) (DDS: N(0, sigma^2 I)) truncated per coordinate at +-a: up to 8 rounds of rejection on fresh
  // Philox draws (the counters after the steps' noise), then a leftover entry (probability ~1e-32) clamped.
  const std::uint64_t per = rng_counters(B * d_, dtype_);
  Tensor x = Tensor::empty(Shape{B, d_}, dtype_, ctx.device(), ctx);
  kernels::truncated_normal_rows(x, seed, offset + std::uint64_t(cfg_.steps) * per, per, 8,
                                 -normal_quantile(cfg_.prior_quantile), repeats,
                                 cfg_.method == PathMethod::Dds ? cfg_.dds_sigma : 1.0, ctx);
  mf_.apply(x, ctx);
  return x;
}

std::vector<double> dds_cosine_grid(double end, int steps) {
  // Vargas et al.'s cosine schedule as sde_sampler builds it: steps + 1 weights cos^4(pi/2 (s_i + 0.008) /
  // 1.008) at s_i = i / steps, normalised to sum to `end`, their running sums after 0, and the trailing
  // points within 1e-6 end of `end` removed (the last weights are ~0, so those steps would do nothing).
  constexpr double kS = 0.008, kPi = 3.14159265358979323846;
  std::vector<double> w(std::size_t(steps) + 1);
  double sum = 0;
  for (int i = 0; i <= steps; ++i) {
    const double c = std::cos((double(i) / steps + kS) / (1 + kS) * kPi * 0.5);
    sum += (w[std::size_t(i)] = c * c * c * c);
  }
  std::vector<double> t{0.0};
  for (double v : w) t.push_back(t.back() + v / sum * end);
  while (t.size() > 1 && std::abs(t.back() - end) < 1e-6 * end) t.pop_back();
  return t;
}

std::vector<PathSampler::Step> PathSampler::plan(bool eval) const {
  std::vector<Step> plan;
  const double T = cfg_.terminal_time();
  if (cfg_.method == PathMethod::Dds) {
    // Exponential integrator: b_k = clip(alpha sqrt(dt_k), 0, 1), X' = a_k X + b_k^2 sigma^2 u + sigma b_k
    // xi.
    const std::vector<double> t = dds_cosine_grid(T, cfg_.steps);
    for (std::size_t k = 0; k + 1 < t.size(); ++k) {
      const double b = std::min(1.0, cfg_.dds_alpha * std::sqrt(t[k + 1] - t[k]));
      Step st;
      st.t = t[k];
      st.k.h = b * b * cfg_.dds_sigma * cfg_.dds_sigma;
      st.k.decay = std::sqrt(1.0 - b * b);
      plan.push_back(st);
    }
    return plan;
  }
  const int N = cfg_.steps;
  const double dt = T / N;
  auto beta = [&](double t) { return cfg_.beta_max + (cfg_.beta_min - cfg_.beta_max) * t / T; };
  for (int k = 0; k < N; ++k) {
    Step st;
    st.t = k * dt;
    const bool pis = cfg_.method == PathMethod::Pis;
    const double s = pis ? cfg_.pis_sigma : std::sqrt(beta(st.t)), m = pis ? 0.0 : 0.5 * beta(st.t);
    st.k.h = dt;
    st.k.diffusion = s;
    st.k.decay = 1.0 + m * dt;
    if (cfg_.method == PathMethod::Dis) {  // sigma(t) clip(-(1 - t/T) x - (t/T) grad E)
      st.k.score_x = -(1.0 - st.t / T);
      st.k.score_g = -st.t / T;
      st.k.score_scale = s;
      // minus the divergence of mu, trapezoid rule (evaluation only)
      if (eval) st.k.constant = -double(d_eff_) * 0.25 * (beta(st.t) + beta(st.t + dt)) * dt;
    }
    if (cfg_.method == PathMethod::EulerDds) st.k.ref = -s;
    plan.push_back(st);
  }
  return plan;
}

// u = clip(NN(t, x)) + score clip(NN_t(t)) on the tape, the score term detached; also the raw network
// outputs.
PathSampler::Control PathSampler::control(Tape& tp, const Var& tv, const Var& x, const Tensor& grad_e,
                                          const kernels::SdeStepCoef& k, Context& ctx) const {
  const Tensor& xv = x.value();
  Tensor score = Tensor::empty(xv.shape(), xv.dtype(), xv.device(), ctx);
  kernels::affine(grad_e, k.score_g, 0.0, score, ctx);
  if (k.score_x != 0) {
    Tensor px = Tensor::empty(xv.shape(), xv.dtype(), xv.device(), ctx);
    kernels::affine(xv, k.score_x, 0.0, px, ctx);
    kernels::add(score, px, score, ctx);
  }
  kernels::clamp_forward(score, -cfg_.clip, cfg_.clip, score, ctx);
  if (k.score_scale != 1) kernels::affine(score, k.score_scale, 0.0, score, ctx);
  const Var nn = network(tp, tv, x), nt = nn_t_.forward(tp, tv);
  Var u = ag::add(tp, ag::clamp(tp, nn, -cfg_.clip, cfg_.clip),
                  ag::mul(tp, constant(std::move(score)), ag::clamp(tp, nt, -cfg_.clip, cfg_.clip)));
  if (!mf_.active()) return {u, nn.value(), nt.value()};
  u = mf_.apply(tp, u);
  return {u, u.value(), Tensor()};
}

Var PathSampler::network(Tape& tp, const Var& tv, const Var& x) const {
  if (!egnn_) return nn_->forward(tp, tv, x);
  const std::int64_t B = x.shape().rows();
  Tensor tb = Tensor::zeros(Shape{B, 1}, dtype_, x.device(), tp.ctx());
  kernels::add(tb, tv.value(), tb, tp.ctx());  // the shared time broadcast to every sample, on the device
  return egnn_->forward(tp, constant(tb), x);
}

// The fused step for particle systems takes the projected control itself: no score term, no clip, nt = 0.
void PathSampler::fused_coef(kernels::SdeStepCoef& coef, Tensor& nt, Context& ctx) const {
  if (!mf_.active()) return;
  coef.score_x = coef.score_g = 0;
  coef.clip = 1e30;
  nt = Tensor::zeros(Shape{1, 1}, dtype_, ctx.device(), ctx);
}

// One pass over B paths on `tp`. Eval: w = u, every term of R. KlTrain: w = u, recorded through the whole
// path; the Ito term is dropped, and DIS also drops log p_prior(X_0) (zero-mean, no gradient of their own).
// LvForward / LvBackward: w = detach(u) and the log-variance running cost; LvBackward backpropagates each
// step's control with the cotangent cot_b dW_b as it goes and keeps nothing. Passes that need no gradient
// through the path (Eval, LvForward when the tape is not recording, and LvBackward's state updates) take the
// fused kernels::sde_step; KlTrain and a recording LvForward write the step with autograd ops, which is also
// the reference the fused step is tested against.
Var PathSampler::run(Pass pass, std::int64_t B, int repeats, std::uint64_t seed, philox::Offset offset,
                     const Tensor* cotangent, Tape& tp, Tensor* x_end, Context& ctx) const {
  const std::uint64_t per = rng_counters(B * d_, dtype_);
  const bool reversal = cfg_.method == PathMethod::Dis;
  const bool lv = pass == Pass::LvForward || pass == Pass::LvBackward;
  const bool fused =
      pass == Pass::Eval || pass == Pass::LvBackward || (pass == Pass::LvForward && !tp.recording());
  const Device dev = ctx.device();
  const std::vector<Step> steps = plan(pass == Pass::Eval);

  Var x = constant(prior(B, repeats, seed, offset, ctx));
  Var R = constant(Tensor::zeros(Shape{B}, dtype_, dev, ctx));
  if (reversal && pass != Pass::KlTrain) {  // log N(X_0; 0, I) of the untruncated normal
    ag::NoGrad ng(tp);
    R = constant(ag::affine(tp, ag::sq_norm_rows(tp, x), -0.5, -0.5 * double(d_eff_) * kLog2Pi).value());
  }
  Tensor xi = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx);
  Tensor gE = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx), e = Tensor::empty(Shape{B}, dtype_, dev, ctx);
  for (std::size_t k = 0; k < steps.size(); ++k) {
    kernels::SdeStepCoef coef = steps[k].k;
    coef.clip = cfg_.clip;
    const philox::Offset noise_at = offset + std::uint64_t(k) * per;
    // time and score are fresh each step: the kl tape keeps them for its backward pass.
    Tensor time = Tensor::empty(Shape{1, 1}, dtype_, dev, ctx);
    fill_constant(time, steps[k].t, ctx);
    const Var tv = constant(time);
    if (k == 0 && cfg_.method == PathMethod::Pis && mf_.active())
      zero(gE, ctx);  // PIS starts with every particle at the origin, where a pair energy's gradient is 0/0
    else
      target_.energy_and_grad(x.value(), e, gE, ctx);
    if (fused) {
      Tensor R_next = R.value();
      if (pass == Pass::LvBackward) {
        // x and R are constants here, so new buffers: the tape's nodes still read this step's x.
        Tensor x_next = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx),
               ug = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx);
        Control c = control(tp, tv, x, gE, coef, ctx);
        fused_coef(coef, c.nt, ctx);
        kernels::sde_step(x.value(), c.nn, c.nt, gE, coef, seed, noise_at, x_next, R_next, cotangent, &ug,
                          ctx);
        tp.backward(c.u, ug);
        mf_.apply(x_next, ctx);
        x = constant(x_next);
      } else {
        ag::NoGrad ng(tp);
        Tensor xv = x.value();
        if (mf_.active()) {
          Control c = control(tp, tv, x, gE, coef, ctx);
          fused_coef(coef, c.nt, ctx);
          kernels::sde_step(xv, c.nn, c.nt, gE, coef, seed, noise_at, xv, R_next, nullptr, nullptr, ctx);
          mf_.apply(xv, ctx);
        } else {
          const Tensor nn = nn_->forward(tp, tv, x).value(), nt = nn_t_.forward(tp, tv).value();
          kernels::sde_step(xv, nn, nt, gE, coef, seed, noise_at, xv, R_next, nullptr, nullptr, ctx);
        }
      }
      continue;
    }
    fill_normal_at(xi, seed, noise_at, ctx);
    Tensor dWt = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx);
    kernels::affine(xi, std::sqrt(coef.h), 0.0, dWt, ctx);
    mf_.apply(dWt, ctx);  // u is mean-free, so u.dW is unchanged; the state stays in the subspace
    const Var dW = constant(dWt);
    const Var u = control(tp, tv, x, gE, coef, ctx).u;
    const Var w = lv ? ag::detach(u) : u;
    const Var r = coef.ref != 0 ? ag::scale(tp, x, coef.ref) : Var();
    const Var diff = r.defined() ? ag::sub(tp, u, r) : u;
    Var cost;
    if (lv) {
      const Var half = ag::scale(tp, r.defined() ? ag::add(tp, u, r) : u, 0.5);
      cost = row_dot(tp, diff, ag::sub(tp, w, half));
    } else {
      cost = ag::scale(tp, ag::sq_norm_rows(tp, diff), 0.5);
    }
    Var dR = ag::scale(tp, cost, coef.h);
    // KL training drops the Ito term for every method, as sde_sampler does (the spec names only DIS): zero
    // mean and zero expected gradient (dW_k is independent of the path up to t_k), so only noise.
    if (pass != Pass::KlTrain) dR = ag::add(tp, dR, row_dot(tp, diff, dW));
    if (coef.constant != 0) dR = ag::add_scalar(tp, dR, coef.constant);
    R = ag::add(tp, R, dR);
    x = ag::add(tp,
                ag::add(tp, ag::affine(tp, x, coef.decay, 0.0), ag::scale(tp, w, coef.diffusion * coef.h)),
                ag::scale(tp, dW, coef.diffusion));
  }
  if (x_end) *x_end = x.value();
  // LvBackward has no use for R itself (pass 1 computed it) and the terminal terms carry no parameter
  // gradient.
  if (pass == Pass::LvBackward) return R;
  // Terminal terms: log p_ref(X_N) - log rho(X_N) for the reference methods, -log rho(X_N) for DIS.
  Var term = energy_node(tp, target_, x);
  if (!reversal) {
    const double s2 = cfg_.method == PathMethod::Pis ? cfg_.pis_sigma * cfg_.pis_sigma * cfg_.terminal_time()
                      : cfg_.method == PathMethod::Dds ? cfg_.dds_sigma * cfg_.dds_sigma
                                                       : 1.0;
    term = ag::add(
        tp, term,
        ag::affine(tp, ag::sq_norm_rows(tp, x), -0.5 / s2, -0.5 * double(d_eff_) * (kLog2Pi + std::log(s2))));
  }
  return ag::add(tp, R, term);
}

PathBatch PathSampler::simulate(std::int64_t batch, std::uint64_t seed, philox::Offset offset,
                                Context& ctx) const {
  NSAMP_CHECK(batch >= 1, "path sampler: batch must be positive, got ", batch);
  Tape tp(ctx);
  ag::NoGrad ng(tp);
  PathBatch b;
  b.R = run(Pass::Eval, batch, 1, seed, offset, nullptr, tp, &b.x, ctx).value();
  return b;
}

Var PathSampler::log_rnd(PathLoss loss, std::int64_t batch, std::uint64_t seed, std::uint64_t offset,
                         Tape& tp, Context& ctx) const {
  NSAMP_CHECK(batch >= 1, "path sampler: batch must be positive, got ", batch);
  const int K = loss == PathLoss::LvTraj ? cfg_.traj_per_sample : 1;
  NSAMP_CHECK(batch % K == 0, "path sampler: traj_per_sample ", K, " must divide the batch ", batch);
  return run(loss == PathLoss::Kl ? Pass::KlTrain : Pass::LvForward, batch, K, seed, offset, nullptr, tp,
             nullptr, ctx);
}

double PathSampler::loss_and_grad(PathLoss loss, std::int64_t batch, std::uint64_t seed, std::uint64_t offset,
                                  std::int64_t* kept, Context& ctx) {
  NSAMP_CHECK(batch >= 2, "path sampler: the loss needs a batch of at least 2, got ", batch);
  Tensor stats = Tensor::empty(Shape{2}, DType::F64, ctx.device(), ctx);
  device_loss_and_grad(loss, batch, seed, offset, stats, ctx);
  const std::vector<double> st = stats.to_vector<double>(ctx);
  if (kept) *kept = std::int64_t(st[1]);
  return st[0];
}

void PathSampler::device_loss_and_grad(PathLoss loss, std::int64_t batch, std::uint64_t seed,
                                       philox::Offset offset, Tensor& stats, Context& ctx) {
  if (loss != PathLoss::Kl) {
    lv_loss_and_grad(loss, batch, seed, offset, stats, ctx);
    return;
  }
  NSAMP_CHECK(batch >= 2, "path sampler: the loss needs a batch of at least 2, got ", batch);
  // Backpropagation through the whole path; paths with a non-finite R get a zero cotangent.
  Tape tp(ctx);
  const Var R = run(Pass::KlTrain, batch, 1, seed, offset, nullptr, tp, nullptr, ctx);
  Tensor cot = Tensor::empty(R.value().shape(), dtype_, ctx.device(), ctx);
  kernels::kl_path_loss(R.value(), double(d_), cot, stats, ctx);
  tp.backward(R, cot);
}

void PathSampler::lv_loss_and_grad(PathLoss loss, std::int64_t batch, std::uint64_t seed,
                                   philox::Offset offset, Tensor& stats, Context& ctx) {
  NSAMP_CHECK(loss != PathLoss::Kl, "path sampler: lv_loss_and_grad takes lv or lv_traj");
  NSAMP_CHECK(batch >= 2, "path sampler: the loss needs a batch of at least 2, got ", batch);
  const int K = loss == PathLoss::LvTraj ? cfg_.traj_per_sample : 1;
  NSAMP_CHECK(loss != PathLoss::LvTraj || (K >= 2 && batch % K == 0),
              "path sampler: lv_traj needs traj_per_sample >= 2 dividing the batch, got ", K, " and batch ",
              batch);
  // Pass 1: R of every path under the detached control.
  Tensor R;
  {
    Tape tp(ctx);
    ag::NoGrad ng(tp);
    R = run(Pass::LvForward, batch, K, seed, offset, nullptr, tp, nullptr, ctx).value();
  }
  // Unbiased variance per group (the whole batch for lv, each start point's K paths for lv_traj), averaged
  // over groups, divided by d; the cotangent of path i is dLoss/dR_i = 2 (R_i - mean) / (n - 1) / groups / d.
  Tensor cotangent = Tensor::empty(Shape{batch}, dtype_, ctx.device(), ctx);
  kernels::log_variance_loss(R, loss == PathLoss::LvTraj ? K : batch, kLvDrop, double(d_), cotangent, stats,
                             ctx);
  // Pass 2: the same paths again (same noise, same states), each step backpropagated with the cotangent.
  Tape tp(ctx);
  run(Pass::LvBackward, batch, K, seed, offset, &cotangent, tp, nullptr, ctx);
}

}  // namespace nsamp::samplers
