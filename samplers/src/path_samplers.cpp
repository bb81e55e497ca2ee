#include "nsamp/samplers/path_samplers.h"

#include <cmath>
#include <memory>

#include "nsamp/autograd/ops.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/elementwise.h"

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
  for (PathMethod m : {PathMethod::Pis, PathMethod::Dis, PathMethod::EulerDds})
    if (name == path_method_name(m)) return m;
  NSAMP_FAIL("unknown path method '", name, "' (valid: pis, dis, euler-dds; dds is not implemented yet)");
}

PathLoss parse_path_loss(const std::string& name) {
  for (PathLoss l : {PathLoss::Kl, PathLoss::Lv, PathLoss::LvTraj})
    if (name == path_loss_name(l)) return l;
  NSAMP_FAIL("unknown loss '", name, "' (valid: kl, lv, lv_traj)");
}

double PathConfig::terminal_time() const {
  if (T > 0) return T;
  return method == PathMethod::Pis ? 5.0 : 1.0;
}

PathSampler::PathSampler(const targets::Target& target, PathConfig config, DType dtype, Context& ctx)
    : target_(target),
      cfg_(config),
      dtype_(dtype),
      d_(target.dim()),
      nn_(target.dim(), config.channels, config.layers, /*zero_init=*/true, dtype, ctx, "control"),
      nn_t_(config.channels, 1, config.layers + 1, dtype, ctx, "time_net") {
  NSAMP_CHECK(cfg_.steps >= 1, "path sampler: steps must be at least 1, got ", cfg_.steps);
  NSAMP_CHECK(cfg_.clip > 0, "path sampler: clip must be positive, got ", cfg_.clip);
  NSAMP_CHECK(cfg_.traj_per_sample >= 1, "path sampler: traj_per_sample must be at least 1, got ",
              cfg_.traj_per_sample);
  NSAMP_CHECK(cfg_.prior_quantile > 0 && cfg_.prior_quantile < 0.5,
              "path sampler: prior_quantile must be in (0, 0.5), got ", cfg_.prior_quantile);
}

std::vector<Var> PathSampler::parameters() const {
  std::vector<Var> p = nn_.parameters();
  for (const Var& v : nn_t_.parameters()) p.push_back(v);
  return p;
}

std::uint64_t PathSampler::counters_per_batch(std::int64_t batch) const {
  // `steps` noise draws, then up to 8 rounds of the prior's rejection sampling.
  return std::uint64_t(cfg_.steps + 8) * rng_counters(batch * d_, dtype_);
}

namespace {
Tensor device_tensor(const std::vector<double>& v, const Shape& shape, DType dtype, Context& ctx) {
  if (dtype == DType::F64) return Tensor::from_vector(v, shape, ctx.device(), ctx);
  return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), shape, ctx.device(), ctx);
}
}  // namespace

Tensor PathSampler::prior(std::int64_t B, int repeats, std::uint64_t seed, std::uint64_t offset,
                          Context& ctx) const {
  if (cfg_.method == PathMethod::Pis) return Tensor::zeros(Shape{B, d_}, dtype_, ctx.device(), ctx);
  // N(0, I) truncated per coordinate at +-a: rejection on fresh Philox draws; after 8 rounds (probability
  // ~1e-32 per entry) a leftover entry is clamped.
  const double a = -normal_quantile(cfg_.prior_quantile);
  const std::uint64_t per = rng_counters(B * d_, dtype_);
  const std::int64_t points = B / repeats;
  Context host(Device::cpu());
  Tensor h = Tensor::empty(Shape{points, d_}, DType::F64, host), fresh = h.clone(host);
  fill_normal_at(h, seed, offset + std::uint64_t(cfg_.steps) * per, host);
  double* hv = h.data<double>();
  for (int round = 1; round <= 8; ++round) {
    bool bad = false;
    for (std::int64_t i = 0; i < h.numel() && !bad; ++i) bad = std::abs(hv[i]) > a;
    if (!bad) break;
    fill_normal_at(fresh, seed, offset + std::uint64_t(cfg_.steps + round) * per, host);
    for (std::int64_t i = 0; i < h.numel(); ++i)
      if (std::abs(hv[i]) > a) hv[i] = round < 8 ? fresh.data<double>()[i] : std::copysign(a, hv[i]);
  }
  std::vector<double> full;
  full.reserve(std::size_t(B * d_));
  for (std::int64_t p = 0; p < points; ++p)
    for (int k = 0; k < repeats; ++k) full.insert(full.end(), hv + p * d_, hv + (p + 1) * d_);
  return device_tensor(full, Shape{B, d_}, dtype_, ctx);
}

// One pass over B paths on `tp`. Eval: w = u, every term of R. KlTrain: w = u, recorded through the whole
// path; DIS drops log p_prior(X_0) and the Ito term (zero-mean, no gradient of their own). LvForward /
// LvBackward: w = detach(u) and the log-variance running cost; LvBackward backpropagates each step's terms
// with `cotangent` as it goes and keeps nothing.
Var PathSampler::run(Pass pass, std::int64_t B, int repeats, std::uint64_t seed, std::uint64_t offset,
                     const Tensor* cotangent, Tape& tp, Tensor* x_end, Context& ctx) const {
  const int N = cfg_.steps;
  const double T = cfg_.terminal_time(), dt = T / N, c = cfg_.clip;
  const std::uint64_t per = rng_counters(B * d_, dtype_);
  const bool reversal = cfg_.method == PathMethod::Dis;
  const bool lv = pass == Pass::LvForward || pass == Pass::LvBackward;
  const Device dev = ctx.device();
  auto beta = [&](double t) { return cfg_.beta_max + (cfg_.beta_min - cfg_.beta_max) * t / T; };
  auto sigma = [&](double t) { return cfg_.method == PathMethod::Pis ? cfg_.pis_sigma : std::sqrt(beta(t)); };
  auto drift = [&](double t) { return cfg_.method == PathMethod::Pis ? 0.0 : 0.5 * beta(t); };

  Var x = constant(prior(B, repeats, seed, offset, ctx));
  Var R = constant(Tensor::zeros(Shape{B}, dtype_, dev, ctx));
  if (reversal && pass != Pass::KlTrain) {  // log N(X_0; 0, I) of the untruncated normal
    ag::NoGrad ng(tp);
    R = constant(ag::affine(tp, ag::sq_norm_rows(tp, x), -0.5, -0.5 * double(d_) * kLog2Pi).value());
  }
  Tensor xi = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx);
  Tensor gE = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx), e = Tensor::empty(Shape{B}, dtype_, dev, ctx);
  for (int k = 0; k < N; ++k) {
    const double t = k * dt, s = sigma(t), m = drift(t);
    // time, dW and score are fresh each step: the kl tape keeps them for its backward pass.
    Tensor time = Tensor::empty(Shape{1, 1}, dtype_, dev, ctx);
    fill_constant(time, t, ctx);
    Tensor dWt = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx);
    fill_normal_at(xi, seed, offset + std::uint64_t(k) * per, ctx);
    kernels::affine(xi, std::sqrt(dt), 0.0, dWt, ctx);
    const Var dW = constant(dWt), tv = constant(time);
    // The score term of u is detached: clip(-grad E) (reference methods) or
    // sigma(t) clip(-(1 - t/T) x - (t/T) grad E) (DIS, the prior-target interpolation).
    target_.energy_and_grad(x.value(), e, gE, ctx);
    Tensor score = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx);
    if (reversal) {
      Tensor px = Tensor::empty(Shape{B, d_}, dtype_, dev, ctx);
      kernels::affine(gE, -t / T, 0.0, score, ctx);
      kernels::affine(x.value(), -(1.0 - t / T), 0.0, px, ctx);
      kernels::add(score, px, score, ctx);
    } else {
      kernels::affine(gE, -1.0, 0.0, score, ctx);
    }
    kernels::clamp_forward(score, -c, c, score, ctx);
    if (reversal) kernels::affine(score, s, 0.0, score, ctx);

    Var nn = ag::clamp(tp, nn_.forward(tp, tv, x), -c, c);
    Var nt = ag::clamp(tp, nn_t_.forward(tp, tv), -c, c);
    Var u = ag::add(tp, nn, ag::mul(tp, constant(score), nt));
    Var w = lv ? ag::detach(u) : u;
    Var dR;
    if (reversal) {
      Var cost = lv ? row_dot(tp, u, ag::sub(tp, w, ag::scale(tp, u, 0.5)))
                    : ag::scale(tp, ag::sq_norm_rows(tp, u), 0.5);
      dR = ag::scale(tp, cost, dt);
      if (pass != Pass::KlTrain) dR = ag::add(tp, dR, row_dot(tp, u, dW));
      if (pass == Pass::Eval)  // divergence of mu, trapezoid rule
        dR = ag::add_scalar(tp, dR, -double(d_) * 0.25 * (beta(t) + beta(t + dt)) * dt);
    } else {
      const bool has_r = cfg_.method == PathMethod::EulerDds;
      Var r = has_r ? ag::scale(tp, x, -s) : Var();
      Var diff = has_r ? ag::sub(tp, u, r) : u;
      Var cost;
      if (lv) {
        Var half = ag::scale(tp, has_r ? ag::add(tp, u, r) : u, 0.5);
        cost = row_dot(tp, diff, ag::sub(tp, w, half));
      } else {
        cost = ag::scale(tp, ag::sq_norm_rows(tp, diff), 0.5);
      }
      dR = ag::add(tp, ag::scale(tp, cost, dt), row_dot(tp, diff, dW));
    }
    if (pass == Pass::LvBackward) {
      tp.backward(dR, *cotangent);  // this step's share of dLoss/dtheta; frees the step's nodes
      dR = constant(dR.value());
    }
    R = ag::add(tp, R, dR);
    x = ag::add(tp, ag::add(tp, ag::affine(tp, x, 1.0 + m * dt, 0.0), ag::scale(tp, w, s * dt)),
                ag::scale(tp, dW, s));
    if (pass == Pass::LvBackward) {
      x = constant(x.value());
      R = constant(R.value());
    }
  }
  if (x_end) *x_end = x.value();
  // LvBackward has no use for R itself (pass 1 computed it) and the terminal terms carry no parameter
  // gradient.
  if (pass == Pass::LvBackward) return R;
  // Terminal terms: log p_ref(X_N) - log rho(X_N) for the reference methods, -log rho(X_N) for DIS.
  Var term = energy_node(tp, target_, x);
  if (!reversal) {
    const double s2 = cfg_.method == PathMethod::Pis ? cfg_.pis_sigma * cfg_.pis_sigma * T : 1.0;
    term = ag::add(
        tp, term,
        ag::affine(tp, ag::sq_norm_rows(tp, x), -0.5 / s2, -0.5 * double(d_) * (kLog2Pi + std::log(s2))));
  }
  return ag::add(tp, R, term);
}

PathBatch PathSampler::simulate(std::int64_t batch, std::uint64_t seed, std::uint64_t offset,
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
  if (loss == PathLoss::Kl) {
    // Backpropagation through the whole path; paths with a non-finite R are dropped.
    Tape tp(ctx);
    Var R = run(Pass::KlTrain, batch, 1, seed, offset, nullptr, tp, nullptr, ctx);
    const std::vector<double> r = R.value().to_doubles(ctx);
    std::vector<bool> mask(r.size());
    std::int64_t n = 0;
    for (std::size_t i = 0; i < r.size(); ++i) n += (mask[i] = std::isfinite(r[i])) ? 1 : 0;
    if (kept) *kept = n;
    if (n == 0) return NAN;  // nothing to learn from: the caller's optimiser skips the step
    Var sel = ag::masked_select_rows(tp, ag::reshape(tp, R, Shape{batch, 1}), mask);
    Var L = ag::scale(tp, ag::mean(tp, sel), 1.0 / double(d_));
    const double value = L.value().to_doubles(ctx)[0];
    tp.backward(L);
    return value;
  }
  const int K = loss == PathLoss::LvTraj ? cfg_.traj_per_sample : 1;
  NSAMP_CHECK(loss != PathLoss::LvTraj || (K >= 2 && batch % K == 0),
              "path sampler: lv_traj needs traj_per_sample >= 2 dividing the batch, got ", K, " and batch ",
              batch);
  // Pass 1: R of every path under the detached control.
  std::vector<double> R;
  {
    Tape tp(ctx);
    ag::NoGrad ng(tp);
    R = run(Pass::LvForward, batch, K, seed, offset, nullptr, tp, nullptr, ctx).value().to_doubles(ctx);
  }
  // Unbiased variance per group (the whole batch for lv, each start point's K paths for lv_traj), averaged
  // over groups; the cotangent of path i is dLoss/dR_i = 2 (R_i - mean) / (n - 1) / groups / d.
  const std::int64_t gsize = loss == PathLoss::LvTraj ? K : batch, groups = batch / gsize;
  std::vector<double> cot(R.size(), 0.0);
  double total = 0;
  std::int64_t used = 0, used_groups = 0;
  auto ok = [](double r) { return std::isfinite(r) && r < kLvDrop; };
  for (std::int64_t g = 0; g < groups; ++g) {
    double mean = 0;
    std::int64_t n = 0;
    for (std::int64_t j = 0; j < gsize; ++j)
      if (ok(R[std::size_t(g * gsize + j)])) mean += R[std::size_t(g * gsize + j)], ++n;
    if (n < 2) continue;
    mean /= double(n);
    double var = 0;
    for (std::int64_t j = 0; j < gsize; ++j) {
      const double r = R[std::size_t(g * gsize + j)];
      if (!ok(r)) continue;
      var += (r - mean) * (r - mean);
      cot[std::size_t(g * gsize + j)] = 2.0 * (r - mean) / double(n - 1);
    }
    total += var / double(n - 1);
    used += n;
    ++used_groups;
  }
  if (kept) *kept = used;
  if (used_groups == 0) return NAN;  // fewer than 2 usable paths: the optimiser skips the step
  const double scale = 1.0 / (double(used_groups) * double(d_));
  for (double& v : cot) v *= scale;
  // Pass 2: the same paths again (same noise, same states), each step backpropagated with the cotangent.
  const Tensor cotangent = device_tensor(cot, Shape{batch}, dtype_, ctx);
  Tape tp(ctx);
  run(Pass::LvBackward, batch, K, seed, offset, &cotangent, tp, nullptr, ctx);
  return total * scale;
}

}  // namespace nsamp::samplers
