// Optimisers and training utilities: Adam against a hand-computed sequence, skipped non-finite steps,
// clipping, EMA, the learning-rate schedules, and a small MLP fitted to a 1-D function.
#include <cmath>

#include "nsamp/autograd/module.h"
#include "nsamp/autograd/optim.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/optim.h"
#include "test_util.h"

using namespace nsamp;
using ag::Tape;
using ag::Var;

namespace {
Var param(const std::vector<double>& v, Device dev, Context& ctx, DType dt = DType::F64) {
  return Var::leaf(test::from_doubles(v, Shape{static_cast<std::int64_t>(v.size())}, dt, dev, ctx), true,
                   "p");
}
}  // namespace

NSAMP_DEVICE_TEST("adam: three steps match a hand computation with weight decay and clipping") {
  Context ctx(dev);
  Var p = param({1.0, -2.0, 0.5}, dev, ctx);
  ag::AdamOptions o;
  o.lr = 0.1;
  o.beta1 = 0.8;
  o.beta2 = 0.99;
  o.eps = 1e-3;
  o.weight_decay = 0.05;
  o.clip_norm = 1.5;
  ag::Adam adam({p}, o, ctx);
  const std::vector<std::vector<double>> grads = {{0.3, -1.2, 2.0}, {0.1, 0.4, -0.2}, {-3.0, 0.0, 1.0}};
  // Reference, written out: clip by global norm, add the L2 term, moments, bias corrections.
  std::vector<double> ref = {1.0, -2.0, 0.5}, m(3, 0.0), v(3, 0.0);
  for (int s = 0; s < 3; ++s) {
    double norm = 0;
    for (double g : grads[s]) norm += g * g;
    norm = std::sqrt(norm);
    const double coef = std::min(1.0, 1.5 / (norm + 1e-6));
    for (int i = 0; i < 3; ++i) {
      const double g = grads[s][i] * coef + 0.05 * ref[i];
      m[i] = 0.8 * m[i] + 0.2 * g;
      v[i] = 0.99 * v[i] + 0.01 * g * g;
      const double bc1 = 1 - std::pow(0.8, s + 1), bc2 = 1 - std::pow(0.99, s + 1);
      ref[i] -= 0.1 / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + 1e-3);
    }
    p.set_grad(test::from_doubles(grads[s], Shape{3}, DType::F64, dev, ctx));
    CHECK(adam.step(0.0));
    CHECK(adam.last_grad_norm() == doctest::Approx(norm).epsilon(1e-12));
  }
  test::check_close(test::to_doubles(p.value(), ctx), ref, 1e-12, 1e-14, "parameters after 3 Adam steps");
  CHECK(adam.steps() == 3);
}

NSAMP_DEVICE_TEST("adam: a non-finite loss or gradient skips the step and counts it") {
  Context ctx(dev);
  Var p = param({1.0, 2.0}, dev, ctx, DType::F32);
  ag::Adam adam({p}, ag::AdamOptions{}, ctx);
  p.set_grad(test::from_doubles({0.5, 0.5}, Shape{2}, DType::F32, dev, ctx));
  CHECK_FALSE(adam.step(NAN));
  p.set_grad(test::from_doubles({INFINITY, 0.5}, Shape{2}, DType::F32, dev, ctx));
  CHECK_FALSE(adam.step(1.0));
  CHECK(adam.skipped() == 2);
  CHECK(adam.steps() == 0);
  test::check_close(test::to_doubles(p.value(), ctx), {1.0, 2.0}, 0, 0, "unchanged parameters");
  for (const Tensor* st : {&adam.first_moments()[0], &adam.second_moments()[0]})
    for (double s : test::to_doubles(*st, ctx)) CHECK(s == 0.0);
  p.set_grad(test::from_doubles({0.5, -0.5}, Shape{2}, DType::F32, dev, ctx));
  CHECK(adam.step(1.0));
  const std::vector<double> after = test::to_doubles(p.value(), ctx);
  CHECK(after[0] == doctest::Approx(1.0 - 1e-3).epsilon(1e-5));  // first Adam step moves by lr * sign(g)
  CHECK(after[1] == doctest::Approx(2.0 + 1e-3).epsilon(1e-5));
  ag::AdamOptions bad;
  bad.beta1 = 1.0;
  CHECK_THROWS_WITH_AS(ag::Adam({p}, bad, ctx), doctest::Contains("betas (1, 0.999) must lie in [0, 1)"),
                       Error);
}

NSAMP_DEVICE_TEST("adam: the device-side step (loss read on the device) equals the host-argument update") {
  // Mixed float32/float64 parameters, clipping active, a NaN loss in the middle and a learning-rate change:
  // Adam's enqueue_step against clip_grad_norm + kernels::adam_update with the scalars passed from the host.
  Context ctx(dev);
  const Tensor p0 = test::randn(Shape{5, 3}, DType::F32, dev, ctx, 1),
               p1 = test::randn(Shape{4}, DType::F64, dev, ctx, 2);
  Var a = Var::leaf(p0.clone(ctx), true, "a"), b = Var::leaf(p1.clone(ctx), true, "b");
  Var ra = Var::leaf(p0.clone(ctx), true, "ra"), rb = Var::leaf(p1.clone(ctx), true, "rb");
  ag::AdamOptions o;
  o.lr = 0.05;
  o.weight_decay = 0.01;
  o.clip_norm = 0.7;
  ag::Adam adam({a, b}, o, ctx);
  std::vector<Tensor> rm{Tensor::zeros(p0.shape(), DType::F32, dev, ctx),
                         Tensor::zeros(p1.shape(), DType::F64, dev, ctx)};
  std::vector<Tensor> rv{rm[0].clone(ctx), rm[1].clone(ctx)};
  std::vector<Var> ref{ra, rb};
  Tensor loss = Tensor::empty(Shape{1}, DType::F64, dev, ctx);
  std::int64_t t = 0;
  double lr = o.lr;
  for (int s = 0; s < 6; ++s) {
    CAPTURE(s);
    if (s == 4) {
      lr = 0.02;
      adam.set_lr(lr);
    }
    const double loss_value = s == 2 ? NAN : 1.0 + s;
    fill_constant(loss, loss_value, ctx);
    const Tensor ga = test::randn(p0.shape(), DType::F32, dev, ctx, 10 + s, 2.0),
                 gb = test::randn(p1.shape(), DType::F64, dev, ctx, 20 + s, 2.0);
    a.set_grad(ga.clone(ctx));
    b.set_grad(gb.clone(ctx));
    ra.set_grad(ga.clone(ctx));
    rb.set_grad(gb.clone(ctx));
    adam.enqueue_step(loss);
    if (std::isnan(loss_value)) continue;
    const double norm = ag::grad_norm(ref, ctx), coef = 0.7 / (norm + 1e-6);
    kernels::AdamStep st{lr, o.beta1, o.beta2, o.eps, o.weight_decay, ++t, coef < 1 ? coef : 1.0};
    for (std::size_t i = 0; i < 2; ++i)
      kernels::adam_update(ref[i].mutable_value(), ref[i].grad(), rm[i], rv[i], st, ctx);
  }
  CHECK(adam.steps() == 5);
  CHECK(adam.skipped() == 1);
  const double tol = dev.is_cpu() ? 0.0 : 1e-6;  // CUDA's pow in the bias corrections may differ by an ulp
  test::check_close(test::to_doubles(a.value(), ctx), test::to_doubles(ra.value(), ctx), tol, tol,
                    "float32 parameter");
  test::check_close(test::to_doubles(b.value(), ctx), test::to_doubles(rb.value(), ctx), tol, tol,
                    "float64 parameter");
}

NSAMP_DEVICE_TEST("clip_grad_norm and EMA") {
  Context ctx(dev);
  Var a = param({3.0, 0.0}, dev, ctx), b = param({4.0}, dev, ctx);
  a.set_grad(test::from_doubles({3.0, 0.0}, Shape{2}, DType::F64, dev, ctx));
  b.set_grad(test::from_doubles({4.0}, Shape{1}, DType::F64, dev, ctx));
  std::vector<Var> ps{a, b};
  CHECK(ag::clip_grad_norm(ps, 1.0, ctx) == doctest::Approx(5.0));
  CHECK(ag::grad_norm(ps, ctx) == doctest::Approx(5.0 / (5.0 + 1e-6)));
  ag::EMA ema({a}, 0.9, ctx);
  copy(test::from_doubles({1.0, 1.0}, Shape{2}, DType::F64, dev, ctx), a.mutable_value(), ctx);
  ema.update();  // 0.9 * [3, 0] + 0.1 * [1, 1]
  test::check_close(test::to_doubles(ema.shadow()[0], ctx), {2.8, 0.1}, 1e-14, 1e-15, "EMA");
  ema.swap();
  test::check_close(test::to_doubles(a.value(), ctx), {2.8, 0.1}, 1e-14, 1e-15, "swapped in");
  ema.swap();
  test::check_close(test::to_doubles(a.value(), ctx), {1.0, 1.0}, 0, 0, "swapped back");
}

TEST_CASE("schedules: the EMA schedule warms its decay up as sde_sampler's" * doctest::test_suite("cpu")) {
  const ag::EmaSchedule s(0.9999, 0.9, 58500, 5);
  CHECK(s.reset_step() == 58500);
  CHECK(!s.acts(0));
  CHECK(!s.acts(58501));
  CHECK(s.acts(58505));
  CHECK(s.decay(58501) == 0.0);  // e = 0: the average restarts from the parameters
  CHECK(s.decay(58505) == doctest::Approx(1.0 - std::pow(5.0, -0.9)).epsilon(1e-15));
  CHECK(s.decay(60000) == doctest::Approx(1.0 - std::pow(1500.0, -0.9)).epsilon(1e-15));
  CHECK(s.decay(60000) < 0.9999);  // sde_sampler's 1500 steps never reach the cap
  CHECK(ag::EmaSchedule(0.99, 0.9, 0, 1).decay(1000000) == 0.99);
  CHECK(ag::EmaSchedule(0.99, 0.9, 7, 5).reset_step() == 5);
  CHECK_THROWS_WITH_AS(ag::EmaSchedule(0.99, 0.9, 0, 0), doctest::Contains("every 0"), Error);
  CHECK_THROWS_WITH_AS(ag::EmaSchedule(1.5, 0.9, 0, 1), doctest::Contains("cap 1.5"), Error);
}

TEST_CASE("schedules: StepLR and ReduceLROnPlateau follow PyTorch" * doctest::test_suite("cpu")) {
  Context ctx;
  Var p = param({0.0}, Device::cpu(), ctx);
  ag::AdamOptions o;
  o.lr = 1.0;
  ag::Adam adam({p}, o, ctx);
  ag::StepLR step(1.0, 3, 0.5);
  std::vector<double> lrs;
  for (int e = 0; e < 7; ++e) lrs.push_back(step.step(adam));
  test::check_close(lrs, {1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25}, 1e-15, 0, "StepLR");

  ag::ReduceLROnPlateau::Options ro;
  ro.patience = 2;
  ro.factor = 0.5;
  ag::ReduceLROnPlateau plateau(ro);
  adam.set_lr(1.0);
  // Improves twice, then stalls: the 3rd epoch past the best (bad > patience) cuts the rate.
  const double metrics[] = {10, 9, 9, 9, 9, 8, 8, 8, 8};
  std::vector<int> cuts;
  for (int e = 0; e < 9; ++e)
    if (plateau.step(metrics[e], adam)) cuts.push_back(e);
  CHECK(cuts == std::vector<int>{4, 8});
  CHECK(adam.lr() == 0.25);
}

NSAMP_DEVICE_TEST("training: an MLP fits sin(2x) on -2 .. 2 to a mean squared error below 1e-4") {
  Context ctx(dev, 7);
  const std::int64_t n = 256;
  std::vector<double> xs(n), ys(n);
  for (std::int64_t i = 0; i < n; ++i) {
    xs[i] = -2.0 + 4.0 * double(i) / double(n - 1);
    ys[i] = std::sin(2.0 * xs[i]);
  }
  const Var x = Var::leaf(test::from_doubles(xs, Shape{n, 1}, DType::F32, dev, ctx));
  const Var y = Var::leaf(test::from_doubles(ys, Shape{n, 1}, DType::F32, dev, ctx));
  ag::MLP net({1, 32, 32, 1}, ag::Activation::Tanh, ag::Activation::Identity, DType::F32, ctx, "fit");
  ag::AdamOptions o;
  o.lr = 1e-2;
  ag::Adam adam(net.parameters(), o, ctx);
  // At a constant 1e-2 Adam's last iterate spikes now and then (seed 10 on the CPU: 1.6e-3; the H200 run of
  // 2026-12-04, whose float32 rounding differs: 2.6e-4); a decaying rate settles it (seeds 7-14 on the CPU:
  // 2.9e-6 .. 1.8e-5).
  ag::StepLR sched(o.lr, 500, 0.3);
  double loss = 0;
  for (int it = 0; it < 1500; ++it) {
    if (it > 0) sched.step(adam);
    Tape t(ctx);
    Var l = ag::mean(t, ag::square(t, ag::sub(t, net.forward(t, x), y)));
    loss = test::to_doubles(l.value(), ctx)[0];
    adam.zero_grad();
    t.backward(l);
    adam.step(loss);
  }
  MESSAGE("final mean squared error " << loss);
  CHECK(loss < 1e-4);  // measured 2.9e-6 on the CPU path
  CHECK(adam.skipped() == 0);
}
