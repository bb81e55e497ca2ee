// Optimiser family: Adam against a hand-computed float64 sequence (PyTorch's order of operations, weight
// decay and a gradient scale), against an independent float64 loop on random tensors at several gradient
// magnitudes, and the EMA update; bad hyperparameters and aliasing rejected with clear messages.
#include <cmath>

#include "nsamp/kernels/optim.h"
#include "test_util.h"

using namespace nsamp;
using namespace nsamp::kernels;

namespace {

// torch.optim.Adam (amsgrad off, maximize off) for one step, written out in float64.
void ref_adam_step(std::vector<double>& p, const std::vector<double>& grad, std::vector<double>& m,
                   std::vector<double>& v, const AdamStep& s) {
  const double bc1 = 1 - std::pow(s.beta1, double(s.step)), bc2 = 1 - std::pow(s.beta2, double(s.step));
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double g = s.grad_scale * grad[i] + s.weight_decay * p[i];
    m[i] = s.beta1 * m[i] + (1 - s.beta1) * g;
    v[i] = s.beta2 * v[i] + (1 - s.beta2) * g * g;
    p[i] -= s.lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + s.eps);
  }
}

}  // namespace

NSAMP_DEVICE_TEST("adam_update: three steps against a hand-computed float64 sequence") {
  Context ctx(dev);
  // lr 0.01, betas (0.9, 0.999), eps 1e-8, weight decay 0.1, gradients scaled by 0.5 (clipping). The third
  // parameter starts at 0 with a tiny gradient, then a large one, then none (weight decay alone).
  const std::vector<std::vector<double>> grads = {{0.2, -0.4, 1e-3}, {-0.1, 0.3, -2.0}, {0.05, 0.0, 0.0}};
  // Worked out step by step in float64 (e.g. step 1, first entry: g = 0.5 * 0.2 + 0.1 * 0.5 = 0.15,
  // m = 0.015, v = 2.25e-5, step size 0.01 / 0.1, denominator sqrt(2.25e-5) / sqrt(0.001) + 1e-8
  // = 0.15 + 1e-8, p = 0.5 - 0.1 * 0.015 / (0.15 + 1e-8) = 0.4900000006666666).
  const std::vector<std::vector<double>> params = {
      {0.4900000006666666, -1.4900000002857143, -0.009999800003999918},
      {0.4833492006357781, -1.483320716993913, -0.002561778070858815},
      {0.47592342090810913, -1.4760728167577981, 0.0031894699160115777}};
  const std::vector<double> m3 = {0.01939349201235778, -0.043093207172510556, -0.09007511598074455};
  const std::vector<double> v3 = {2.7834032000598177e-05, 0.0001442585249945764, 0.0010009992741281599};
  for (DType dt : {DType::F32, DType::F64}) {
    const bool f32 = dt == DType::F32;
    const std::string what = std::string("adam ") + dtype_name(dt);
    // The float64 reference loop reproduces the hand-computed numbers.
    std::vector<double> rp = {0.5, -1.5, 0.0}, rm(3, 0.0), rv(3, 0.0);
    Tensor p = test::from_doubles({0.5, -1.5, 0.0}, Shape{3}, dt, dev, ctx);
    Tensor m = Tensor::zeros(Shape{3}, dt, dev, ctx), v = Tensor::zeros(Shape{3}, dt, dev, ctx);
    for (int t = 1; t <= 3; ++t) {
      AdamStep s;
      s.lr = 0.01;
      s.weight_decay = 0.1;
      s.grad_scale = 0.5;
      s.step = t;
      ref_adam_step(rp, grads[t - 1], rm, rv, s);
      test::check_close(rp, params[t - 1], 1e-15, 0,
                        what + ": float64 reference loop, step " + std::to_string(t));
      Tensor g = test::from_doubles(grads[t - 1], Shape{3}, dt, dev, ctx);
      adam_update(p, g, m, v, s, ctx);
      // float32: a few roundings of values of size ~1 per step, and gradients rounded to float32.
      test::check_close(test::to_doubles(p, ctx), params[t - 1], f32 ? 1e-6 : 1e-14, f32 ? 1e-7 : 1e-16,
                        what + ": param after step " + std::to_string(t));
    }
    test::check_close(test::to_doubles(m, ctx), m3, f32 ? 1e-5 : 1e-13, f32 ? 1e-9 : 1e-17, what + ": m");
    test::check_close(test::to_doubles(v, ctx), v3, f32 ? 1e-5 : 1e-13, f32 ? 1e-12 : 1e-20, what + ": v");
  }
}

NSAMP_DEVICE_TEST("adam_update: random tensors at large and tiny gradient magnitudes against float64") {
  Context ctx(dev);
  struct Case {
    Shape shape;
    double grad_mag, weight_decay, grad_scale;
    const char* what;
  };
  const Case cases[] = {{Shape{37, 19}, 1.0, 0.01, 0.7, "unit gradients"},
                        {Shape{37, 19}, 1e15, 0.0, 1.0, "huge gradients"},
                        {Shape{37, 19}, 1e-15, 0.0, 1.0, "tiny gradients (eps dominates)"},
                        {Shape{1, 5}, 1.0, 0.1, 2.0, "single row"},
                        {Shape{300, 200}, 1.0, 0.01, 0.3, "parallel size"}};
  std::uint64_t seed = 400;
  for (DType dt : {DType::F32, DType::F64}) {
    const bool f32 = dt == DType::F32;
    for (const Case& c : cases) {
      const std::string what = std::string("adam ") + c.what + " " + dtype_name(dt);
      const Tensor p_host = test::randn(c.shape, dt, Device::cpu(), ctx, ++seed);
      std::vector<Tensor> g_host;
      for (int t = 0; t < 3; ++t)
        g_host.push_back(test::randn(c.shape, dt, Device::cpu(), ctx, ++seed, c.grad_mag));
      AdamStep s;
      s.lr = 3e-3;
      s.beta1 = 0.8;
      s.beta2 = 0.99;
      s.weight_decay = c.weight_decay;
      s.grad_scale = c.grad_scale;
      std::vector<double> rp = test::to_doubles(p_host, ctx), rm(rp.size(), 0.0), rv(rp.size(), 0.0);
      for (int t = 1; t <= 3; ++t) {
        s.step = t;
        ref_adam_step(rp, test::to_doubles(g_host[t - 1], ctx), rm, rv, s);
      }
      auto run = [&](Device d, int which) {
        Tensor p = p_host.to(d, ctx);
        Tensor m = Tensor::zeros(c.shape, dt, d, ctx), v = Tensor::zeros(c.shape, dt, d, ctx);
        AdamStep st = s;
        for (int t = 1; t <= 3; ++t) {
          st.step = t;
          Tensor g = g_host[t - 1].to(d, ctx);
          adam_update(p, g, m, v, st, ctx);
        }
        return test::to_doubles(which == 0 ? p : which == 1 ? m : v, ctx);
      };
      // Parameters move by ~lr per step: float32 keeps them to a few ulps of their size. The moments are
      // accurate relative to the gradient's magnitude (m) and its square (v).
      const double gm = c.grad_mag * c.grad_scale;
      test::check_backend(
          dev, [&](Device d) { return run(d, 0); }, rp, f32 ? 1e-6 : 1e-14, f32 ? 1e-7 : 1e-16,
          what + ": param");
      test::check_backend(
          dev, [&](Device d) { return run(d, 1); }, rm, f32 ? 1e-5 : 1e-13, (f32 ? 1e-6 : 1e-15) * gm,
          what + ": m");
      test::check_backend(
          dev, [&](Device d) { return run(d, 2); }, rv, f32 ? 1e-5 : 1e-13, (f32 ? 1e-6 : 1e-15) * gm * gm,
          what + ": v");
    }
  }
  // Step 1 without decay or scaling moves every parameter by lr against the gradient's sign (|g| >> eps).
  Tensor p = test::from_doubles({1.0, 1.0, 1.0, 1.0}, Shape{4}, DType::F64, dev, ctx);
  Tensor g = test::from_doubles({3.0, -1e-3, 1e6, -2.0}, Shape{4}, DType::F64, dev, ctx);
  Tensor m = Tensor::zeros(Shape{4}, DType::F64, ctx), v = Tensor::zeros(Shape{4}, DType::F64, ctx);
  AdamStep s;
  s.lr = 0.1;
  adam_update(p, g, m, v, s, ctx);
  test::check_close(test::to_doubles(p, ctx), {0.9, 1.1, 0.9, 1.1}, 1e-5, 0,
                    "adam first step is lr * sign(g)");
}

NSAMP_DEVICE_TEST("adam_update: bad arguments and aliasing name the op") {
  Context ctx(dev);
  const std::string at = "@" + dev.str();
  Tensor p = Tensor::zeros(Shape{4, 3}, DType::F32, ctx), g = Tensor::zeros(Shape{4, 3}, DType::F32, ctx);
  Tensor m = Tensor::zeros(Shape{4, 3}, DType::F32, ctx), v = Tensor::zeros(Shape{4, 3}, DType::F32, ctx);
  AdamStep s;
  Tensor g_bad = Tensor::zeros(Shape{3, 4}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(
      adam_update(p, g_bad, m, v, s, ctx),
      doctest::Contains(("adam_update: grad must have shape [4, 3], got float32[3, 4]" + at).c_str()), Error);
  Tensor v_bad = Tensor::zeros(Shape{12}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(adam_update(p, g, m, v_bad, s, ctx),
                       doctest::Contains("adam_update: v must have shape [4, 3]"), Error);
  Tensor m64 = Tensor::zeros(Shape{4, 3}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(adam_update(p, g, m64, v, s, ctx), doctest::Contains("adam_update: dtype mismatch"),
                       Error);
  CHECK_THROWS_WITH_AS(
      adam_update(p, g, m, m, s, ctx),
      doctest::Contains(
          ("adam_update: m float32[4, 3]" + at + " and v float32[4, 3]" + at + " share memory").c_str()),
      Error);
  CHECK_THROWS_WITH_AS(adam_update(p, p, m, v, s, ctx), doctest::Contains("adam_update: param"), Error);
  struct Bad {
    AdamStep s;
    const char* msg;
  };
  auto with = [](auto set) {
    AdamStep b;
    set(b);
    return b;
  };
  const Bad bad[] = {
      {with([](AdamStep& b) { b.step = 0; }), "step must be >= 1 (1-based), got 0"},
      {with([](AdamStep& b) { b.beta1 = 1.0; }), "beta1 must be in [0, 1), got 1"},
      {with([](AdamStep& b) { b.beta2 = -0.1; }), "beta2 must be in [0, 1), got -0.1"},
      {with([](AdamStep& b) { b.lr = -1e-3; }), "invalid learning rate -0.001"},
      {with([](AdamStep& b) { b.grad_scale = NAN; }), "grad_scale must be finite, got nan"},
      {with([](AdamStep& b) { b.grad_scale = INFINITY; }), "grad_scale must be finite, got inf"},
      {with([](AdamStep& b) { b.weight_decay = -1.0; }), "weight_decay must be finite and >= 0, got -1"},
      {with([](AdamStep& b) { b.eps = -1e-8; }), "eps must be finite and >= 0"}};
  for (const Bad& b : bad)
    CHECK_THROWS_WITH_AS(adam_update(p, g, m, v, b.s, ctx),
                         doctest::Contains((std::string("adam_update: ") + b.msg).c_str()), Error);
  // An empty parameter is a no-op, and the state of a failed call is untouched.
  Tensor e = Tensor::zeros(Shape{0, 3}, DType::F32, ctx), eg = Tensor::zeros(Shape{0, 3}, DType::F32, ctx);
  Tensor em = Tensor::zeros(Shape{0, 3}, DType::F32, ctx), ev = Tensor::zeros(Shape{0, 3}, DType::F32, ctx);
  adam_update(e, eg, em, ev, s, ctx);
  test::check_close(test::to_doubles(p, ctx), std::vector<double>(12, 0.0), 0, 0, "param untouched");
}

NSAMP_DEVICE_TEST("ema_update: against float64 - decay 0 copies - decay 1 keeps") {
  Context ctx(dev);
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Shape& shape : {Shape{37, 19}, Shape{1, 7}, Shape{0, 4}, Shape{300, 200}}) {
      const Tensor e_host = test::randn(shape, dt, Device::cpu(), ctx, 500);
      const Tensor p_host = test::randn(shape, dt, Device::cpu(), ctx, 501, 10.0);
      const std::vector<double> ev = test::to_doubles(e_host, ctx), pv = test::to_doubles(p_host, ctx);
      for (double decay : {0.999, 0.5, 0.0, 1.0}) {
        std::vector<double> ref(ev.size());
        for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = decay * ev[i] + (1 - decay) * pv[i];
        const bool exact = decay == 0.0 || decay == 1.0;
        test::check_backend(
            dev,
            [&](Device d) {
              Tensor e = e_host.to(d, ctx), p = p_host.to(d, ctx);
              ema_update(e, p, decay, ctx);
              return test::to_doubles(e, ctx);
            },
            ref, exact ? 0 : (dt == DType::F32 ? 1e-6 : 1e-15), exact ? 0 : (dt == DType::F32 ? 1e-5 : 1e-14),
            "ema decay " + std::to_string(decay) + " " + shape.str() + " " + dtype_name(dt));
      }
    }
  }
  const std::string at = "@" + dev.str();
  Tensor e = Tensor::zeros(Shape{4, 3}, DType::F32, ctx), p = Tensor::zeros(Shape{3, 4}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(
      ema_update(e, p, 0.9, ctx),
      doctest::Contains(("ema_update: param must have shape [4, 3], got float32[3, 4]" + at).c_str()), Error);
  CHECK_THROWS_WITH_AS(ema_update(e, e, 1.5, ctx),
                       doctest::Contains("ema_update: decay must be in [0, 1], got 1.5"), Error);
  CHECK_THROWS_WITH_AS(ema_update(e, e, NAN, ctx),
                       doctest::Contains("ema_update: decay must be in [0, 1], got nan"), Error);
}
