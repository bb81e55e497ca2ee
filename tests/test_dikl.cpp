// DiKL's schedule and losses: the VP schedule's defining identities, denoising score matching on a Gaussian
// (whose optimal score is known), the generator's surrogate gradient against finite differences, and the
// sampler and training loop built on them (seeded one-step sampling, what each iteration updates).
#include <cmath>

#include "nsamp/autograd/module.h"
#include "nsamp/autograd/ops.h"
#include "nsamp/core/fill.h"
#include "nsamp/samplers/dikl.h"
#include "nsamp/samplers/dikl_training.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

TEST_CASE("dikl: the discrete VP schedule" * doctest::test_suite("cpu")) {
  const s::DiklSchedule m = s::DiklSchedule::make(1e-4, 0.7, true);
  REQUIRE(m.levels() == 30);
  double abar = 1;
  for (int i = 0; i < 30; ++i) {
    abar *= 1 - (1e-4 + (0.7 - 1e-4) * i / 29.0);
    CHECK(m.alpha[std::size_t(i)] * m.alpha[std::size_t(i)] == doctest::Approx(abar).epsilon(1e-14));
    CHECK(m.alpha[std::size_t(i)] * m.alpha[std::size_t(i)] +
              m.sigma[std::size_t(i)] * m.sigma[std::size_t(i)] ==
          doctest::Approx(1.0).epsilon(1e-14));
    CHECK(m.weight[std::size_t(i)] == doctest::Approx(1 / m.alpha[std::size_t(i)]));
  }
  CHECK(s::DiklSchedule::make(1e-6, 0.05, false).weight[7] == 1.0);
  CHECK_THROWS_WITH_AS(s::DiklSchedule::make(0.1, 1.0, false), doctest::Contains("0 < start <= end < 1"),
                       Error);
}

NSAMP_DEVICE_TEST("dikl: DSM on N(0 v I) is stationary at the optimal linear score") {
  // s(x_t) = c x_t: dL/dc = 2 sigma^2 d (1 + c (alpha^2 v + sigma^2)) in expectation, zero at
  // c* = -1 / (alpha^2 v + sigma^2) (the score of p_t = N(0, (alpha^2 v + sigma^2) I)).
  Context ctx(dev, 4);
  const s::DiklSchedule sch = s::DiklSchedule::make(1e-4, 0.7, true);
  const std::int64_t B = 40000, d = 3;
  const double v = 2.0;
  const int t = 6;
  const double a = sch.alpha[t], sg = sch.sigma[t], cstar = -1 / (a * a * v + sg * sg);
  const Tensor x = test::randn(Shape{B, d}, DType::F64, dev, ctx, 1, std::sqrt(v));
  const Tensor eps = test::randn(Shape{B, d}, DType::F64, dev, ctx, 2);
  const std::vector<int> ts(std::size_t(B), t);
  auto grad_at = [&](double c) {
    ag::Var cv = ag::Var::leaf(test::from_doubles({c}, Shape{1, 1}, DType::F64, dev, ctx), true);
    ag::Tape tp(ctx);
    const s::ScoreFn score = [&](ag::Tape& tape, const ag::Var& time, const ag::Var& xt) {
      CHECK(test::to_doubles(time.value(), ctx)[0] == double(t));
      return ag::mul(tape, xt, cv);
    };
    const ag::Var L = s::dsm_loss(tp, score, sch, x, ts, eps, ctx);
    tp.backward(L);
    return test::to_doubles(cv.grad(), ctx)[0];
  };
  const double scale = 2 * sg * sg * d;
  CHECK(grad_at(0.0) == doctest::Approx(scale).epsilon(0.03));
  CHECK(std::abs(grad_at(cstar)) < 0.03 * scale);
  CHECK(grad_at(2 * cstar) == doctest::Approx(-scale).epsilon(0.05));  // 1 + 2 c* (...) = -1
}

TEST_CASE("dikl: the generator's surrogate gradient matches finite differences" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 7);
  const s::DiklSchedule sch = s::DiklSchedule::make(1e-4, 0.15, true);
  const std::int64_t B = 5, d = 3, k = 4;
  ag::Linear g(k, d, true, ag::Init::PyTorchDefault, DType::F64, ctx, "generator");
  const Tensor z = test::randn(Shape{B, k}, DType::F64, Device::cpu(), ctx, 1);
  const Tensor eps = test::randn(Shape{B, d}, DType::F64, Device::cpu(), ctx, 2);
  const Tensor c = test::randn(Shape{B, d}, DType::F64, Device::cpu(), ctx, 3);
  const std::vector<int> ts{1, 5, 29, 13, 7};
  auto loss = [&](bool backward) {
    ag::Tape tp(ctx);
    const ag::Var L =
        s::generator_surrogate(tp, s::diffuse(tp, g.forward(tp, ag::Var::leaf(z)), sch, ts, eps, ctx), c);
    const double v = test::to_doubles(L.value(), ctx)[0];
    if (backward) tp.backward(L);
    return v;
  };
  for (ag::Var p : g.parameters()) p.set_grad(Tensor());
  loss(true);
  // The gradient with respect to x is alpha_t c / B: W's is its outer product with z.
  const std::vector<double> gw = test::to_doubles(g.weight().grad(), ctx), zv = test::to_doubles(z, ctx),
                            cv = test::to_doubles(c, ctx);
  for (std::int64_t i = 0; i < d; ++i)
    for (std::int64_t j = 0; j < k; ++j) {
      double ref = 0;
      for (std::int64_t b = 0; b < B; ++b)
        ref += sch.alpha[std::size_t(ts[std::size_t(b)])] * cv[std::size_t(b * d + i)] *
               zv[std::size_t(b * k + j)] / B;
      CHECK(gw[std::size_t(i * k + j)] == doctest::Approx(ref).epsilon(1e-12));
    }
  Tensor& w = g.weight().mutable_value();
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    const double h = 1e-6, orig = w.data<double>()[i];
    w.data<double>()[i] = orig + h;
    const double up = loss(false);
    w.data<double>()[i] = orig - h;
    const double down = loss(false);
    w.data<double>()[i] = orig;
    CHECK(gw[std::size_t(i)] == doctest::Approx((up - down) / (2 * h)).epsilon(1e-7).scale(1e-6));
  }
  CHECK_THROWS_WITH_AS(
      [&] {
        ag::Tape tp(ctx);
        s::diffuse(tp, g.forward(tp, ag::Var::leaf(z)), sch, {1, 2, 30, 4, 5}, eps, ctx);
      }(),
      doctest::Contains("noise index 30 outside 1 .. 29"), Error);
}

namespace {

s::DiklConfig tiny_config() {
  s::DiklConfig c;
  c.gen_width = 16;
  c.gen_layers = 2;
  c.score_width = 16;
  c.score_layers = 2;
  c.posterior.ais_levels = 3;
  c.posterior.mala_steps = 2;
  return c;
}

}  // namespace

TEST_CASE("dikl sampler: one-step samples are seeded and chunked" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 3);
  auto target = targets::make_target("gaussian", {2});
  const s::DiklSampler sampler(*target, tiny_config(), DType::F64, ctx);
  const std::vector<double> a = test::to_doubles(sampler.sample(8200, 5, ctx), ctx);
  const std::vector<double> b = test::to_doubles(sampler.sample(7, 5, ctx), ctx);
  const std::vector<double> c = test::to_doubles(sampler.sample(7, 6, ctx), ctx);
  REQUIRE(a.size() == 8200 * 2);
  // Chunk 0 starts at offset 0: the same latents (the GEMM's blocking differs with the batch, hence 1e-12).
  test::check_close(std::vector<double>(a.begin(), a.begin() + 14), b, 1e-12, 1e-14, "first rows");
  CHECK(b != c);
  // The generator is x = MLP(z) with z ~ N(0, I): the same network on the same latents gives the same rows.
  Tensor z = Tensor::empty(Shape{7, 2}, DType::F64, Device::cpu(), ctx);
  fill_normal_at(z, 5, 0, ctx);
  ag::Tape tp(ctx);
  test::check_close(test::to_doubles(sampler.generate(tp, z).value(), ctx), b, 0, 0,
                    "generator on the latents");
  CHECK(sampler.parameters().size() ==
        sampler.generator_parameters().size() + sampler.score_parameters().size());
  CHECK_THROWS_WITH_AS(sampler.sample(0, 1, ctx), doctest::Contains("at least one sample"), Error);
}

TEST_CASE("dikl training: each iteration moves the score network and then the generator" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 9);
  auto target = targets::make_target("gmm40");
  s::DiklSampler sampler(*target, tiny_config(), DType::F32, ctx);
  const std::vector<double> g0 = test::flat_values(sampler.generator_parameters(), ctx),
                            s0 = test::flat_values(sampler.score_parameters(), ctx);
  s::DiklTrainOptions o;
  o.iterations = 2;
  o.batch = 32;
  o.score_iter = 3;
  o.eval_every = 2;
  o.eval_samples = 500;
  std::vector<s::DiklTrainLog> logs;
  int evals = 0;
  s::TrainControl control;
  control.checkpoint_due = [&](std::int64_t done) { return done % o.eval_every == 0; };
  control.save = [&](ag::StateDict&, std::int64_t step) { evals += int(step); };
  s::train_dikl(
      sampler, o, ctx, [&](const s::DiklTrainLog& l) { logs.push_back(l); }, &control);
  REQUIRE(logs.size() == 1);  // log_every 50: the final evaluation only
  const s::DiklTrainLog& l = logs[0];
  CHECK(l.step == 2);
  CHECK(evals == 2);
  CHECK(l.skipped == 0);
  CHECK(l.score_skipped == 0);
  CHECK(std::isfinite(l.dsm_loss));
  CHECK(std::isfinite(l.generator_loss));
  CHECK(l.acceptance > 0);
  REQUIRE(l.eval);
  CHECK(l.eval->samples == 500);
  CHECK(l.eval->modes == 40);
  CHECK(l.eval->modes_covered >= 0);
  CHECK(l.eval->mean_log_p < 0);
  CHECK(test::flat_values(sampler.generator_parameters(), ctx) != g0);
  CHECK(test::flat_values(sampler.score_parameters(), ctx) != s0);
  // A zero learning rate leaves a network where it is (Adam's update is lr times the normalised moment).
  const std::vector<double> g1 = test::flat_values(sampler.generator_parameters(), ctx),
                            s1 = test::flat_values(sampler.score_parameters(), ctx);
  o.gen_lr = 0;
  o.iterations = 1;
  o.eval_every = 1;
  s::train_dikl(sampler, o, ctx, [](const s::DiklTrainLog&) {});
  CHECK(test::flat_values(sampler.generator_parameters(), ctx) == g1);
  CHECK(test::flat_values(sampler.score_parameters(), ctx) != s1);
}

TEST_CASE("dikl sampler: particle systems use EGNNs and stay mean-free" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 17);
  auto dw4 = targets::make_target("dw4");
  s::DiklConfig c = tiny_config();
  c.beta_start = 1e-6;
  c.beta_end = 0.05;
  c.weight_inv_alpha = false;
  s::DiklSampler sampler(*dw4, c, DType::F64, ctx);
  CHECK(sampler.mean_free().active());
  CHECK(sampler.generator_parameters().front().name() == "generator.embed.weight");
  const std::vector<double> x = test::to_doubles(sampler.sample(200, 3, ctx), ctx);
  double worst = 0, var = 0;
  for (std::size_t r = 0; r < 200; ++r)
    for (int a = 0; a < 2; ++a) {
      double sum = 0;
      for (int i = 0; i < 4; ++i) sum += x[r * 8 + std::size_t(i * 2 + a)];
      worst = std::max(worst, std::abs(sum));
    }
  for (double v : x) var += v * v / (200 * 6);
  CHECK(worst < 1e-12);
  // Position output: the untrained generator is about its mean-free N(0, I) latent.
  CHECK(var == doctest::Approx(1.0).epsilon(0.25));
  std::vector<double> g0 = test::flat_values(sampler.generator_parameters(), ctx),
                      s0 = test::flat_values(sampler.score_parameters(), ctx);
  s::DiklTrainOptions o;
  o.iterations = 2;
  o.batch = 16;
  o.score_iter = 2;
  o.eval_every = 2;
  o.eval_samples = 100;
  std::vector<s::DiklTrainLog> logs;
  s::train_dikl(sampler, o, ctx, [&](const s::DiklTrainLog& l) { logs.push_back(l); });
  REQUIRE(logs.size() == 1);
  CHECK(logs[0].skipped == 0);
  CHECK(std::isfinite(logs[0].generator_loss));
  REQUIRE(logs[0].eval);
  CHECK(std::isfinite(logs[0].eval->mean_log_p));
  CHECK(test::flat_values(sampler.generator_parameters(), ctx) != g0);
  CHECK(test::flat_values(sampler.score_parameters(), ctx) != s0);
}
