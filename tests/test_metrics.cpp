// Value-based metrics: importance-weight estimators, histogram TVD, interatomic distances, 1-D W2, mode
// coverage.
#include <cmath>

#include "nsamp/samplers/metrics.h"
#include "nsamp/targets/target.h"
#include "test_util.h"

using namespace nsamp;
namespace m = nsamp::samplers::metrics;

NSAMP_DEVICE_TEST("metrics: log Z - ELBO and ESS from log-weights") {
  Context ctx(dev);
  for (double shift : {0.0, 1e4, -1e4}) {  // the estimators are shift-covariant and must not overflow
    CAPTURE(shift);
    const std::vector<double> w = {1, 2, 3, 4};
    std::vector<double> l;
    for (double v : w) l.push_back(std::log(v) + shift);
    l.push_back(-INFINITY);  // a zero weight counts in N but adds nothing
    const m::WeightStats s = m::weight_stats(test::from_doubles(l, Shape{5}, DType::F64, dev, ctx), ctx);
    CHECK(s.n == 5);
    CHECK(s.log_z == doctest::Approx(std::log(10.0 / 5.0) + shift).epsilon(1e-12));
    // At |shift| = 1e4 the inputs themselves carry ~2e-12 of rounding, which the ESS inherits.
    CHECK(s.ess == doctest::Approx(100.0 / 30.0).epsilon(1e-10));
    CHECK(s.ess_fraction == doctest::Approx(100.0 / 30.0 / 5.0).epsilon(1e-10));
    CHECK(s.elbo == -INFINITY);
    CHECK(s.var_r == INFINITY);  // a zero weight is an infinite R
    // Without it: the unbiased variance of log 1 .. log 4, against a float64 two-pass reference.
    l.pop_back();
    const m::WeightStats t = m::weight_stats(test::from_doubles(l, Shape{4}, DType::F64, dev, ctx), ctx);
    double mean = 0, var = 0;
    for (double v : w) mean += std::log(v) / 4;
    for (double v : w) var += (std::log(v) - mean) * (std::log(v) - mean) / 3;
    // The shift of 1e4 costs the centred values ~1e-12 absolute, ~1e-11 relative of the variance (0.34).
    CHECK(t.var_r == doctest::Approx(var).epsilon(1e-10));
  }
  const m::WeightStats f =
      m::weight_stats(test::from_doubles({0.5, 0.5, 0.5}, Shape{3}, DType::F32, dev, ctx), ctx);
  CHECK(f.ess == doctest::Approx(3.0).epsilon(1e-6));
  CHECK(f.elbo == doctest::Approx(0.5).epsilon(1e-6));
  CHECK(f.var_r == 0.0);
  CHECK(std::isnan(m::weight_stats(test::from_doubles({0.3}, Shape{1}, DType::F64, dev, ctx), ctx).var_r));
  const m::WeightStats nan =
      m::weight_stats(test::from_doubles({0.0, NAN}, Shape{2}, DType::F64, dev, ctx), ctx);
  CHECK(std::isnan(nan.log_z));
  CHECK(std::isnan(nan.var_r));
  const m::WeightStats pinf =
      m::weight_stats(test::from_doubles({0.0, INFINITY}, Shape{2}, DType::F64, dev, ctx), ctx);
  CHECK(pinf.log_z == INFINITY);
  CHECK(std::isnan(pinf.var_r));
  CHECK_THROWS_WITH_AS(m::weight_stats(Tensor::empty(Shape{0}, DType::F64, ctx), ctx),
                       doctest::Contains("no log-weights"), Error);
}

TEST_CASE("metrics: histogram TVD follows the stated binning conventions" * doctest::test_suite("cpu")) {
  std::vector<double> ref, shifted, outside;
  for (int i = 0; i <= 1000; ++i) {
    ref.push_back(i / 1000.0);
    shifted.push_back(i / 1000.0 + 0.5);
    outside.push_back(5.0 + i);
  }
  CHECK(m::histogram_tvd(ref, ref) == 0.0);
  CHECK(m::histogram_tvd(outside, ref) == 1.0);
  // Two bins [0, 0.5), [0.5, 1]: the shifted values inside all land in the upper bin; the rest are dropped.
  CHECK(m::histogram_tvd(shifted, ref, 2) == doctest::Approx(0.5 - 0.5 / 1001.0).epsilon(1e-12));
  CHECK_THROWS_WITH_AS(m::histogram_tvd(ref, {}), doctest::Contains("empty reference"), Error);
  CHECK_THROWS_WITH_AS(m::histogram_tvd(ref, {0.0, NAN}), doctest::Contains("non-finite reference"), Error);
}

TEST_CASE("metrics: interatomic distances and 1-D Wasserstein" * doctest::test_suite("cpu")) {
  const std::vector<double> tri = {0, 0, 1, 0, 0, 1};  // one sample of 3 particles in 2-D
  const std::vector<double> d = m::interatomic_distances(tri, 1, 3, 2);
  test::check_close(d, {1.0, 1.0, std::sqrt(2.0)}, 1e-15, 0, "triangle");
  CHECK(m::wasserstein2_squared_1d({0, 1}, {1, 0}) == 0.0);
  CHECK(m::wasserstein2_squared_1d({0}, {1}) == 1.0);
  CHECK(m::wasserstein2_squared_1d({0, 1}, {0.5}) == doctest::Approx(0.25));
  CHECK(m::wasserstein2_squared_1d({0, 1, 2}, {3, 4, 5}) == doctest::Approx(9.0));
  // Two large Gaussian samples one unit apart: W2^2 = 1 for the distributions.
  Context host(Device::cpu(), 8);
  Tensor a = Tensor::empty(Shape{200000}, DType::F64, host),
         b = Tensor::empty(Shape{150000}, DType::F64, host);
  fill_normal(a, host);
  fill_normal(b, host, 1.0, 1.0);
  CHECK(m::wasserstein2_squared_1d(a.to_vector<double>(host), b.to_vector<double>(host)) ==
        doctest::Approx(1.0).epsilon(0.02));
}

TEST_CASE("metrics: GMM-40 mode coverage of exact samples and of a sampler that found ten modes" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 2);
  auto gmm = targets::make_target("gmm40");
  Tensor x = Tensor::empty(Shape{20000, 2}, DType::F64, ctx);
  gmm->sample(x, ctx);
  const std::vector<std::int64_t> counts = m::mode_counts(x.to_vector<double>(ctx), 20000, gmm->modes());
  CHECK(m::modes_covered(counts) == 40);
  CHECK(m::entropic_mode_coverage(counts) > 0.99);
  std::vector<std::int64_t> ten(40, 0);
  for (int k = 0; k < 10; ++k) ten[static_cast<std::size_t>(k)] = 100;
  CHECK(m::modes_covered(ten) == 10);
  CHECK(m::entropic_mode_coverage(ten) == doctest::Approx(std::log(10.0) / std::log(40.0)));
  ten[10] = 1;  // one stray sample is not coverage
  CHECK(m::modes_covered(ten) == 10);
  CHECK_THROWS_WITH_AS(m::mode_counts({1.0, 2.0, 3.0}, 1, gmm->modes()),
                       doctest::Contains("not 1 samples of dimension 2"), Error);
}
