// Sample-set distances: the exact assignment against enumeration and LP duality, x-W2 against closed forms,
// Sinkhorn approaching exact OT as epsilon shrinks, MMD against a float64 transcription of its formula.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/transport.h"
#include "nsamp/samplers/assignment.h"
#include "nsamp/samplers/metrics.h"
#include "nsamp/samplers/sample_distances.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

TEST_CASE("assignment: optimal against enumeration on tiny problems - both starts" *
          doctest::test_suite("cpu")) {
  Context host(Device::cpu(), 3);
  for (std::int64_t n = 1; n <= 7; ++n)
    for (int rep = 0; rep < 20; ++rep) {
      CAPTURE(n);
      CAPTURE(rep);
      Tensor t = test::randn(Shape{n, n}, DType::F64, Device::cpu(), host, 100 * n + rep, 2.0);
      std::vector<double> c = t.to_vector<double>(host);
      if (rep % 3 == 0)
        for (double& v : c) v = std::round(v);  // ties and negative costs
      std::vector<int> perm(static_cast<std::size_t>(n));
      std::iota(perm.begin(), perm.end(), 0);
      double best = INFINITY;
      do {
        double sum = 0;
        for (std::int64_t i = 0; i < n; ++i) sum += c[std::size_t(i * n + perm[i])];
        best = std::min(best, sum);
      } while (std::next_permutation(perm.begin(), perm.end()));
      for (s::AssignmentStart st : {s::AssignmentStart::Auction, s::AssignmentStart::Reductions}) {
        const s::Assignment a = s::solve_assignment(c.data(), n, st);
        CHECK(a.cost == doctest::Approx(best).epsilon(1e-12));
        CHECK(std::abs(s::assignment_duality_gap(c.data(), n, a)) < 1e-9);
      }
    }
}

TEST_CASE("assignment: Euclidean costs - auction start and reductions agree and certify" *
          doctest::test_suite("cpu")) {
  Context host(Device::cpu(), 5);
  for (std::int64_t d : {1, 2, 10}) {
    const std::int64_t n = 300;
    const std::vector<double> x =
        test::randn(Shape{n, d}, DType::F64, Device::cpu(), host, 1 + d).to_vector<double>(host);
    const std::vector<double> y =
        test::randn(Shape{n, d}, DType::F64, Device::cpu(), host, 2 + d, 1.0, 0.5).to_vector<double>(host);
    std::vector<float> c(std::size_t(n * n));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (std::int64_t q = 0; q < d; ++q)
          sum += (x[i * d + q] - y[j * d + q]) * (x[i * d + q] - y[j * d + q]);
        c[std::size_t(i * n + j)] = float(sum);
      }
    const s::Assignment a = s::solve_assignment(c.data(), n, s::AssignmentStart::Auction);
    const s::Assignment b = s::solve_assignment(c.data(), n, s::AssignmentStart::Reductions);
    CAPTURE(d);
    CHECK(a.cost == doctest::Approx(b.cost).epsilon(1e-12));
    CHECK(std::abs(s::assignment_duality_gap(c.data(), n, a)) < 1e-9 * a.cost);
    CHECK(std::abs(s::assignment_duality_gap(c.data(), n, b)) < 1e-9 * b.cost);
    // A deliberately poor matching has a positive gap: the certificate can fail.
    s::Assignment bad = a;
    std::swap(bad.col_of_row[0], bad.col_of_row[1]);
    std::swap(bad.col_of_row[2], bad.col_of_row[5]);
    CHECK(s::assignment_duality_gap(c.data(), n, bad) > 0);
  }
  const std::vector<double> nan_cost = {0, 1, NAN, 2};
  CHECK_THROWS_WITH_AS(s::solve_assignment(nan_cost.data(), 2), doctest::Contains("cost[1][0]"), Error);
}

NSAMP_DEVICE_TEST("x-W2: exact on 1-D sets and near the Gaussian closed form") {
  Context ctx(dev);
  // In 1-D the optimal matching pairs sorted values: the 1-D quantile W2 is exact for equal sizes.
  const std::int64_t n = 500;
  const Tensor a = test::randn(Shape{n, 1}, DType::F64, dev, ctx, 11);
  const Tensor b = test::randn(Shape{n, 1}, DType::F64, dev, ctx, 12, 2.0, 1.0);
  const s::W2Result r = s::exact_w2(a, b, ctx);
  CHECK(r.n == n);
  CHECK(r.w2_squared == doctest::Approx(s::metrics::wasserstein2_squared_1d(test::to_doubles(a, ctx),
                                                                            test::to_doubles(b, ctx)))
                            .epsilon(1e-12));
  CHECK(std::abs(r.duality_gap) < 1e-9);
  // Gelbrich bound: W2^2 between any two distributions is at least that between the Gaussians with the same
  // means and covariances, |dm|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2 (in 2-D the last trace is
  // sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2))). For Gaussian samples the excess is the finite-sample part only,
  // of order log(n) / n in 2-D. Population value here: |m|^2 + d (1 - s)^2 = 2 * 1.5^2 + 2 * 0.5^2 = 5.
  const std::int64_t m = 2000;
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x = test::randn(Shape{m, 2}, dt, dev, ctx, 21);
    const Tensor y = test::randn(Shape{m, 2}, dt, dev, ctx, 22, 1.5, 1.5);
    const s::W2Result g = s::exact_w2(x, y, ctx);
    auto moments = [&](const Tensor& t, double mean[2], double cov[3]) {
      const std::vector<double> v = test::to_doubles(t, ctx);
      mean[0] = mean[1] = cov[0] = cov[1] = cov[2] = 0;
      for (std::int64_t i = 0; i < m; ++i) {
        mean[0] += v[2 * i] / double(m);
        mean[1] += v[2 * i + 1] / double(m);
      }
      for (std::int64_t i = 0; i < m; ++i) {
        const double p = v[2 * i] - mean[0], q = v[2 * i + 1] - mean[1];
        cov[0] += p * p / double(m);
        cov[1] += p * q / double(m);
        cov[2] += q * q / double(m);
      }
    };
    double m1[2], c1[3], m2[2], c2[3];
    moments(x, m1, c1);
    moments(y, m2, c2);
    const double tr12 = c1[0] * c2[0] + 2 * c1[1] * c2[1] + c1[2] * c2[2];
    const double det1 = c1[0] * c1[2] - c1[1] * c1[1], det2 = c2[0] * c2[2] - c2[1] * c2[1];
    const double gelbrich = (m1[0] - m2[0]) * (m1[0] - m2[0]) + (m1[1] - m2[1]) * (m1[1] - m2[1]) + c1[0] +
                            c1[2] + c2[0] + c2[2] - 2 * std::sqrt(tr12 + 2 * std::sqrt(det1 * det2));
    CAPTURE(gelbrich);
    CHECK(gelbrich == doctest::Approx(5.0).epsilon(0.1));
    CHECK(g.w2_squared >= gelbrich - 1e-9);
    CHECK(g.w2_squared - gelbrich < 0.05);
    CHECK(g.w2 == doctest::Approx(std::sqrt(g.w2_squared)).epsilon(1e-15));
    CHECK(std::abs(g.duality_gap) < 1e-6);
    // Forced at this size, the device auction's start reaches the same optimum (float32 costs may tie
    // between matchings whose float64 re-sums differ in the last digits).
    CHECK(g.auction_rounds == 0);
    const s::W2Result ga = s::exact_w2(x, y, ctx, 0);
    CHECK(ga.w2_squared == doctest::Approx(g.w2_squared).epsilon(dt == DType::F32 ? 1e-6 : 1e-12));
    CHECK((ga.auction_rounds > 0) == dev.is_cuda());
  }
  // The same set against itself: the identity matching, W2 = 0.
  const Tensor x = test::randn(Shape{300, 3}, DType::F64, dev, ctx, 31);
  CHECK(s::exact_w2(x, x, ctx).w2 == 0.0);
  const Tensor y4 = test::randn(Shape{300, 4}, DType::F64, dev, ctx, 32);
  CHECK_THROWS_WITH_AS(s::exact_w2(x, y4, ctx), doctest::Contains("dimension mismatch"), Error);
  const Tensor short_set = test::randn(Shape{299, 3}, DType::F64, dev, ctx, 33);
  CHECK_THROWS_WITH_AS(s::exact_w2(x, short_set, ctx), doctest::Contains("equal set sizes"), Error);
}

NSAMP_DEVICE_TEST("Sinkhorn: approaches exact OT as epsilon shrinks - divergence near W2 squared") {
  Context ctx(dev);
  const std::int64_t n = 60;
  const Tensor x = test::randn(Shape{n, 2}, DType::F64, dev, ctx, 41);
  const Tensor y = test::randn(Shape{n, 2}, DType::F64, dev, ctx, 42, 1.0, 0.7);
  // Exact OT with the Euclidean ground cost (the sde_sampler convention's cost), by the assignment solver.
  const std::vector<double> hx = test::to_doubles(x, ctx), hy = test::to_doubles(y, ctx);
  std::vector<double> c(std::size_t(n * n));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      c[std::size_t(i * n + j)] = std::hypot(hx[2 * i] - hy[2 * j], hx[2 * i + 1] - hy[2 * j + 1]);
  const double exact = s::solve_assignment(c.data(), n).cost / double(n);
  s::SinkhornOptions o;
  o.max_iters = 20000;
  o.tol = 1e-9;
  double prev_gap = INFINITY;
  for (double eps :
       {1.0, 0.3, 0.1}) {  // smaller eps converge too slowly for a unit test (C / eps iterations)
    CAPTURE(eps);
    o.eps = eps;
    const s::SinkhornResult r = s::sinkhorn(x, y, o, ctx);
    CHECK(r.converged);
    // 0 <= <P_eps, C> - OT <= eps (H(P_eps) - H(P*)) <= eps log n for uniform marginals and a permutation P*.
    const double gap = r.value - exact;
    CHECK(gap > -1e-9);
    CHECK(gap < eps * std::log(double(n)));
    CHECK(gap < prev_gap);
    prev_gap = gap;
  }
  // The published convention stops at 100 iterations and reports whether it met tol.
  const s::SinkhornResult pub =
      s::sinkhorn(x, y, s::SinkhornOptions::defaults_for(s::SinkhornConvention::SdeSampler), ctx);
  CHECK(pub.iterations <= 100);
  // Divergence: 0 for a set with itself; positive and close to W2^2 (squared-Euclidean OT) at moderate eps.
  s::SinkhornOptions dv = s::SinkhornOptions::defaults_for(s::SinkhornConvention::SinkhornDivergence);
  dv.eps = 0.3;
  dv.relative_eps = false;
  dv.tol = 1e-7;
  dv.max_iters = 20000;
  CHECK(std::abs(s::sinkhorn(x, x, dv, ctx).value) < 1e-12);
  const double w2sq = s::exact_w2(x, y, ctx).w2_squared;
  const s::SinkhornResult sd = s::sinkhorn(x, y, dv, ctx);
  CHECK(sd.converged);
  CHECK(sd.value == doctest::Approx(w2sq).epsilon(0.1));  // measured 3.6% low at eps = 0.3: an O(eps) bias
  CHECK(sd.value == doctest::Approx(w2sq).epsilon(0.05));
  // The published convention's epsilon is relative: 0.05 x the mean squared distance between the sets
  // (float64 reference), and the same relative epsilon gives the same divergence for rescaled data (the
  // value scales with the cost, the plan does not change).
  double mean_c = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      const double a = hx[2 * i] - hy[2 * j], b = hx[2 * i + 1] - hy[2 * j + 1];
      mean_c += (a * a + b * b) / double(n * n);
    }
  const s::SinkhornOptions pubd = s::SinkhornOptions::defaults_for(s::SinkhornConvention::SinkhornDivergence);
  const s::SinkhornResult r1 = s::sinkhorn(x, y, pubd, ctx);
  CHECK(r1.eps == doctest::Approx(0.05 * mean_c).epsilon(1e-12));
  CHECK(r1.converged);
  CHECK(r1.value > 0);
  s::SinkhornOptions absd = pubd;
  absd.relative_eps = false;
  absd.eps = r1.eps;
  CHECK(s::sinkhorn(x, y, absd, ctx).value == doctest::Approx(r1.value).epsilon(1e-12));
  Tensor x3 = test::from_doubles(hx, Shape{n, 2}, DType::F64, dev, ctx),
         y3 = test::from_doubles(hy, Shape{n, 2}, DType::F64, dev, ctx);
  kernels::affine(x3, 3.0, 0.0, x3, ctx);
  kernels::affine(y3, 3.0, 0.0, y3, ctx);
  s::SinkhornOptions tight = pubd;
  tight.tol = 1e-9;
  tight.max_iters = 20000;
  const double v1 = s::sinkhorn(x, y, tight, ctx).value, v3 = s::sinkhorn(x3, y3, tight, ctx).value;
  CHECK(v3 == doctest::Approx(9.0 * v1).epsilon(1e-6));
}

NSAMP_DEVICE_TEST("MMD: median bandwidth and the published estimator - float64 transcription") {
  Context ctx(dev);
  const std::int64_t N = 40, M = 30, d = 3;
  const Tensor x = test::randn(Shape{N, d}, DType::F64, dev, ctx, 51);
  const Tensor y = test::randn(Shape{M, d}, DType::F64, dev, ctx, 52, 1.3, 0.4);
  const std::vector<double> hx = test::to_doubles(x, ctx), hy = test::to_doubles(y, ctx);
  std::vector<double> z(hx);
  z.insert(z.end(), hy.begin(), hy.end());
  const std::int64_t T = N + M;
  auto dist = [&](const std::vector<double>& a, std::int64_t i, const std::vector<double>& b,
                  std::int64_t j) {
    double sum = 0;
    for (std::int64_t q = 0; q < d; ++q) sum += (a[i * d + q] - b[j * d + q]) * (a[i * d + q] - b[j * d + q]);
    return std::sqrt(sum);
  };
  std::vector<double> tri;
  for (std::int64_t i = 0; i < T; ++i)
    for (std::int64_t j = i; j < T; ++j) tri.push_back(dist(z, i, z, j));
  std::sort(tri.begin(), tri.end());
  const std::size_t h = tri.size() / 2;
  const double bw = tri.size() % 2 ? tri[h] : 0.5 * (tri[h - 1] + tri[h]);
  auto ksum = [&](const std::vector<double>& a, std::int64_t na, const std::vector<double>& b,
                  std::int64_t nb) {
    double sum = 0;
    for (std::int64_t i = 0; i < na; ++i)
      for (std::int64_t j = 0; j < nb; ++j) sum += std::exp(-std::pow(dist(a, i, b, j) / bw, 2) / 2);
    return sum;
  };
  const double mmd2 = ksum(hx, N, hx, N) / double(N * (N - 1)) + ksum(hy, M, hy, M) / double(M * (M - 1)) -
                      2 * ksum(hx, N, hy, M) / double(N * M);
  const s::MmdResult r = s::mmd_median(x, y, ctx);
  CHECK(r.bandwidth == doctest::Approx(bw).epsilon(1e-12));
  CHECK(r.mmd == doctest::Approx(std::sqrt(std::max(1e-20, mmd2))).epsilon(1e-10));
  // Further apart -> larger MMD.
  const Tensor far = test::randn(Shape{M, d}, DType::F64, dev, ctx, 52, 1.3, 3.0);
  CHECK(s::mmd_median(x, far, ctx).mmd > r.mmd);
}
