// EGNN (samplers/egnn.h) and the mean-free projection: E(n) equivariance in float64 (rotations, reflections,
// translations, permutations) to 1e-10, gradients against float64 finite differences, and the CUDA path
// against the CPU path.
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "nsamp/core/fill.h"
#include "nsamp/samplers/egnn.h"
#include "test_util.h"

using namespace nsamp;
using ag::Tape;
using ag::Var;

namespace {

// A random orthogonal D x D matrix (Gram-Schmidt of a Gaussian matrix); reflect flips its determinant.
std::vector<double> random_orthogonal(int D, bool reflect, Context& ctx, std::uint64_t seed) {
  std::vector<double> q =
      test::to_doubles(test::randn(Shape{D, D}, DType::F64, Device::cpu(), ctx, seed), ctx);
  for (int a = 0; a < D; ++a) {
    for (int b = 0; b < a; ++b) {
      double dot = 0;
      for (int k = 0; k < D; ++k) dot += q[std::size_t(a * D + k)] * q[std::size_t(b * D + k)];
      for (int k = 0; k < D; ++k) q[std::size_t(a * D + k)] -= dot * q[std::size_t(b * D + k)];
    }
    double nrm = 0;
    for (int k = 0; k < D; ++k) nrm += q[std::size_t(a * D + k)] * q[std::size_t(a * D + k)];
    for (int k = 0; k < D; ++k) q[std::size_t(a * D + k)] /= std::sqrt(nrm);
  }
  if (reflect)
    for (int k = 0; k < D; ++k) q[std::size_t(k)] = -q[std::size_t(k)];
  return q;
}

// Rows [B, n D]: y_i = Q x_{perm(i)} + shift.
std::vector<double> transform(const std::vector<double>& x, int B, int n, int D, const std::vector<double>& Q,
                              const std::vector<int>& perm, const std::vector<double>& shift) {
  std::vector<double> y(x.size());
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < n; ++i)
      for (int a = 0; a < D; ++a) {
        double s = shift[std::size_t(a)];
        for (int k = 0; k < D; ++k)
          s += Q[std::size_t(a * D + k)] * x[std::size_t((b * n + perm[std::size_t(i)]) * D + k)];
        y[std::size_t((b * n + i) * D + a)] = s;
      }
  return y;
}

void randomise(std::vector<Var> params, Context& ctx, double std) {
  for (Var& p : params) fill_normal(p.mutable_value(), ctx, 0.0, std);
}

std::vector<double> run(const samplers::Egnn& net, const std::vector<double>& x, const std::vector<double>& t,
                        int B, Device dev, DType dt, Context& ctx) {
  Tape tp(ctx);
  ag::NoGrad ng(tp);
  const std::int64_t d = std::int64_t(net.particles().n) * net.particles().spatial;
  const Var xv = Var::leaf(test::from_doubles(x, Shape{B, d}, dt, dev, ctx));
  const Var tv = t.empty() ? Var() : Var::leaf(test::from_doubles(t, Shape{B, 1}, dt, dev, ctx));
  return test::to_doubles(net.forward(tp, tv, xv).value(), ctx);
}

}  // namespace

TEST_CASE("egnn: equivariant to rotations - reflections - translations and permutations" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 21);
  struct Case {
    int n, D;
    samplers::EgnnConfig::Output out;
    bool time;
    ag::Activation act;
  };
  const Case cases[] = {{4, 2, samplers::EgnnConfig::Output::Displacement, true, ag::Activation::SiLU},
                        {5, 3, samplers::EgnnConfig::Output::Displacement, true, ag::Activation::ReLU},
                        {4, 2, samplers::EgnnConfig::Output::Position, false, ag::Activation::ReLU},
                        {6, 3, samplers::EgnnConfig::Output::Position, true, ag::Activation::SiLU}};
  std::uint64_t seed = 100;
  for (const Case& c : cases) {
    CAPTURE(c.n);
    CAPTURE(c.D);
    samplers::EgnnConfig cfg;
    cfg.hidden = 16;
    cfg.layers = 3;
    cfg.act = c.act;
    cfg.output = c.out;
    samplers::Egnn net({c.n, c.D}, cfg, DType::F64, ctx);
    randomise(net.parameters(), ctx, 0.3);  // the 0.001-gain coordinate layers would make any output tiny
    const int B = 3, d = c.n * c.D;
    const std::vector<double> x =
        test::to_doubles(test::randn(Shape{B, d}, DType::F64, Device::cpu(), ctx, ++seed, 1.5), ctx);
    const std::vector<double> t = c.time ? std::vector<double>{0.1, 0.5, 0.9} : std::vector<double>{};
    for (bool fused : {true, false}) {  // the fused no-grad pass and the composed ops
      CAPTURE(fused);
      net.set_fused(fused);
      const std::vector<double> y = run(net, x, t, B, Device::cpu(), DType::F64, ctx);
      double scale = 0;
      for (double v : y) scale = std::max(scale, std::abs(v));
      REQUIRE(scale > 1e-2);  // a non-trivial map, so that the checks below can fail
      // Mean-free output.
      for (int b = 0; b < B; ++b)
        for (int a = 0; a < c.D; ++a) {
          double s = 0;
          for (int i = 0; i < c.n; ++i) s += y[std::size_t((b * c.n + i) * c.D + a)];
          CHECK(std::abs(s) < 1e-12 * scale * c.n);
        }
      std::vector<int> perm(std::size_t(c.n)), id(std::size_t(c.n));
      std::iota(perm.begin(), perm.end(), 0);
      std::iota(id.begin(), id.end(), 0);
      std::rotate(perm.begin(), perm.begin() + 1, perm.end());
      std::swap(perm[0], perm[std::size_t(c.n - 1)]);
      const std::vector<double> shift =
          test::to_doubles(test::randn(Shape{c.D}, DType::F64, Device::cpu(), ctx, ++seed, 3.0), ctx);
      const std::vector<double> zero(std::size_t(c.D), 0.0);
      for (bool reflect : {false, true}) {
        CAPTURE(reflect);
        const std::vector<double> Q = random_orthogonal(c.D, reflect, ctx, ++seed);
        const std::vector<double> got =
            run(net, transform(x, B, c.n, c.D, Q, perm, shift), t, B, Device::cpu(), DType::F64, ctx);
        test::check_close(got, transform(y, B, c.n, c.D, Q, perm, zero), 0, 1e-10 * scale, "E(n) x S_n");
      }
    }
  }
}

TEST_CASE("egnn: gradients in parameters and inputs (fused and composed) match float64 finite differences" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 22);
  for (bool fused : {true, false})
    for (auto out : {samplers::EgnnConfig::Output::Displacement, samplers::EgnnConfig::Output::Position}) {
      CAPTURE(fused);
      samplers::EgnnConfig cfg;
      cfg.hidden = 5;
      cfg.layers = 2;
      cfg.output = out;
      cfg.impl = fused ? samplers::EgnnConfig::Impl::Fused : samplers::EgnnConfig::Impl::Composed;
      samplers::Egnn net({3, 2}, cfg, DType::F64, ctx);
      randomise(net.parameters(), ctx, 0.4);
      const Var x = Var::leaf(test::randn(Shape{2, 6}, DType::F64, Device::cpu(), ctx, 5, 1.2), true, "x");
      const Var t =
          Var::leaf(test::from_doubles({0.2, 0.7}, Shape{2, 1}, DType::F64, Device::cpu(), ctx), true, "t");
      std::vector<Var> wrt = net.parameters();
      wrt.push_back(x);
      wrt.push_back(t);
      const auto f = [&](Tape& tp) { return net.forward(tp, t, x); };
      Tape tp(ctx);
      const Var y = f(tp);
      const Tensor w = test::randn(y.shape(), DType::F64, Device::cpu(), ctx, 9);
      const std::vector<double> wv = test::to_doubles(w, ctx);
      const std::vector<Tensor> grads = tp.gradients(y, wrt, w);
      auto objective = [&]() {
        Tape t2(ctx);
        ag::NoGrad ng(t2);
        const std::vector<double> v = test::to_doubles(f(t2).value(), ctx);
        double s = 0;
        for (std::size_t i = 0; i < v.size(); ++i) s += wv[i] * v[i];
        return s;
      };
      for (std::size_t k = 0; k < wrt.size(); ++k) {
        CAPTURE(wrt[k].name());
        REQUIRE(grads[k].defined());
        const std::vector<double> analytic = test::to_doubles(grads[k], ctx);
        std::vector<double> numeric(analytic.size());
        double* v = wrt[k].mutable_value().data<double>();
        for (std::size_t j = 0; j < numeric.size(); ++j) {
          const double keep = v[j], h = 1e-6;
          v[j] = keep + h;
          const double up = objective();
          v[j] = keep - h;
          const double down = objective();
          v[j] = keep;
          numeric[j] = (up - down) / (2 * h);
        }
        double scale = 0;
        for (double g : numeric) scale = std::max(scale, std::abs(g));
        test::check_close(analytic, numeric, 0, 1e-6 * std::max(scale, 1e-3), wrt[k].name());
      }
    }
}

NSAMP_DEVICE_TEST("egnn: the fused no-grad forward equals the composed ops") {
  // kernels::egnn_pairs (CPU: a thread per group of samples, edges in chunks of up to 256 rows; CUDA: a block
  // per sample, edge tiles in shared memory) against the differentiable ops in float64 on the CPU; widths
  // below, at and above a warp, tiles that end mid-particle (n (n - 1) not a multiple of the tile), CPU
  // groups that end part-way (2200 samples of 12 edges in groups of 21) and a sample whose 380 edges span two
  // chunks, attention and tanh on and off.
  Context ctx(dev, 26);
  Context host(Device::cpu(), 26);
  struct Case {
    int n, D;
    std::int64_t H;
    bool attention, tanh;
    samplers::EgnnConfig::Output out;
    int B;
  };
  // The first case has more samples than the CUDA forward's blocks (each block then takes several).
  const Case cases[] = {{4, 2, 20, true, true, samplers::EgnnConfig::Output::Displacement, 2200},
                        {13, 3, 32, true, true, samplers::EgnnConfig::Output::Position, 5},
                        {5, 3, 40, false, false, samplers::EgnnConfig::Output::Displacement, 5},
                        {7, 2, 16, true, false, samplers::EgnnConfig::Output::Position, 5},
                        {20, 3, 24, true, true, samplers::EgnnConfig::Output::Displacement, 3}};
  std::uint64_t seed = 300;
  // The CPU runs both dtypes: float32 goes through the vectorised activation loops, float64 does not.
  const std::vector<DType> dtypes =
      dev.is_cuda() ? std::vector<DType>{DType::F32} : std::vector<DType>{DType::F64, DType::F32};
  for (const DType dt : dtypes)
    for (const Case& c : cases) {
      CAPTURE(c.n);
      CAPTURE(c.H);
      CAPTURE(dtype_name(dt));
      samplers::EgnnConfig cfg;
      cfg.hidden = c.H;
      cfg.layers = 3;
      cfg.attention = c.attention;
      cfg.tanh = c.tanh;
      cfg.output = c.out;
      samplers::Egnn ref(targets::Particles{c.n, c.D}, cfg, DType::F64, host),
          net(targets::Particles{c.n, c.D}, cfg, dt, ctx);
      randomise(ref.parameters(), host, 0.15);
      std::vector<Var> pr = ref.parameters(), pn = net.parameters();
      for (std::size_t k = 0; k < pr.size(); ++k)
        pn[k].mutable_value() =
            test::from_doubles(test::to_doubles(pr[k].value(), host), pr[k].shape(), dt, dev, ctx);
      const int B = c.B;
      const std::vector<double> x = test::to_doubles(
          test::randn(Shape{B, c.n * c.D}, DType::F64, Device::cpu(), host, ++seed, 1.5), host);
      std::vector<double> t(static_cast<std::size_t>(B));
      for (int b = 0; b < B; ++b) t[std::size_t(b)] = 0.1 + 0.2 * double(b % 5);
      ref.set_fused(false);
      const std::vector<double> want = run(ref, x, t, B, Device::cpu(), DType::F64, host);
      const std::vector<double> got = run(net, x, t, B, dev, dt, ctx);
      double scale = 0;
      for (double v : want) scale = std::max(scale, std::abs(v));
      REQUIRE(scale > 1e-3);
      test::check_close(got, want, 0, (dt == DType::F32 ? 1e-5 : 1e-12) * scale, "fused forward");
    }
}

TEST_CASE("egnn: structure - initial scale and bad input" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 23);
  samplers::EgnnConfig cfg;  // 3 x 128, SiLU, the spec's initialisation
  samplers::Egnn net({4, 2}, cfg, DType::F32, ctx, "score");
  // embed (2) + 3 layers x (edge1, edge2, att, coord1: 2 each; coord2: 1) + 2 node MLPs x 4.
  CHECK(net.parameters().size() == 2 + 3 * 9 + 2 * 4);
  CHECK(net.parameters()[2].name() == "score.layers.0.edge1.weight");
  CHECK(net.parameters()[2].shape() == Shape{128, 258});
  // The 0.001-gain last coordinate layer keeps the initial displacement small next to the input.
  const std::vector<double> x =
      test::to_doubles(test::randn(Shape{8, 8}, DType::F64, Device::cpu(), ctx, 3, 2.0), ctx);
  const std::vector<double> y = run(net, x, std::vector<double>(8, 0.5), 8, Device::cpu(), DType::F32, ctx);
  double m = 0;
  for (double v : y) m = std::max(m, std::abs(v));
  CHECK(m > 0);
  CHECK(m < 0.2);
  Tape tp(ctx);
  CHECK_THROWS_WITH_AS(
      net.forward(tp, Var(), Var::leaf(test::randn(Shape{2, 6}, DType::F32, Device::cpu(), ctx, 1))),
      doctest::Contains("x must be [B, 8]"), Error);
  CHECK_THROWS_WITH_AS(net.forward(tp, Var::leaf(test::randn(Shape{3, 1}, DType::F32, Device::cpu(), ctx, 1)),
                                   Var::leaf(test::randn(Shape{2, 8}, DType::F32, Device::cpu(), ctx, 1))),
                       doctest::Contains("node feature must be [2, 1]"), Error);
  CHECK_THROWS_WITH_AS(samplers::Egnn({1, 3}, cfg, DType::F32, ctx),
                       doctest::Contains("at least 2 particles"), Error);
}

TEST_CASE("mean-free: the projection removes the centre of mass and keeps mean-free rows" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 24);
  const samplers::MeanFree mf({5, 3}, DType::F64, ctx);
  CHECK(mf.active());
  CHECK(mf.dof(15) == 12);
  Tensor x = test::randn(Shape{4, 15}, DType::F64, Device::cpu(), ctx, 2, 1.0, 0.7);
  const std::vector<double> x0 = test::to_doubles(x, ctx);
  mf.apply(x, ctx);
  const std::vector<double> x1 = test::to_doubles(x, ctx);
  for (int b = 0; b < 4; ++b)
    for (int a = 0; a < 3; ++a) {
      double mean = 0, s = 0;
      for (int i = 0; i < 5; ++i) mean += x0[std::size_t(b * 15 + i * 3 + a)] / 5;
      for (int i = 0; i < 5; ++i) {
        CHECK(x1[std::size_t(b * 15 + i * 3 + a)] ==
              doctest::Approx(x0[std::size_t(b * 15 + i * 3 + a)] - mean).epsilon(1e-12));
        s += x1[std::size_t(b * 15 + i * 3 + a)];
      }
      CHECK(std::abs(s) < 1e-12);
    }
  mf.apply(x, ctx);  // idempotent
  test::check_close(test::to_doubles(x, ctx), x1, 0, 1e-13, "P P x = P x");
  // The projected normal has (n - 1) D unit-variance directions: E|z|^2 = 12.
  Tensor z = Tensor::empty(Shape{20000, 15}, DType::F64, Device::cpu(), ctx);
  mf.fill_normal(z, ctx);
  const std::vector<double> zv = test::to_doubles(z, ctx);
  double s2 = 0;
  for (double v : zv) s2 += v * v;
  CHECK(s2 / 20000 == doctest::Approx(12.0).epsilon(0.02));  // std of the mean ~ sqrt(24 / 20000) / 12 = 0.3%
  const samplers::MeanFree off;
  CHECK_FALSE(off.active());
  CHECK(off.dof(7) == 7);
}

NSAMP_DEVICE_TEST("egnn: forward and backward (fused and composed) agree with the float64 composed ops") {
  // LJ-13 at width 32 in float32; then the kernels' edges: a width that leaves lanes idle and spans two
  // warps, pair tiles that end part-way (7 particles: 42 ordered pairs), more samples than the backward's
  // blocks (each block takes several); and the float64 kernels at the default width.
  struct Case {
    int n, D, B, hidden;
    DType dt;
  };
  for (const Case& k :
       {Case{13, 3, 6, 32, DType::F32}, Case{7, 3, 300, 40, DType::F32}, Case{13, 3, 4, 128, DType::F64}}) {
    CAPTURE(k.n);
    CAPTURE(k.B);
    CAPTURE(k.hidden);
    CAPTURE(dtype_name(k.dt));
    Context ctx(dev, 25);
    Context host(Device::cpu(), 25);
    samplers::EgnnConfig cfg;
    cfg.hidden = k.hidden;
    cfg.layers = 3;
    const int n = k.n, D = k.D, B = k.B;
    samplers::Egnn net(targets::Particles{n, D}, cfg, k.dt, ctx),
        ref(targets::Particles{n, D}, cfg, DType::F64, host);
    // The spec's initialisation but a larger last coordinate layer (its 0.001 gain would hide the coordinate
    // path's gradients); a well-conditioned map, so that float32 can be held to a tight tolerance.
    for (Var& p : net.parameters())
      if (p.name().find("coord2") != std::string::npos) fill_normal(p.mutable_value(), ctx, 0.0, 0.05);
    std::vector<Var> pn = net.parameters(), pr = ref.parameters();
    // The network's parameters, widened, in the float64 reference.
    for (std::size_t i = 0; i < pn.size(); ++i) {
      const std::vector<double> v = test::to_doubles(pn[i].value(), ctx);
      pr[i].mutable_value() = test::from_doubles(v, pn[i].shape(), DType::F64, Device::cpu(), host);
    }
    const std::vector<double> xv =
        test::to_doubles(test::randn(Shape{B, n * D}, DType::F64, Device::cpu(), host, 7, 1.5), host);
    std::vector<double> tv(static_cast<std::size_t>(B));
    for (int b = 0; b < B; ++b) tv[std::size_t(b)] = 0.1 + 0.9 * double(b % 6) / 5;
    const std::vector<double> wv =
        test::to_doubles(test::randn(Shape{B, n * D}, DType::F64, Device::cpu(), host, 8), host);
    auto grads = [&](const samplers::Egnn& m, Device dv, DType dt, Context& c) {
      const Var x = Var::leaf(test::from_doubles(xv, Shape{B, n * D}, dt, dv, c), true, "x");
      const Var t = Var::leaf(test::from_doubles(tv, Shape{B, 1}, dt, dv, c));
      Tape tp(c);
      const Var y = m.forward(tp, t, x);
      std::vector<Var> wrt = m.parameters();
      wrt.push_back(x);
      std::vector<std::vector<double>> out{test::to_doubles(y.value(), c)};
      for (const Tensor& g : tp.gradients(y, wrt, test::from_doubles(wv, Shape{B, n * D}, dt, dv, c)))
        out.push_back(test::to_doubles(g, c));
      return out;
    };
    ref.set_fused(false);  // the composed ops in float64: the reference
    const auto want = grads(ref, Device::cpu(), DType::F64, host);
    const double tol = k.dt == DType::F64 ? 1e-10 : 1e-4;
    for (bool fused : {true, false}) {
      CAPTURE(fused);
      net.set_fused(fused);
      const auto got = grads(net, dev, k.dt, ctx);
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        double scale = 0;
        for (double v : want[i]) scale = std::max(scale, std::abs(v));
        CAPTURE(i);
        test::check_close(got[i], want[i], 0, tol * std::max(scale, 1e-6), i == 0 ? "output" : "gradient");
      }
    }
  }
}
