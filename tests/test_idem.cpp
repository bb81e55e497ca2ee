// iDEM / IW-SM building blocks: the VE schedule (g^2 = dh/dt), the replay buffer's FIFO and uniform sampling,
// the buffer density against a float64 loop, and IW-SM's weights tending to 1/N when the buffer holds the
// target's own samples (and not when it does not).
#include <cmath>

#include "nsamp/core/fill.h"
#include "nsamp/kernels/transport.h"
#include "nsamp/samplers/idem.h"
#include "nsamp/samplers/idem_training.h"
#include "nsamp/targets/target.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

TEST_CASE("idem: the VE schedule's g^2 is the derivative of its variance" * doctest::test_suite("cpu")) {
  const s::VeSchedule v(1e-5, 1.0);
  CHECK(v.h(0.0) == 0.0);
  CHECK(v.h(1.0) == doctest::Approx(1.0 - 1e-10).epsilon(1e-12));
  for (double t : {0.05, 0.3, 0.7, 0.95}) {
    const double eps = 1e-6, dh = (v.h(t + eps) - v.h(t - eps)) / (2 * eps);
    CHECK(v.g(t) * v.g(t) == doctest::Approx(dh).epsilon(1e-6));
    CHECK(v.sigma(t) == doctest::Approx(std::sqrt(v.h(t))));
  }
  CHECK_THROWS_WITH_AS(s::VeSchedule(1.0, 0.5), doctest::Contains("sigma_min < sigma_max"), Error);
}

TEST_CASE("idem: the replay buffer keeps the newest rows and samples them uniformly" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 5);
  s::ReplayBuffer buf(10, 2, DType::F64, ctx);
  auto rows = [&](double from, std::int64_t n) {
    std::vector<double> v;
    for (std::int64_t i = 0; i < n; ++i) {
      v.push_back(from + double(i));
      v.push_back(-(from + double(i)));
    }
    return Tensor::from_vector(v, Shape{n, 2}, Device::cpu(), ctx);
  };
  CHECK_THROWS_WITH_AS(buf.sample(3), doctest::Contains("empty"), Error);
  buf.push(rows(0, 4));
  CHECK(buf.size() == 4);
  buf.push(rows(4, 9));  // 13 rows pushed: 0, 1, 2 are gone
  CHECK(buf.size() == 10);
  std::vector<double> kept;
  for (std::int64_t i = 0; i < 10; ++i) kept.push_back(buf.rows().to_doubles(ctx)[std::size_t(2 * i)]);
  std::sort(kept.begin(), kept.end());
  for (int i = 0; i < 10; ++i) CHECK(kept[std::size_t(i)] == double(3 + i));
  buf.push(rows(100, 25));  // more than capacity at once: the newest 10
  std::vector<double> last;
  for (double v : buf.rows().to_doubles(ctx)) last.push_back(v);
  for (std::int64_t i = 0; i < 10; ++i) CHECK(last[std::size_t(2 * i)] >= 115.0);
  // Uniform with replacement: 20000 draws over 10 rows, each count within 5 standard deviations.
  const std::vector<double> d = buf.sample(20000).to_doubles(ctx);
  std::vector<int> count(10, 0);
  for (std::size_t i = 0; i < d.size(); i += 2) count[std::size_t(d[i] - 115.0)]++;
  for (int c : count) CHECK(std::abs(c - 2000) < 5 * std::sqrt(2000 * 0.9));
  CHECK_THROWS_WITH_AS(buf.push(rows(0, 2).reshape(Shape{1, 4})), doctest::Contains("rows must be"), Error);
}

NSAMP_DEVICE_TEST("idem: the fused log-sum-exp over the buffer matches a float64 loop") {
  Context ctx(dev);
  const std::int64_t N = 67, M = 301, d = 3;
  const Tensor x = test::randn(Shape{N, d}, DType::F64, dev, ctx, 1, 2.0);
  const Tensor y = test::randn(Shape{M, d}, DType::F64, dev, ctx, 2, 2.0);
  std::vector<double> scale(N);
  for (std::int64_t i = 0; i < N; ++i) scale[std::size_t(i)] = i % 3 == 0 ? 400.0 : 0.05 * double(i + 1);
  const std::vector<double> xv = test::to_doubles(x, ctx), yv = test::to_doubles(y, ctx);
  for (DType dt : {DType::F64, DType::F32}) {
    CAPTURE(dtype_name(dt));
    std::vector<double> ref(N);
    for (std::int64_t i = 0; i < N; ++i) {
      std::vector<double> l(M);
      double m = -INFINITY;
      for (std::int64_t j = 0; j < M; ++j) {
        double r2 = 0;
        for (std::int64_t k = 0; k < d; ++k)
          r2 += std::pow(xv[std::size_t(i * d + k)] - yv[std::size_t(j * d + k)], 2);
        m = std::max(m, l[std::size_t(j)] = -scale[std::size_t(i)] * r2);
      }
      double sum = 0;
      for (double v : l) sum += std::exp(v - m);
      ref[std::size_t(i)] = m + std::log(sum);
    }
    Tensor out = Tensor::empty(Shape{N}, dt, ctx);
    kernels::log_kernel_sum(test::from_doubles(xv, Shape{N, d}, dt, dev, ctx),
                            test::from_doubles(yv, Shape{M, d}, dt, dev, ctx),
                            test::from_doubles(scale, Shape{N}, dt, dev, ctx), out, ctx);
    const double tol = dt == DType::F64 ? 1e-12 : 1e-4;
    test::check_close(test::to_doubles(out, ctx), ref, tol, tol, "log kernel sum");
  }
  Tensor out = Tensor::empty(Shape{N}, DType::F64, ctx);
  kernels::log_kernel_sum(x, Tensor::empty(Shape{0, d}, DType::F64, ctx),
                          test::from_doubles(scale, Shape{N}, DType::F64, dev, ctx), out, ctx);
  CHECK(test::to_doubles(out, ctx)[0] == -INFINITY);
  CHECK_THROWS_WITH_AS(
      kernels::log_kernel_sum(x, Tensor::empty(Shape{M, 2}, DType::F64, ctx),
                              test::from_doubles(scale, Shape{N}, DType::F64, dev, ctx), out, ctx),
      doctest::Contains("must share d"), Error);
}

TEST_CASE("idem: IW-SM's weights are about 1/N when the buffer holds the target's samples" *
          doctest::test_suite("cpu")) {
  // Target N(0, I_2); points x = x0 + sigma z with x0 from the target. log p~ estimates log(Z p_sigma(x)) and
  // log p^B log p_sigma(x) (a KDE of exact samples), so the weights are nearly equal. A buffer shifted by
  // (1.5, 0) makes them unequal.
  Context ctx(Device::cpu(), 11);
  auto g = targets::make_target("gaussian", {2});
  const std::int64_t N = 256, M = 20000, K = 4000;
  const double sigma = 0.5;
  Tensor buffer = Tensor::empty(Shape{M, 2}, DType::F64, ctx),
         x = Tensor::empty(Shape{N, 2}, DType::F64, ctx);
  g->sample(buffer, ctx);
  g->sample(x, ctx);
  Tensor z = Tensor::empty(Shape{N, 2}, DType::F64, ctx);
  fill_normal(z, ctx, 0.0, sigma);
  std::vector<double> xv = x.to_doubles(ctx);
  const std::vector<double> zv = z.to_doubles(ctx);
  for (std::size_t i = 0; i < xv.size(); ++i) xv[i] += zv[i];
  const Tensor X = Tensor::from_vector(xv, Shape{N, 2}, Device::cpu(), ctx);
  Tensor score = Tensor::empty(Shape{N, 2}, DType::F64, ctx), lp = Tensor::empty(Shape{N}, DType::F64, ctx);
  g->mc_score(X, Tensor::from_vector(std::vector<double>(N, sigma), Shape{N}, Device::cpu(), ctx), K, 0.0,
              score, &lp, ctx);
  const std::vector<double> sig(N, sigma);
  const s::ImportanceWeights same =
      s::iw_weights(lp.to_doubles(ctx), s::buffer_log_density(X, buffer, sig, 2.0, ctx).to_doubles(ctx));
  std::vector<double> shifted = buffer.to_doubles(ctx);
  for (std::size_t i = 0; i < shifted.size(); i += 2) shifted[i] += 1.5;
  const s::ImportanceWeights off = s::iw_weights(
      lp.to_doubles(ctx),
      s::buffer_log_density(X, Tensor::from_vector(shifted, Shape{M, 2}, Device::cpu(), ctx), sig, 2.0, ctx)
          .to_doubles(ctx));
  MESSAGE("normalised ESS: buffer from the target " << same.ess << ", shifted buffer " << off.ess);
  CHECK(same.ess > 0.95);
  CHECK(off.ess < 0.7);
  double total = 0;
  for (double w : same.w) total += w;
  CHECK(total == doctest::Approx(1.0));
  CHECK(same.dropped == 0);
  const s::ImportanceWeights one_bad = s::iw_weights({0.0, NAN, 1.0}, {0.0, 0.0, 0.0});
  CHECK(one_bad.dropped == 1);
  CHECK(one_bad.w[1] == 0.0);
  CHECK_THROWS_WITH_AS(s::iw_weights({NAN}, {0.0}), doctest::Contains("no finite"), Error);
}

TEST_CASE("idem: the reverse VE SDE driven by S_K samples a Gaussian target" * doctest::test_suite("cpu")) {
  // Target N(0, I_2) in its own units (coord_scale 1), prior N(0, h(1) I) with sigma_max 5: the SDE driven by
  // the Monte Carlo score ends at the target. Measured variances: 1.003 and 1.006 with K = 500 and 100 steps;
  // 0.92 with K = 100 (the self-normalised estimate's bias), 1.00 with K = 1000 and 400 steps.
  Context ctx(Device::cpu(), 21);
  auto g = targets::make_target("gaussian", {2});
  s::IdemConfig c;
  c.sigma_min = 1e-3;
  c.sigma_max = 5.0;
  c.K = 500;
  c.clip = 0;
  c.coord_scale = 1.0;
  c.coord_shift = 0.0;
  const s::IdemSampler sampler(*g, c, DType::F64, ctx);
  const std::int64_t N = 2000;
  const std::vector<double> y = sampler.reverse_sde(N, 100, true, ctx).to_doubles(ctx);
  for (int k = 0; k < 2; ++k) {
    double m = 0, v = 0;
    for (std::int64_t i = 0; i < N; ++i) m += y[std::size_t(2 * i + k)] / double(N);
    for (std::int64_t i = 0; i < N; ++i) v += std::pow(y[std::size_t(2 * i + k)] - m, 2) / double(N - 1);
    MESSAGE("coordinate " << k << ": mean " << m << ", variance " << v);
    CHECK(std::abs(m) < 5.0 / std::sqrt(double(N)));
    CHECK(std::abs(v - 1.0) < 0.05);
  }
  auto lj = targets::make_target("lj13");
  CHECK_THROWS_WITH_AS(s::IdemSampler(*lj, c, DType::F64, ctx), doctest::Contains("EGNN"), Error);
}
