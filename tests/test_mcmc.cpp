// MCMC: the MALA and Metropolis kernels against a float64 reference, MALA and HMC leaving a Gaussian
// invariant and converging to it from a point mass, and one-leapfrog HMC being MALA with step h^2 / 2.
#include <cmath>

#include "nsamp/kernels/mcmc.h"
#include "nsamp/samplers/diagnostics.h"
#include "nsamp/samplers/hmc.h"
#include "nsamp/samplers/mala.h"
#include "test_energies.h"
#include "test_util.h"

using namespace nsamp;

namespace {

// Each coordinate of N samples [N, d] has mean 0 and variance 1 within 5 standard errors.
void check_standard_normal(const std::vector<double>& v, std::int64_t N, int d) {
  for (int k = 0; k < d; ++k) {
    double m = 0, q = 0;
    for (std::int64_t b = 0; b < N; ++b) m += v[std::size_t(b * d + k)] / double(N);
    for (std::int64_t b = 0; b < N; ++b) q += std::pow(v[std::size_t(b * d + k)] - m, 2) / double(N - 1);
    CHECK(std::abs(m) < 5.0 / std::sqrt(double(N)));
    CHECK(std::abs(q - 1.0) < 5.0 * std::sqrt(2.0 / double(N)));
  }
}

}  // namespace

NSAMP_DEVICE_TEST("mcmc: mala_accept takes exactly the moves whose log ratio beats log u") {
  Context ctx(dev);
  const std::int64_t B = 200, d = 5;
  const double eta = 0.3;
  const Tensor x = test::randn(Shape{B, d}, DType::F64, Device::cpu(), ctx, 1);
  const Tensor g = test::randn(Shape{B, d}, DType::F64, Device::cpu(), ctx, 2);
  const Tensor y = test::randn(Shape{B, d}, DType::F64, Device::cpu(), ctx, 3);
  const Tensor gy = test::randn(Shape{B, d}, DType::F64, Device::cpu(), ctx, 4);
  const Tensor e = test::randn(Shape{B}, DType::F64, Device::cpu(), ctx, 5);
  const Tensor ey = test::randn(Shape{B}, DType::F64, Device::cpu(), ctx, 6, 2.0);
  Tensor lu = test::randn(Shape{B}, DType::F64, Device::cpu(), ctx, 7, 2.0, -1.0);
  lu.data<double>()[0] = NAN;  // never accepts
  const std::vector<double> xv = x.to_vector<double>(ctx), gv = g.to_vector<double>(ctx),
                            yv = y.to_vector<double>(ctx), gyv = gy.to_vector<double>(ctx),
                            ev = e.to_vector<double>(ctx), eyv = ey.to_vector<double>(ctx),
                            luv = lu.to_vector<double>(ctx);
  std::vector<double> ref_x = xv, ref_e = ev, ref_acc(B, 0.0);
  for (std::int64_t b = 0; b < B; ++b) {
    double fwd = 0, bwd = 0;
    for (std::int64_t j = 0; j < d; ++j) {
      fwd += std::pow(yv[b * d + j] - xv[b * d + j] + eta * gv[b * d + j], 2);
      bwd += std::pow(xv[b * d + j] - yv[b * d + j] + eta * gyv[b * d + j], 2);
    }
    const double log_alpha = -(eyv[b] - ev[b]) - bwd / (4 * eta) + fwd / (4 * eta);
    if (luv[b] < log_alpha) {
      for (std::int64_t j = 0; j < d; ++j) ref_x[b * d + j] = yv[b * d + j];
      ref_e[b] = eyv[b];
      ref_acc[b] = 1;
    }
  }
  Tensor X = x.to(dev, ctx), G = g.to(dev, ctx), E = e.to(dev, ctx),
         A = Tensor::zeros(Shape{B}, DType::F64, ctx);
  kernels::mala_accept(X, E, G, y.to(dev, ctx), ey.to(dev, ctx), gy.to(dev, ctx), lu.to(dev, ctx), eta, A,
                       ctx);
  test::check_close(X.to_vector<double>(ctx), ref_x, 0, 0, "states");
  test::check_close(E.to_vector<double>(ctx), ref_e, 0, 0, "energies");
  test::check_close(A.to_vector<double>(ctx), ref_acc, 0, 0, "acceptance counts");
  CHECK(A.to_vector<double>(ctx)[0] == 0.0);
  Tensor P = Tensor::empty(Shape{B, d}, DType::F64, ctx);
  kernels::langevin_propose(x.to(dev, ctx), g.to(dev, ctx), y.to(dev, ctx), eta, P, ctx);
  std::vector<double> ref_p(xv.size());
  for (std::size_t i = 0; i < xv.size(); ++i) ref_p[i] = xv[i] - eta * gv[i] + std::sqrt(2 * eta) * yv[i];
  test::check_close(P.to_vector<double>(ctx), ref_p, 1e-15, 1e-15, "Langevin proposal");
  CHECK_THROWS_WITH_AS(
      kernels::mala_accept(X, E, G, X, ey.to(dev, ctx), gy.to(dev, ctx), lu.to(dev, ctx), eta, A, ctx),
      doctest::Contains("must not share memory"), Error);
}

NSAMP_DEVICE_TEST("mcmc: MALA leaves a Gaussian invariant and converges to it from a point mass") {
  Context ctx(dev, 11);
  auto target = targets::make_target("gaussian", {3});
  const std::int64_t N = 20000;
  Tensor x0 = Tensor::empty(Shape{N, 3}, DType::F32, ctx);
  target->sample(x0, ctx);
  samplers::MalaChains stay(*target, x0, 0.5, ctx);
  stay.run(25);
  // From (3, -3, 3): contraction ~(1 - eta) per step, so 300 steps of 0.2 forget the start.
  Tensor far = test::from_doubles(std::vector<double>(N * 3, 0.0), Shape{N, 3}, DType::F32, dev, ctx);
  fill_constant(far, 3.0, ctx);
  samplers::MalaChains move(*target, far, 0.2, ctx);
  move.run(300);
  for (samplers::MalaChains* c : {&stay, &move}) {
    check_standard_normal(test::to_doubles(c->x(), ctx), N, 3);
    MESSAGE("MALA step " << c->step() << ": acceptance " << c->acceptance_rate());
    CHECK(c->acceptance_rate() > 0.7);
  }
  CHECK_THROWS_WITH_AS(samplers::MalaChains(*target, x0, -1.0, ctx),
                       doctest::Contains("step must be positive"), Error);
}

TEST_CASE("mcmc: split R-hat is about 1 for mixed chains and large for stuck ones" *
          doctest::test_suite("cpu")) {
  Context host(Device::cpu(), 3);
  Tensor z = Tensor::empty(Shape{8, 1000}, DType::F64, host);
  fill_normal(z, host);
  const std::vector<double> v = z.to_vector<double>(host);
  std::vector<std::vector<double>> mixed(8), stuck(8), drifting(8);
  for (int c = 0; c < 8; ++c)
    for (int i = 0; i < 1000; ++i) {
      const double x = v[c * 1000 + i];
      mixed[c].push_back(x);
      stuck[c].push_back(x + (c % 2 ? 3.0 : 0.0));  // two groups of chains in different modes
      drifting[c].push_back(x + 0.005 * i);         // every chain still moving
    }
  const double r = samplers::split_rhat(mixed);
  MESSAGE("R-hat of i.i.d. chains " << r);
  CHECK(r < 1.01);
  CHECK(samplers::split_rhat(stuck) > 1.5);
  CHECK(samplers::split_rhat(drifting) > 1.1);
  CHECK_THROWS_WITH_AS(samplers::split_rhat({{1, 2, 3}}), doctest::Contains("at least 4 values"), Error);
}

NSAMP_DEVICE_TEST("mcmc: metropolis_accept takes exactly the moves whose given log ratio beats log u") {
  Context ctx(dev);
  const std::int64_t B = 150, d = 37;  // d > 32: a warp loops over the row
  const Tensor x = test::randn(Shape{B, d}, DType::F32, Device::cpu(), ctx, 1);
  const Tensor g = test::randn(Shape{B, d}, DType::F32, Device::cpu(), ctx, 2);
  const Tensor y = test::randn(Shape{B, d}, DType::F32, Device::cpu(), ctx, 3);
  const Tensor gy = test::randn(Shape{B, d}, DType::F32, Device::cpu(), ctx, 4);
  const Tensor e = test::randn(Shape{B}, DType::F32, Device::cpu(), ctx, 5);
  const Tensor ey = test::randn(Shape{B}, DType::F32, Device::cpu(), ctx, 6);
  Tensor la = test::randn(Shape{B}, DType::F32, Device::cpu(), ctx, 7);
  const Tensor lu = test::randn(Shape{B}, DType::F32, Device::cpu(), ctx, 8);
  la.data<float>()[3] = NAN;
  const std::vector<double> xv = test::to_doubles(x, ctx), gv = test::to_doubles(g, ctx),
                            yv = test::to_doubles(y, ctx), gyv = test::to_doubles(gy, ctx),
                            ev = test::to_doubles(e, ctx), eyv = test::to_doubles(ey, ctx),
                            lav = test::to_doubles(la, ctx), luv = test::to_doubles(lu, ctx);
  std::vector<double> rx = xv, rg = gv, re = ev, racc(B, 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    if (luv[b] < lav[b]) {
      for (std::int64_t j = 0; j < d; ++j) rx[b * d + j] = yv[b * d + j], rg[b * d + j] = gyv[b * d + j];
      re[b] = eyv[b];
      racc[b] = 1;
    }
  Tensor X = x.to(dev, ctx), G = g.to(dev, ctx), E = e.to(dev, ctx),
         A = Tensor::zeros(Shape{B}, DType::F32, ctx);
  kernels::metropolis_accept(X, E, G, y.to(dev, ctx), ey.to(dev, ctx), gy.to(dev, ctx), la.to(dev, ctx),
                             lu.to(dev, ctx), A, ctx);
  test::check_close(test::to_doubles(X, ctx), rx, 0, 0, "states");
  test::check_close(test::to_doubles(G, ctx), rg, 0, 0, "gradients");
  test::check_close(test::to_doubles(E, ctx), re, 0, 0, "energies");
  test::check_close(test::to_doubles(A, ctx), racc, 0, 0, "acceptance counts");
  CHECK(test::to_doubles(A, ctx)[3] == 0.0);
  CHECK_THROWS_WITH_AS(kernels::metropolis_accept(X, E, G, y.to(dev, ctx), ey.to(dev, ctx), gy.to(dev, ctx),
                                                  la.to(dev, ctx).slice_rows(0, 10), lu.to(dev, ctx), A, ctx),
                       doctest::Contains("log_alpha"), Error);
}

NSAMP_DEVICE_TEST("mcmc: HMC leaves a Gaussian invariant and converges to it from a point mass") {
  Context ctx(dev, 12);
  auto target = targets::make_target("gaussian", {3});
  const std::int64_t N = 20000;
  Tensor x0 = Tensor::empty(Shape{N, 3}, DType::F32, ctx);
  target->sample(x0, ctx);
  samplers::HmcChains stay(*target, x0, 0.5, 3, ctx);
  stay.run(10);
  // From (3, 3, 3): 5 leapfrog steps of 0.3 turn the state by about 1.5 radians per move (the mean shrinks by
  // cos 1.5 = 0.07 per move; near pi it would flip sign and barely shrink), so 30 moves forget the start.
  Tensor far = Tensor::empty(Shape{N, 3}, DType::F32, ctx);
  fill_constant(far, 3.0, ctx);
  samplers::HmcChains move(*target, far, 0.3, 5, ctx);
  move.run(30);
  for (samplers::HmcChains* c : {&stay, &move}) {
    check_standard_normal(test::to_doubles(c->x(), ctx), N, 3);
    MESSAGE("HMC step " << c->step() << " x " << c->leapfrog() << ": acceptance " << c->acceptance_rate());
    CHECK(c->acceptance_rate() > 0.7);
  }
  CHECK_THROWS_WITH_AS(samplers::HmcChains(*target, x0, 0.1, 0, ctx), doctest::Contains("leapfrog"), Error);
  CHECK_THROWS_WITH_AS(samplers::HmcChains(*target, x0, 0.0, 2, ctx),
                       doctest::Contains("step must be positive"), Error);
}

NSAMP_DEVICE_TEST("mcmc: one-leapfrog HMC with step h is MALA with step h^2 / 2 - draw for draw") {
  // Both draw a [B, d] normal (momentum / Langevin noise) and then B uniforms per step from the same
  // stream, and y = x - (h^2 / 2) g + h p is the same proposal, so the chains coincide.
  auto target = targets::make_target("gmm9");
  const std::int64_t B = 500;
  const double h = 0.7;
  // Each chain on its own context (device memory belongs to one), from the same host start.
  Context cx(Device::cpu(), 3);
  Tensor x0 = Tensor::empty(Shape{B, 2}, DType::F64, cx);
  target->sample(x0, cx);
  Context c1(dev, 21), c2(dev, 21);
  samplers::HmcChains hmc(*target, x0.to(dev, c1), h, 1, c1);
  samplers::MalaChains mala(*target, x0.to(dev, c2), h * h / 2, c2);
  hmc.run(20);
  mala.run(20);
  test::check_close(test::to_doubles(hmc.x(), c1), test::to_doubles(mala.x(), c2), 1e-9, 1e-9, "states");
  CHECK(hmc.acceptance_rate() == doctest::Approx(mala.acceptance_rate()));
}

namespace {

// A Gaussian tilt of B chains in d dimensions: x_t ~ N(0, 4), a in [0.3, 1), s in [0.2, 1.2).
kernels::GaussianTilt random_tilt(std::int64_t B, std::int64_t d, DType dt, Device dev, Context& ctx,
                                  double beta) {
  Context host(Device::cpu(), 99);
  Tensor u = Tensor::empty(Shape{2 * B}, DType::F64, host);
  fill_uniform(u, host);
  const std::vector<double> uv = u.to_vector<double>(host);
  std::vector<double> a(static_cast<std::size_t>(B)), c(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) {
    a[std::size_t(b)] = 0.3 + 0.7 * uv[std::size_t(b)];
    const double s = 0.2 + uv[std::size_t(B + b)];
    c[std::size_t(b)] = 0.5 / (s * s);
  }
  return {test::randn(Shape{B, d}, dt, dev, ctx, 98, 2.0), test::from_doubles(a, Shape{B}, dt, dev, ctx),
          test::from_doubles(c, Shape{B}, dt, dev, ctx), beta};
}

kernels::GaussianTilt tilt_to(const kernels::GaussianTilt& t, Device dev, Context& ctx) {
  if (!t.active()) return {};
  return {t.xt.to(dev, ctx), t.a.to(dev, ctx), t.c.to(dev, ctx), t.beta};
}

}  // namespace

NSAMP_DEVICE_TEST("mcmc: the fused MALA step moves the chains as the unfused sequence does - draw for draw") {
  // Same seed, same counters: the fused pass (one per chain) and the unfused sequence (noise fill, proposal,
  // target, uniform fill, decision) draw the same numbers, so the chains coincide up to rounding; and the
  // device runs coincide with the CPU's fused run.
  struct Case {
    const char* target;
    DType dt;
    double step, beta;
    bool tilt;
  };
  for (const Case& k :
       {Case{"gmm40", DType::F64, 0.5, 1.0, false}, Case{"gmm40", DType::F64, 0.5, 0.4, true},
        Case{"gmm40", DType::F32, 0.5, 1.0, true}, Case{"manywell32", DType::F64, 0.01, 1.0, false},
        Case{"manywell32", DType::F64, 0.02, 0.7, true}, Case{"funnel10", DType::F64, 0.05, 1.0, false},
        Case{"multiwell5", DType::F32, 0.05, 1.0, false},
        // the pair systems' warp-per-chain kernel (dw4 also with the tilt; lj13 with its harmonic term)
        Case{"dw4", DType::F64, 0.05, 1.0, false}, Case{"dw4", DType::F32, 0.05, 0.7, true},
        Case{"lj13", DType::F64, 0.002, 0.7, true}, Case{"lj13", DType::F32, 0.002, 1.0, false}}) {
    CAPTURE(std::string(k.target));
    CAPTURE(k.tilt);
    CAPTURE(dtype_name(k.dt));
    auto target = targets::make_target(k.target);
    const std::int64_t B = 300, d = target->dim();
    Context cs(Device::cpu(), 5);
    const Tensor x0 =
        test::from_doubles(test::start_points(*target, B, cs), Shape{B, d}, k.dt, Device::cpu(), cs);
    Context hc(Device::cpu(), 77);
    const kernels::GaussianTilt host_tilt =
        k.tilt ? random_tilt(B, d, k.dt, Device::cpu(), hc, k.beta) : kernels::GaussianTilt{};
    std::vector<std::vector<double>> xs, es, gs;
    std::vector<double> acc;
    for (int run = 0; run < 3; ++run) {  // CPU fused, dev fused, dev unfused
      const Device where = run == 0 ? Device::cpu() : dev;
      Context c(where, 31);
      samplers::MalaChains m(*target, x0.to(where, c), k.step, c, tilt_to(host_tilt, where, c));
      m.set_fused(run != 2);
      m.run(12);
      xs.push_back(test::to_doubles(m.x(), c));
      es.push_back(test::to_doubles(m.energy(), c));
      gs.push_back(test::to_doubles(m.grad(), c));
      acc.push_back(m.acceptance_rate());
    }
    const double tol = k.dt == DType::F64 ? 1e-9 : (dev.is_cpu() ? 0.0 : 2e-3);
    for (int run = 1; run < 3; ++run) {
      CAPTURE(run);
      test::check_close(xs[std::size_t(run)], xs[0], tol, tol, "states");
      test::check_close(es[std::size_t(run)], es[0], tol, tol, "energies");
      test::check_close(gs[std::size_t(run)], gs[0], tol, tol, "gradients");
      if (k.dt == DType::F64 || dev.is_cpu()) CHECK(acc[std::size_t(run)] == acc[0]);
    }
    CHECK(acc[0] > 0.05);
    CHECK(acc[0] < 1.0);
  }
}

NSAMP_DEVICE_TEST("mcmc: tilted MALA samples the Gaussian posterior of its tilt") {
  // E = |x|^2 / 2 tilted by beta and c |x_t - a x|^2: U is Gaussian with precision lambda = beta + 2 c a^2
  // and mean 2 c a x_t / lambda.
  Context ctx(dev, 13);
  auto target = targets::make_target("gaussian", {2});
  const std::int64_t N = 20000;
  const double a = 0.6, s = 0.5, c = 0.5 / (s * s), beta = 0.8, lambda = beta + 2 * c * a * a;
  const std::vector<double> xt_row{1.5, -2.0};
  std::vector<double> xt;
  for (std::int64_t b = 0; b < N; ++b) xt.insert(xt.end(), xt_row.begin(), xt_row.end());
  kernels::GaussianTilt tilt{test::from_doubles(xt, Shape{N, 2}, DType::F64, dev, ctx),
                             test::from_doubles(std::vector<double>(N, a), Shape{N}, DType::F64, dev, ctx),
                             test::from_doubles(std::vector<double>(N, c), Shape{N}, DType::F64, dev, ctx),
                             beta};
  Tensor x0 = Tensor::zeros(Shape{N, 2}, DType::F64, ctx);
  samplers::MalaChains m(*target, x0, 0.4 / lambda, ctx, tilt);
  m.run(150);
  const std::vector<double> v = test::to_doubles(m.x(), ctx);
  for (int k = 0; k < 2; ++k) {
    double mean = 0, var = 0;
    for (std::int64_t b = 0; b < N; ++b) mean += v[std::size_t(b * 2 + k)] / double(N);
    for (std::int64_t b = 0; b < N; ++b) var += std::pow(v[std::size_t(b * 2 + k)] - mean, 2) / double(N - 1);
    const double m_ref = 2 * c * a * xt_row[std::size_t(k)] / lambda, v_ref = 1 / lambda;
    CHECK(std::abs(mean - m_ref) < 5 * std::sqrt(v_ref / double(N)));
    CHECK(std::abs(var / v_ref - 1) < 5 * std::sqrt(2.0 / double(N)));
  }
  // The state carries the untilted E = |x|^2 / 2 and its gradient x.
  const std::vector<double> e = test::to_doubles(m.energy(), ctx), g = test::to_doubles(m.grad(), ctx);
  for (std::int64_t b = 0; b < 5; ++b) {
    CHECK(e[std::size_t(b)] ==
          doctest::Approx(0.5 * (v[std::size_t(2 * b)] * v[std::size_t(2 * b)] +
                                 v[std::size_t(2 * b + 1)] * v[std::size_t(2 * b + 1)])));
    CHECK(g[std::size_t(2 * b)] == doctest::Approx(v[std::size_t(2 * b)]));
  }
  kernels::GaussianTilt bad = tilt;
  bad.a = bad.a.slice_rows(0, 10);
  CHECK_THROWS_WITH_AS(samplers::MalaChains(*target, x0, 0.1, ctx, bad), doctest::Contains("one per chain"),
                       Error);
}

TEST_CASE("mcmc: built-in and functor targets step fused - host callbacks unfused - with the same chains" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 1);
  const targets::FunctorTarget<test::QuarticWells> quartic("quartic", 3, test::QuarticWells{});
  const targets::CallbackTarget callback = test::quartic_callback();
  auto gmm = targets::make_target("gmm40"), dw = targets::make_target("dw4");
  auto z = [&](std::int64_t B, std::int64_t d) { return Tensor::zeros(Shape{B, d}, DType::F64, ctx); };
  const std::vector<const targets::Target*> all{gmm.get(), dw.get(), &quartic, &callback};
  for (const targets::Target* t : all) {
    CAPTURE(t->name());
    const std::int64_t B = 4, d = t->dim();
    targets::MalaStepArgs m{z(B, d), z(B, 1), z(B, d), z(B, d), z(B, d), z(B, 1), {}, 0.1, {}};
    CHECK(t->mala_step_fused(m, ctx) == (t != all.back()));
    m.step = 0;
    CHECK_THROWS_WITH_AS(t->mala_step_fused(m, ctx), doctest::Contains("step must be positive"), Error);
  }
  // The functor target's fused chains and the callback's unfused ones see the same energy and draws.
  const Tensor x0 = test::randn(Shape{500, 3}, DType::F64, Device::cpu(), ctx, 4);
  Context c1(Device::cpu(), 9), c2(Device::cpu(), 9);
  samplers::MalaChains a(quartic, x0, 0.05, c1), b(callback, x0, 0.05, c2);
  a.run(20);
  b.run(20);
  test::check_close(test::to_doubles(a.x(), c1), test::to_doubles(b.x(), c2), 1e-12, 1e-12, "states");
  CHECK(a.acceptance_rate() == b.acceptance_rate());
  CHECK(a.acceptance_rate() > 0.3);
}
