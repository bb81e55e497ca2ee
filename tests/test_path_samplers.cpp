// Path samplers: R is exact where the answer is known, the step-wise lv gradient equals full backpropagation
// of var(R), and the kl gradient through the path matches finite differences.
#include <cmath>

#include "nsamp/autograd/ops.h"
#include "nsamp/samplers/metrics.h"
#include "nsamp/samplers/path_samplers.h"
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

NSAMP_DEVICE_TEST("path samplers: PIS with u = 0 on the reference law gives R = -log Z on every path") {
  Context ctx(dev);
  // gaussian: E = |x|^2 / 2 is the reference N(0, sigma^2 T I) = N(0, I) up to Z = (2 pi)^(d/2); with u = 0
  // (zero output layers, NN_t's bias set to 0) R = log p_ref(X_N) + E(X_N) = -log Z exactly, path by path.
  auto t = targets::make_target("gaussian", {3});
  s::PathConfig c = tiny(s::PathMethod::Pis);
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

NSAMP_DEVICE_TEST("path samplers: the step-wise lv gradient equals backpropagation of var(R)") {
  Context ctx(dev);
  auto t = targets::make_target("gmm9");
  for (s::PathMethod m : {s::PathMethod::Pis, s::PathMethod::Dis, s::PathMethod::EulerDds})
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
  for (s::PathMethod m : {s::PathMethod::Pis, s::PathMethod::Dis, s::PathMethod::EulerDds}) {
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
  CHECK_THROWS_WITH_AS(s::parse_path_method("pas"), doctest::Contains("valid: pis, dis, euler-dds"), Error);
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
