// iDEM's Monte Carlo noisy score (Target::mc_score): against a float64 evaluation of the same draws on every
// kind of target (mixture, Many-Well, a pair system with per-particle clipping, a user functor, a host
// callback), fewer and more samples than a CUDA block has threads; on a Gaussian, against the closed-form
// noisy score and log density with the error shrinking like 1/sqrt(K).
#include <cmath>

#include "nsamp/core/fill.h"
#include "nsamp/targets/target.h"
#include "test_energies.h"
#include "test_util.h"

using namespace nsamp;

namespace {

struct Estimate {
  std::vector<double> score, log_p;
};

// The float64 reference: the same normal draws ([B K, d] at counter 0 of `seed`, in x's dtype), y = x +
// sigma eps, softmax(-E) weights, clip as in kernels::mc_score_finish.
Estimate reference(const targets::Target& t, const std::vector<double>& x, const std::vector<double>& sigma,
                   std::int64_t K, double clip, DType dt, std::uint64_t seed) {
  const std::int64_t B = std::int64_t(sigma.size()), d = t.dim();
  Context host(Device::cpu(), seed);
  Tensor eps = Tensor::empty(Shape{B * K, d}, dt, host);
  fill_normal_at(eps, seed, 0, host);
  std::vector<double> y = eps.to_doubles(host);
  for (std::int64_t r = 0; r < B * K; ++r)
    for (std::int64_t j = 0; j < d; ++j)
      y[std::size_t(r * d + j)] =
          x[std::size_t((r / K) * d + j)] + sigma[std::size_t(r / K)] * y[std::size_t(r * d + j)];
  Tensor Y = Tensor::from_vector(y, Shape{B * K, d}, Device::cpu(), host),
         E = Tensor::empty(Shape{B * K}, DType::F64, host),
         G = Tensor::empty(Shape{B * K, d}, DType::F64, host);
  t.energy_and_grad(Y, E, G, host);
  const std::vector<double> e = E.to_doubles(host), g = G.to_doubles(host);
  const int pd = t.particles().spatial;
  Estimate out{std::vector<double>(std::size_t(B * d), 0.0), std::vector<double>(std::size_t(B), 0.0)};
  for (std::int64_t b = 0; b < B; ++b) {
    double m = -INFINITY;
    for (std::int64_t k = 0; k < K; ++k) m = std::max(m, -e[std::size_t(b * K + k)]);
    double s = 0;
    for (std::int64_t k = 0; k < K; ++k) {
      const double w = std::exp(-e[std::size_t(b * K + k)] - m);
      s += w;
      for (std::int64_t j = 0; j < d; ++j)
        out.score[std::size_t(b * d + j)] -= w * g[std::size_t((b * K + k) * d + j)];
    }
    const std::int64_t group = pd > 0 ? pd : d;
    for (std::int64_t j = 0; j < d; ++j) out.score[std::size_t(b * d + j)] /= s;
    for (std::int64_t g0 = 0; clip > 0 && g0 < d; g0 += group) {
      double n2 = 0;
      for (std::int64_t j = g0; j < g0 + group; ++j) n2 += std::pow(out.score[std::size_t(b * d + j)], 2);
      const double c = clip / (std::sqrt(n2) + 1e-6);
      if (c < 1)
        for (std::int64_t j = g0; j < g0 + group; ++j) out.score[std::size_t(b * d + j)] *= c;
    }
    out.log_p[std::size_t(b)] = m + std::log(s) - std::log(double(K));
  }
  return out;
}

// sigma per point uniform in [lo, hi).
std::vector<double> sigmas(std::int64_t B, double lo, double hi) {
  Context host(Device::cpu(), 17);
  Tensor u = Tensor::empty(Shape{B}, DType::F64, host);
  fill_uniform(u, host);
  std::vector<double> s = u.to_doubles(host);
  for (double& v : s) v = lo + (hi - lo) * v;
  return s;
}

}  // namespace

NSAMP_DEVICE_TEST("mc_score: S_K and log p~ match a float64 evaluation of the same draws") {
  const targets::FunctorTarget<test::QuarticWells> quartic("quartic", 3, test::QuarticWells{});
  const targets::CallbackTarget callback = test::quartic_callback();
  auto gmm = targets::make_target("gmm40"), mw = targets::make_target("manywell32"),
       lj = targets::make_target("lj13");
  struct Case {
    const targets::Target* t;
    DType dt;
    std::int64_t K;
    double lo, hi, clip;
  };
  const Case cases[] = {
      {gmm.get(), DType::F64, 64, 0.5, 8.0, 0},     {gmm.get(), DType::F64, 300, 0.5, 8.0, 1.0},
      {gmm.get(), DType::F32, 300, 0.5, 8.0, 0},    {mw.get(), DType::F64, 200, 0.1, 1.0, 5.0},
      {lj.get(), DType::F64, 150, 0.01, 0.1, 20.0}, {&quartic, DType::F64, 100, 0.2, 1.0, 0},
      {&callback, DType::F64, 100, 0.2, 1.0, 0.5}};
  for (const Case& k : cases) {
    const bool host_only = k.t == &quartic || k.t == &callback;
    if (host_only && dev.is_cuda()) continue;  // compiled by the host compiler: CPU only
    CAPTURE(k.t->name());
    CAPTURE(dtype_name(k.dt));
    CAPTURE(k.K);
    const std::int64_t B = 37, d = k.t->dim();
    Context c0(Device::cpu(), 1);
    const std::vector<double> x = test::start_points(*k.t, B, c0), sg = sigmas(B, k.lo, k.hi);
    Context ctx(dev, 23);  // fresh: the estimate's draws start at counter 0
    Tensor X = test::from_doubles(x, Shape{B, d}, k.dt, dev, ctx),
           S = test::from_doubles(sg, Shape{B}, k.dt, dev, ctx);
    Tensor score = Tensor::empty(Shape{B, d}, k.dt, ctx), log_p = Tensor::empty(Shape{B}, k.dt, ctx);
    k.t->mc_score(X, S, k.K, k.clip, score, &log_p, ctx);
    // The reference sees the points and sigmas as rounded to x's dtype.
    const Estimate ref =
        reference(*k.t, test::to_doubles(X, ctx), test::to_doubles(S, ctx), k.K, k.clip, k.dt, 23);
    const double tol = k.dt == DType::F64 ? 1e-9 : 2e-3;
    test::check_close(test::to_doubles(score, ctx), ref.score, tol, tol, "score");
    test::check_close(test::to_doubles(log_p, ctx), ref.log_p, tol, tol, "log p~");
    if (k.clip > 0) {
      const std::vector<double> sv = test::to_doubles(score, ctx);
      const int group = k.t->particles().spatial > 0 ? k.t->particles().spatial : int(d);
      for (std::size_t g0 = 0; g0 < sv.size(); g0 += std::size_t(group)) {
        double n2 = 0;
        for (int j = 0; j < group; ++j) n2 += sv[g0 + std::size_t(j)] * sv[g0 + std::size_t(j)];
        CHECK(std::sqrt(n2) <= k.clip * (1 + 1e-5));
      }
    }
  }
}

TEST_CASE("mc_score: on a Gaussian S_K tends to the closed-form noisy score like 1/sqrt(K)" *
          doctest::test_suite("cpu")) {
  // E = |y|^2 / 2 in d = 3: p_sigma = N(0, (1 + sigma^2) I), score -x / (1 + sigma^2), and
  // log(Z p_sigma(x)) = -(d/2) log(1 + sigma^2) - |x|^2 / (2 (1 + sigma^2)).
  auto g = targets::make_target("gaussian", {3});
  const std::int64_t B = 2000, d = 3;
  const double sigma = 1.0, v = 1 + sigma * sigma;
  Context ctx(Device::cpu(), 3);
  const Tensor X = test::randn(Shape{B, d}, DType::F64, Device::cpu(), ctx, 4, 1.5);
  const Tensor S =
      test::from_doubles(std::vector<double>(B, sigma), Shape{B}, DType::F64, Device::cpu(), ctx);
  const std::vector<double> x = X.to_doubles(ctx);
  std::vector<double> rmse, lp_err;
  for (std::int64_t K : {16, 256, 4096}) {
    Tensor score = Tensor::empty(Shape{B, d}, DType::F64, ctx),
           log_p = Tensor::empty(Shape{B}, DType::F64, ctx);
    g->mc_score(X, S, K, 0.0, score, &log_p, ctx);
    const std::vector<double> s = score.to_doubles(ctx), lp = log_p.to_doubles(ctx);
    double se = 0, le = 0;
    for (std::int64_t b = 0; b < B; ++b) {
      double r2 = 0;
      for (std::int64_t j = 0; j < d; ++j) {
        const double xj = x[std::size_t(b * d + j)];
        r2 += xj * xj;
        se += std::pow(s[std::size_t(b * d + j)] + xj / v, 2);
      }
      le += lp[std::size_t(b)] - (-(d / 2.0) * std::log(v) - r2 / (2 * v));
    }
    rmse.push_back(std::sqrt(se / double(B * d)));
    lp_err.push_back(le / double(B));
    MESSAGE("K = " << K << ": score RMSE " << rmse.back() << ", mean log p~ error " << lp_err.back());
  }
  // 16x the samples: 4x smaller error, within sampling noise.
  for (int i = 0; i + 1 < 3; ++i) {
    CHECK(rmse[std::size_t(i)] / rmse[std::size_t(i + 1)] > 2.5);
    CHECK(rmse[std::size_t(i)] / rmse[std::size_t(i + 1)] < 6.5);
  }
  CHECK(std::abs(lp_err[2]) < 0.01);  // log of an unbiased estimate: bias -Var/(2K) -> 0
  Tensor score = Tensor::empty(Shape{B, d}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(g->mc_score(X, S, 0, 0.0, score, nullptr, ctx), doctest::Contains("K must be"), Error);
  CHECK_THROWS_WITH_AS(g->mc_score(X, S.slice_rows(0, 5), 8, 0.0, score, nullptr, ctx),
                       doctest::Contains("sigma and log_p"), Error);
}
