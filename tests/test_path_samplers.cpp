// Path samplers: R is exact where the answer is known, the step-wise lv gradient equals full backpropagation
// of var(R), and the kl gradient through the path matches finite differences.
#include <cmath>

#include "nsamp/autograd/ops.h"
#include "nsamp/core/fill.h"
#include "nsamp/samplers/metrics.h"
#include "nsamp/samplers/path_samplers.h"
#include "nsamp/targets/user_target.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

namespace {

s::PathConfig tiny(s::PathMethod m) {
  s::PathConfig c;
  c.method = m;
  c.steps = 6;
  c.channels = 8;
  c.layers = 1;
  c.traj_per_sample = 3;
  return c;
}

// Gives every zero-initialised output layer random values, so that u depends on the parameters in every
// way a trained network would.
void randomise(s::PathSampler& ps, Device dev, Context& ctx) {
  std::uint64_t seed = 100;
  for (ag::Var& p : ps.parameters()) {
    Tensor t = test::randn(p.value().shape(), p.value().dtype(), dev, ctx, ++seed, 0.3);
    p.mutable_value() = t;
  }
}

std::vector<std::vector<double>> grads_of(const std::vector<ag::Var>& ps, Context& ctx) {
  std::vector<std::vector<double>> g;
  for (const ag::Var& p : ps)
    g.push_back(p.grad().defined() ? test::to_doubles(p.grad(), ctx)
                                   : std::vector<double>(std::size_t(p.value().numel()), 0.0));
  return g;
}

void zero_grads(const std::vector<ag::Var>& ps) {
  for (ag::Var p : ps) p.set_grad(Tensor());
}

}  // namespace

NSAMP_DEVICE_TEST(
    "path samplers: PIS and DDS with u = 0 on the reference law give R = -log Z on every path") {
  Context ctx(dev);
  // gaussian: E = |x|^2 / 2 is the reference law N(0, I) (PIS: N(0, sigma^2 T I); DDS: N(0, sigma^2 I), kept
  // at every step by the exponential integrator) up to Z = (2 pi)^(d/2); with u = 0 (zero output layers,
  // NN_t's bias set to 0) R = log p_ref(X_N) + E(X_N) = -log Z exactly, path by path.
  auto t = targets::make_target("gaussian", {3});
  for (s::PathMethod m : {s::PathMethod::Pis, s::PathMethod::Dds}) {
    CAPTURE(s::path_method_name(m));
    s::PathConfig c = tiny(m);
    c.steps = 20;
    s::PathSampler ps(*t, c, DType::F64, ctx);
    ag::Var bias = ps.time_net().parameters().back();
    fill_constant(bias.mutable_value(), 0.0, ctx);
    const s::PathBatch b = ps.simulate(64, 7, 0, ctx);
    const std::vector<double> R = test::to_doubles(b.R, ctx);
    for (double r : R) CHECK(r == doctest::Approx(-*t->log_z()).epsilon(1e-12));
    const s::metrics::WeightStats w =
        s::metrics::weight_stats(test::from_doubles(std::vector<double>(R.size(), 0.0),
                                                    Shape{std::int64_t(R.size())}, DType::F64, dev, ctx),
                                 ctx);
    CHECK(w.ess_fraction == doctest::Approx(1.0));
    // The end points are N(0, sigma^2 T I) = N(0, I): a loose moment check on 64 x 3 values.
    const std::vector<double> x = test::to_doubles(b.x, ctx);
    double m2 = 0;
    for (double v : x) m2 += v * v / double(x.size());
    CHECK(m2 == doctest::Approx(1.0).epsilon(0.35));
  }
}

TEST_CASE("path samplers: the DDS cosine grid is sde_sampler's" * doctest::test_suite("cpu")) {
  // end 12.8, dt 0.05: 256 cosine weights + 1; the trailing intervals shorter than 1e-6 x 12.8 in total are
  // dropped, leaving 243 (values from an independent float64 evaluation of the same formula).
  const std::vector<double> t = s::dds_cosine_grid(12.8, 256);
  REQUIRE(t.size() == 244);
  CHECK(t[0] == 0.0);
  CHECK(t[1] == doctest::Approx(0.13438364639381065).epsilon(1e-12));
  CHECK(t[2] - t[1] == doctest::Approx(0.13433290075162155).epsilon(1e-12));
  CHECK(t.back() == doctest::Approx(12.799983575970723).epsilon(1e-12));
  for (std::size_t i = 1; i < t.size(); ++i) CHECK(t[i] > t[i - 1]);
  Context ctx(Device::cpu());
  auto g = targets::make_target("gmm9");
  s::PathConfig c = tiny(s::PathMethod::Dds);
  c.steps = 256;
  CHECK(s::PathSampler(*g, c, DType::F64, ctx).path_steps() == 243);
}

NSAMP_DEVICE_TEST("path samplers: the fused evaluation step gives the R of the autograd step") {
  // simulate() takes kernels::sde_step; log_rnd(lv) on a recording tape writes the same steps with autograd
  // ops (w = detach(u), whose cost has the same value). They differ only by DIS's divergence terms, which
  // evaluation adds: -d/4 sum_k (beta_k + beta_k+1) dt = -d (beta_min + beta_max) T / 4 for the linear beta.
  Context ctx(dev);
  auto t = targets::make_target("gmm9");
  for (s::PathMethod m :
       {s::PathMethod::Pis, s::PathMethod::Dis, s::PathMethod::Dds, s::PathMethod::EulerDds}) {
    CAPTURE(s::path_method_name(m));
    s::PathSampler ps(*t, tiny(m), DType::F64, ctx);
    randomise(ps, dev, ctx);
    const std::int64_t B = 9;
    const std::vector<double> fused = test::to_doubles(ps.simulate(B, 3, 0, ctx).R, ctx);
    ag::Tape tp(ctx);
    const std::vector<double> tape =
        test::to_doubles(ps.log_rnd(s::PathLoss::Lv, B, 3, 0, tp, ctx).value(), ctx);
    const double div = m == s::PathMethod::Dis ? -2.0 * (0.1 + 10.0) / 4.0 : 0.0;
    for (std::size_t i = 0; i < tape.size(); ++i)
      CHECK(fused[i] == doctest::Approx(tape[i] + div).epsilon(1e-11));
  }
}

NSAMP_DEVICE_TEST("path samplers: DIS with the optimal control on a Gaussian: the log Z error goes to 0") {
  // Target = prior = N(0, I): the VP marginals stay N(0, I), so the optimal control is u* = sigma grad log
  // p_t = -sigma x, which DIS's control reaches exactly with NN = 0 and NN_t = 1 (its interpolated score is
  // -x). Euler-Maruyama leaves an O(dt) bias in the ELBO and a variance of R that both vanish with the step.
  // (The spec's own check, R = 0 for u = 0 on the reference law, is the PIS / DDS test above.)
  Context ctx(dev);
  auto t = targets::make_target("gaussian", {3});
  const double log_z = *t->log_z();
  double prev_err = INFINITY;
  for (int steps : {25, 100, 400}) {  // 4x apart
    CAPTURE(steps);
    s::PathConfig c = tiny(s::PathMethod::Dis);
    c.steps = steps;
    s::PathSampler ps(*t, c, DType::F64, ctx);
    fill_constant(ps.time_net().parameters().back().mutable_value(), 1.0, ctx);
    const std::vector<double> R = test::to_doubles(ps.simulate(4096, 1, 0, ctx).R, ctx);
    double mean = 0, var = 0;
    for (double r : R) mean += r / double(R.size());
    for (double r : R) var += (r - mean) * (r - mean) / double(R.size() - 1);
    const double err = std::abs(-mean - log_z);
    MESSAGE("DIS u* on N(0, I), " << steps << " steps: ELBO error " << err << ", var(R) " << var);
    // Measured (float64, 4096 paths): error ~ 20 / steps, var(R) ~ 51 / steps (beta reaches 10, so beta dt
    // is 0.1 at 100 steps). First order: quadrupling the steps cuts the error at least threefold.
    CHECK(err < 30.0 / steps);
    CHECK(var < 70.0 / steps);
    CHECK(err < prev_err / 3);
    prev_err = err;
  }
}

NSAMP_DEVICE_TEST("path samplers: the step-wise lv gradient equals backpropagation of var(R)") {
  Context ctx(dev);
  auto t = targets::make_target("gmm9");
  for (s::PathMethod m :
       {s::PathMethod::Pis, s::PathMethod::Dis, s::PathMethod::Dds, s::PathMethod::EulerDds})
    for (s::PathLoss loss : {s::PathLoss::Lv, s::PathLoss::LvTraj}) {
      CAPTURE(s::path_method_name(m));
      CAPTURE(s::path_loss_name(loss));
      s::PathSampler ps(*t, tiny(m), DType::F64, ctx);
      randomise(ps, dev, ctx);
      const std::vector<ag::Var> params = ps.parameters();
      const std::int64_t B = 12;
      // Reference: the whole batch on one tape, var(R) (per start point for lv_traj), backpropagated.
      zero_grads(params);
      ag::Tape tp(ctx);
      ag::Var R = ps.log_rnd(loss, B, 5, 0, tp, ctx);
      const int K = loss == s::PathLoss::LvTraj ? 3 : int(B);
      const std::int64_t G = B / K;
      ag::Var Rg = ag::reshape(tp, R, Shape{G, K});
      ag::Var mean = ag::mean_rows(tp, Rg);
      ag::Var dev_ = ag::sub(tp, Rg, ag::reshape(tp, mean, Shape{G, 1}));
      ag::Var var = ag::scale(tp, ag::sum_rows(tp, ag::square(tp, dev_)), 1.0 / (K - 1));
      ag::Var L = ag::scale(tp, ag::mean(tp, var), 1.0 / double(t->dim()));
      const double ref_loss = test::to_doubles(L.value(), ctx)[0];
      tp.backward(L);
      const auto ref = grads_of(params, ctx);
      zero_grads(params);
      std::int64_t kept = 0;
      const double got_loss = ps.loss_and_grad(loss, B, 5, 0, &kept, ctx);
      CHECK(kept == B);
      CHECK(got_loss == doctest::Approx(ref_loss).epsilon(1e-12));
      const auto got = grads_of(params, ctx);
      double norm = 0;
      for (std::size_t i = 0; i < ref.size(); ++i) {
        for (double v : ref[i]) norm += v * v;
        test::check_close(got[i], ref[i], 1e-9, 1e-12, params[i].name());
      }
      CHECK(norm > 0);  // the check compared real gradients
    }
}

TEST_CASE("path samplers: the kl gradient through the path matches finite differences" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu());
  auto t = targets::make_target("gmm9");
  for (s::PathMethod m :
       {s::PathMethod::Pis, s::PathMethod::Dis, s::PathMethod::Dds, s::PathMethod::EulerDds}) {
    CAPTURE(s::path_method_name(m));
    s::PathSampler ps(*t, tiny(m), DType::F64, ctx);
    randomise(ps, Device::cpu(), ctx);
    // The score inside u is detached (sde_sampler's default), which finite differences cannot mimic; with
    // NN_t's output layer at 0 the score term and its derivative along the path vanish at this point, while
    // every parameter (NN_t's included, through score x dNN_t) still has a gradient.
    std::vector<ag::Var> tn = ps.time_net().parameters();
    fill_constant(tn[tn.size() - 1].mutable_value(), 0.0, ctx);
    fill_constant(tn[tn.size() - 2].mutable_value(), 0.0, ctx);
    const std::vector<ag::Var> params = ps.parameters();
    zero_grads(params);
    const std::int64_t B = 6;
    ps.loss_and_grad(s::PathLoss::Kl, B, 9, 0, nullptr, ctx);
    const auto g = grads_of(params, ctx);
    auto loss_value = [&] {
      ag::Tape tp(ctx);
      ag::NoGrad ng(tp);
      const std::vector<double> R =
          test::to_doubles(ps.log_rnd(s::PathLoss::Kl, B, 9, 0, tp, ctx).value(), ctx);
      double sum = 0;
      for (double r : R) sum += r;
      return sum / double(B) / double(t->dim());
    };
    int checked = 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      Tensor& v = const_cast<ag::Var&>(params[i]).mutable_value();
      for (std::int64_t j = 0; j < v.numel(); j += std::max<std::int64_t>(1, v.numel() / 3)) {
        const double h = 1e-6, orig = v.data<double>()[j];
        v.data<double>()[j] = orig + h;
        const double up = loss_value();
        v.data<double>()[j] = orig - h;
        const double down = loss_value();
        v.data<double>()[j] = orig;
        const double fd = (up - down) / (2 * h);
        CAPTURE(params[i].name());
        CAPTURE(j);
        CHECK(g[i][std::size_t(j)] == doctest::Approx(fd).epsilon(1e-5).scale(1e-3));
        ++checked;
      }
    }
    CHECK(checked > 20);
  }
}

TEST_CASE("path samplers: bad names and settings are reported" * doctest::test_suite("cpu")) {
  CHECK(s::parse_path_method("euler-dds") == s::PathMethod::EulerDds);
  CHECK_THROWS_WITH_AS(s::parse_path_method("pas"), doctest::Contains("valid: pis, dis, dds, euler-dds"),
                       Error);
  CHECK_THROWS_WITH_AS(s::parse_path_loss("l2"), doctest::Contains("valid: kl, lv, lv_traj"), Error);
  Context ctx(Device::cpu());
  auto t = targets::make_target("gmm9");
  s::PathConfig c = tiny(s::PathMethod::Pis);
  c.steps = 0;
  CHECK_THROWS_WITH_AS(s::PathSampler(*t, c, DType::F64, ctx), doctest::Contains("steps must be at least 1"),
                       Error);
  s::PathSampler ps(*t, tiny(s::PathMethod::Pis), DType::F64, ctx);
  CHECK_THROWS_WITH_AS(ps.loss_and_grad(s::PathLoss::LvTraj, 10, 1, 0, nullptr, ctx),
                       doctest::Contains("dividing"), Error);
}

TEST_CASE(
    "path samplers: a user energy (host callback) drives every method exactly like the built-in target" *
    doctest::test_suite("cpu")) {
  Context ctx(Device::cpu());
  auto builtin = targets::make_target("gaussian", {3});
  targets::CallbackTarget user("my_gaussian", 3,
                               [](const double* x, std::int64_t B, std::int64_t d, double* e, double* g) {
                                 for (std::int64_t b = 0; b < B; ++b) {
                                   e[b] = 0;
                                   for (std::int64_t j = 0; j < d; ++j) {
                                     e[b] += 0.5 * x[b * d + j] * x[b * d + j];
                                     if (g) g[b * d + j] = x[b * d + j];
                                   }
                                 }
                               });
  for (s::PathMethod m :
       {s::PathMethod::Pis, s::PathMethod::Dis, s::PathMethod::Dds, s::PathMethod::EulerDds}) {
    CAPTURE(s::path_method_name(m));
    s::PathSampler a(*builtin, tiny(m), DType::F64, ctx), b(user, tiny(m), DType::F64, ctx);
    randomise(a, Device::cpu(), ctx);
    randomise(b, Device::cpu(), ctx);
    test::check_close(test::to_doubles(b.simulate(16, 2, 0, ctx).R, ctx),
                      test::to_doubles(a.simulate(16, 2, 0, ctx).R, ctx), 1e-13, 1e-13, "R");
    zero_grads(a.parameters());
    zero_grads(b.parameters());
    a.loss_and_grad(s::PathLoss::Lv, 16, 2, 0, nullptr, ctx);
    b.loss_and_grad(s::PathLoss::Lv, 16, 2, 0, nullptr, ctx);
    const auto ga = grads_of(a.parameters(), ctx), gb = grads_of(b.parameters(), ctx);
    for (std::size_t i = 0; i < ga.size(); ++i) test::check_close(gb[i], ga[i], 1e-12, 1e-13, "lv gradient");
  }
}

namespace {

// Largest |sum over particles| of a spatial axis over all rows.
double com_error(const std::vector<double>& x, int n, int D) {
  double worst = 0;
  for (std::size_t r = 0; r < x.size() / std::size_t(n * D); ++r)
    for (int a = 0; a < D; ++a) {
      double s = 0;
      for (int i = 0; i < n; ++i) s += x[r * std::size_t(n * D) + std::size_t(i * D + a)];
      worst = std::max(worst, std::abs(s));
    }
  return worst;
}

}  // namespace

TEST_CASE("path samplers on particle systems: mean-free paths - fused = autograd R - lv gradient = backprop" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu());
  auto t = targets::make_target("dw4");
  for (s::PathMethod m :
       {s::PathMethod::Pis, s::PathMethod::Dis, s::PathMethod::Dds, s::PathMethod::EulerDds}) {
    CAPTURE(s::path_method_name(m));
    s::PathConfig c = tiny(m);
    c.egnn_layers = 2;
    s::PathSampler ps(*t, c, DType::F64, ctx);
    CHECK(ps.dof() == 6);
    CHECK(ps.parameters().front().name() == "control.embed.weight");
    randomise(ps, Device::cpu(), ctx);
    const std::int64_t B = 9;
    const s::PathBatch b = ps.simulate(B, 3, 0, ctx);
    CHECK(com_error(test::to_doubles(b.x, ctx), 4, 2) < 1e-12);
    // The fused step draws full-space noise and projects the state; the autograd step projects the noise.
    // Both give the same R, since the projected control u satisfies u.dW = u.(P dW).
    const std::vector<double> fused = test::to_doubles(b.R, ctx);
    ag::Tape tp(ctx);
    Tensor x_end;
    const std::vector<double> tape =
        test::to_doubles(ps.log_rnd(s::PathLoss::Lv, B, 3, 0, tp, ctx).value(), ctx);
    const double div = m == s::PathMethod::Dis ? -6.0 * (0.1 + 10.0) / 4.0 : 0.0;  // d_eff = 6
    for (std::size_t i = 0; i < tape.size(); ++i)
      CHECK(fused[i] == doctest::Approx(tape[i] + div).epsilon(1e-11));
    // The step-wise lv gradient against backpropagation of var(R) on one tape.
    const std::vector<ag::Var> params = ps.parameters();
    zero_grads(params);
    ag::Tape t2(ctx);
    ag::Var R = ps.log_rnd(s::PathLoss::Lv, B, 5, 0, t2, ctx);
    ag::Var mean = ag::mean(t2, R);
    ag::Var var = ag::scale(t2, ag::sum(t2, ag::square(t2, ag::sub(t2, R, mean))), 1.0 / double(B - 1));
    ag::Var L = ag::scale(t2, var, 1.0 / 8.0);
    const double ref_loss = test::to_doubles(L.value(), ctx)[0];
    t2.backward(L);
    const auto ref = grads_of(params, ctx);
    zero_grads(params);
    const double got_loss = ps.loss_and_grad(s::PathLoss::Lv, B, 5, 0, nullptr, ctx);
    CHECK(got_loss == doctest::Approx(ref_loss).epsilon(1e-12));
    const auto got = grads_of(params, ctx);
    double norm = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      for (double v : ref[i]) norm += v * v;
      test::check_close(got[i], ref[i], 1e-9, 1e-12, params[i].name());
    }
    CHECK(norm > 0);
  }
}

TEST_CASE(
    "path samplers on particle systems: u = 0 on a mean-free Gaussian gives R = -log Z of the subspace" *
    doctest::test_suite("cpu")) {
  // E = |x|^2 / 2 restricted to the 6-D mean-free subspace of 4 particles in 2-D: Z = (2 pi)^3. With the
  // EGNN's coordinate outputs and NN_t zeroed, u = 0 and R = log p_ref(X_N) + E(X_N) = -log Z on every path.
  Context ctx(Device::cpu());
  targets::CallbackTarget gauss(
      "mean_free_gaussian", 8,
      [](const double* x, std::int64_t B, std::int64_t d, double* e, double* g) {
        for (std::int64_t b = 0; b < B; ++b) {
          e[b] = 0;
          for (std::int64_t j = 0; j < d; ++j) {
            e[b] += 0.5 * x[b * d + j] * x[b * d + j];
            if (g) g[b * d + j] = x[b * d + j];
          }
        }
      },
      targets::Particles{4, 2});
  for (s::PathMethod m : {s::PathMethod::Pis, s::PathMethod::Dds}) {
    CAPTURE(s::path_method_name(m));
    s::PathConfig c = tiny(m);
    c.steps = 20;
    s::PathSampler ps(gauss, c, DType::F64, ctx);
    for (ag::Var p : ps.parameters())
      if (p.name().find("coord2") != std::string::npos) fill_constant(p.mutable_value(), 0.0, ctx);
    fill_constant(ps.time_net().parameters().back().mutable_value(), 0.0, ctx);
    const s::PathBatch b = ps.simulate(32, 7, 0, ctx);
    for (double r : test::to_doubles(b.R, ctx))
      CHECK(r == doctest::Approx(-3.0 * std::log(2 * M_PI)).epsilon(1e-12));
    CHECK(com_error(test::to_doubles(b.x, ctx), 4, 2) < 1e-12);
  }
}
