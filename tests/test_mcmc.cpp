// MCMC: the MALA kernels against a float64 reference, MALA leaving a Gaussian invariant, and MALA converging
// to it from a point mass.
#include <cmath>

#include "nsamp/kernels/mcmc.h"
#include "nsamp/samplers/diagnostics.h"
#include "nsamp/samplers/mala.h"
#include "test_util.h"

using namespace nsamp;

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
    const std::vector<double> v = test::to_doubles(c->x(), ctx);
    for (int k = 0; k < 3; ++k) {
      double m = 0, q = 0;
      for (std::int64_t b = 0; b < N; ++b) m += v[b * 3 + k] / N;
      for (std::int64_t b = 0; b < N; ++b) q += (v[b * 3 + k] - m) * (v[b * 3 + k] - m) / (N - 1);
      CHECK(std::abs(m) < 5.0 / std::sqrt(double(N)));
      CHECK(std::abs(q - 1.0) < 5.0 * std::sqrt(2.0 / N));
    }
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
