// DiKL family: noise levels, stage-A proposals and tilts, Gumbel-max rows, the adaptive MALA step and the
// recorded scalars, each against float64 loops written from dikl.md's formulas (on the gpu suite also
// against the CPU path). And the MALA kernels reading their step from device memory.
#include <cmath>
#include <limits>

#include "nsamp/core/fill.h"
#include "nsamp/core/rng_counter.h"
#include "nsamp/kernels/dikl.h"
#include "nsamp/kernels/mcmc.h"
#include "nsamp/samplers/dikl.h"
#include "nsamp/samplers/mala.h"
#include "nsamp/targets/target.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

NSAMP_DEVICE_TEST("dikl kernels: noise levels are uniform on 1 .. L - 1 with their schedule values") {
  const s::DiklSchedule sch = s::DiklSchedule::make(1e-4, 0.7, true, 30);
  const std::int64_t B = 2000;
  std::vector<double> u(static_cast<std::size_t>(B));
  for (std::int64_t i = 0; i < B; ++i) u[std::size_t(i)] = (double(i) + 0.5) / double(B);
  u[0] = 1e-300;       // the smallest uniform: level 1
  u[1] = 1 - 0x1p-53;  // the largest: level L - 1
  u[2] = 1.0 / 29;     // on a boundary: floor gives level 2
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(test::dtype_label(dt));
    std::vector<double> ref;
    for (double ui : u) {
      const int k = 1 + std::min(28, int(std::floor(ui * 29)));
      ref.insert(ref.end(), {double(k), sch.alpha[std::size_t(k)], sch.sigma[std::size_t(k)],
                             sch.weight[std::size_t(k)]});
    }
    auto run = [&](Device on) {
      Context c(on);
      const Tensor U = Tensor::from_vector(u, Shape{B}, on, c), table = s::schedule_table(sch, c);
      s::DiklLevels l{Tensor::empty(Shape{B, 1}, dt, c), Tensor::empty(Shape{B, 1}, dt, c),
                      Tensor::empty(Shape{B, 1}, dt, c), Tensor::empty(Shape{B, 1}, dt, c)};
      kernels::dikl_levels(U, table, l.time, l.alpha, l.sigma, l.weight, c);
      std::vector<std::vector<double>> cols;
      for (const Tensor* x : {&l.time, &l.alpha, &l.sigma, &l.weight})
        cols.push_back(test::to_doubles(*x, c));
      std::vector<double> out;
      for (std::int64_t i = 0; i < B; ++i)
        for (const auto& col : cols) out.push_back(col[std::size_t(i)]);
      return out;
    };
    test::check_backend(dev, run, ref, dt == DType::F32 ? 1e-7 : 0, 0, "dikl_levels");
  }
  // draw_levels: every level appears, none outside 1 .. L - 1, and the levels match levels_at's columns.
  Context ctx(dev, 5);
  const Tensor table = s::schedule_table(sch, ctx);
  const s::DiklLevels l = s::draw_levels(table, 5800, DType::F64, ctx);
  std::vector<int> t;
  std::vector<int> count(30, 0);
  for (double v : test::to_doubles(l.time, ctx)) {
    REQUIRE((v >= 1 && v <= 29 && v == std::floor(v)));
    t.push_back(int(v));
    ++count[std::size_t(v)];
  }
  for (int k = 1; k < 30; ++k) CHECK(count[std::size_t(k)] > 100);  // 200 expected, sd 14
  const s::DiklLevels at = s::levels_at(sch, t, DType::F64, ctx);
  CHECK(test::to_doubles(at.sigma, ctx) == test::to_doubles(l.sigma, ctx));
  CHECK(test::to_doubles(at.weight, ctx) == test::to_doubles(l.weight, ctx));
  Tensor bad = Tensor::zeros(Shape{2, 30}, DType::F64, ctx),
         out = Tensor::empty(Shape{4, 1}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(
      kernels::dikl_levels(Tensor::zeros(Shape{4}, DType::F64, ctx), bad, out, out, out, out, ctx),
      doctest::Contains("float64 [3, L >= 2]"), Error);
}

NSAMP_DEVICE_TEST("dikl kernels: stage-A proposals - their tilt and the tilt coefficient") {
  const std::int64_t B = 37, d = 5, n = 7, P = B * n;
  Context host;
  const std::vector<double> xt =
      test::to_doubles(test::randn(Shape{B, d}, DType::F64, Device::cpu(), host, 1, 300.0), host);
  std::vector<double> a(static_cast<std::size_t>(B)), sg(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) {
    a[std::size_t(b)] = 0.05 + 0.9 * double(b) / double(B);  // small a: proposals past +-1000 get clipped
    sg[std::size_t(b)] = std::sqrt(1 - a[std::size_t(b)] * a[std::size_t(b)]);
  }
  const std::vector<double> xi =
      test::to_doubles(test::randn(Shape{P, d}, DType::F64, Device::cpu(), host, 2), host);
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(test::dtype_label(dt));
    std::vector<double> ref;
    bool clipped = false;
    for (std::int64_t p = 0; p < P; ++p) {
      const std::int64_t b = p / n;
      for (std::int64_t j = 0; j < d; ++j) {
        const double v = xt[std::size_t(b * d + j)] / a[std::size_t(b)] +
                         sg[std::size_t(b)] / a[std::size_t(b)] * xi[std::size_t(p * d + j)];
        clipped = clipped || std::abs(v) > 1000;
        ref.push_back(std::max(-1000.0, std::min(1000.0, v)));
      }
    }
    CHECK(clipped);
    for (std::int64_t p = 0; p < P; ++p)
      for (std::int64_t j = 0; j < d; ++j) ref.push_back(xt[std::size_t(p / n * d + j)]);
    for (std::int64_t p = 0; p < P; ++p) ref.push_back(a[std::size_t(p / n)]);
    for (std::int64_t p = 0; p < P; ++p)
      ref.push_back(0.5 / (sg[std::size_t(p / n)] * sg[std::size_t(p / n)]));
    for (std::int64_t b = 0; b < B; ++b) ref.push_back(0.5 / (sg[std::size_t(b)] * sg[std::size_t(b)]));
    auto run = [&](Device on) {
      Context c(on);
      const Tensor X = test::from_doubles(xt, Shape{B, d}, dt, on, c),
                   A = test::from_doubles(a, Shape{B, 1}, dt, on, c),
                   S = test::from_doubles(sg, Shape{B}, dt, on, c),
                   Z = test::from_doubles(xi, Shape{P, d}, dt, on, c);
      Tensor x0 = Tensor::empty(Shape{P, d}, dt, c), xr = Tensor::empty(Shape{P, d}, dt, c),
             ar = Tensor::empty(Shape{P}, dt, c), cr = Tensor::empty(Shape{P}, dt, c),
             cb = Tensor::empty(Shape{B}, dt, c);
      kernels::dikl_proposals(X, A, S, Z, n, x0, xr, ar, cr, c);
      kernels::tilt_coefficient(S, cb, c);
      std::vector<double> out;
      for (const Tensor* t : {&x0, &xr, &ar, &cr, &cb}) {
        const std::vector<double> v = test::to_doubles(*t, c);
        out.insert(out.end(), v.begin(), v.end());
      }
      return out;
    };
    // float32: a / s and s / a rounded to float, then two float products: a few ulps of values up to 1e3
    test::check_backend(dev, run, ref, dt == DType::F32 ? 1e-6 : 1e-14, dt == DType::F32 ? 1e-4 : 1e-11,
                        "dikl_proposals");
  }
  Context ctx(dev);
  Tensor x = Tensor::zeros(Shape{3, 2}, DType::F32, ctx), p = Tensor::empty(Shape{6, 2}, DType::F32, ctx),
         r = Tensor::empty(Shape{6}, DType::F32, ctx), a2 = Tensor::zeros(Shape{2}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(kernels::dikl_proposals(x, a2, a2, p, 2, p, p, r, r, ctx),
                       doctest::Contains("a must hold one value per row"), Error);
}

NSAMP_DEVICE_TEST("dikl kernels: Gumbel-max rows against the same uniforms on the host") {
  const std::int64_t G = 400, n = 9;
  Context host;
  std::vector<double> lw =
      test::to_doubles(test::randn(Shape{G * n}, DType::F64, Device::cpu(), host, 3, 2.0), host);
  const double inf = std::numeric_limits<double>::infinity();
  for (std::int64_t i = 0; i < n; ++i) lw[std::size_t(5 * n + i)] = -inf;  // group 5: all -inf
  for (std::int64_t i = 0; i < n; ++i)
    lw[std::size_t(6 * n + i)] = std::numeric_limits<double>::quiet_NaN();  // 6: NaN
  lw[std::size_t(7 * n + 4)] = 1e300;                                       // group 7: one dominant weight
  const std::uint64_t seed = 11, offset = 1234;
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(test::dtype_label(dt));
    Tensor u = Tensor::empty(Shape{G * n}, DType::F64, Device::cpu(), host);
    fill_uniform_at(u, seed, offset, host);
    const std::vector<double> uv = test::to_doubles(u, host);
    const std::vector<double> lwt =
        test::to_doubles(test::from_doubles(lw, Shape{G * n}, dt, Device::cpu(), host), host);
    std::vector<double> ref;
    for (std::int64_t g = 0; g < G; ++g) {
      double best = -inf;
      std::int64_t pick = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        const double v = lwt[std::size_t(g * n + i)] - std::log(-std::log(uv[std::size_t(g * n + i)]));
        if (v > best) best = v, pick = i;
      }
      ref.push_back(double(g * n + pick));
    }
    CHECK(ref[5] == 5 * n);
    CHECK(ref[6] == 6 * n);
    CHECK(ref[7] == 7 * n + 4);
    auto run = [&](Device on) {
      Context c(on);
      RngCounter base(c, offset - 34);  // the offset read from device memory: 34 + *base
      const Tensor W = test::from_doubles(lw, Shape{G * n}, dt, on, c);
      Tensor rows = Tensor::empty(Shape{G}, DType::I32, c);
      kernels::gumbel_max_rows(W, n, seed, base.at(34), rows, c);
      std::vector<double> out;
      for (std::int32_t r : rows.to_vector<std::int32_t>(c)) out.push_back(double(r));
      return out;
    };
    test::check_backend(dev, run, ref, 0, 0, "gumbel_max_rows");
  }
}

NSAMP_DEVICE_TEST("dikl kernels: the adaptive MALA step and the recorded scalars") {
  Context ctx(dev);
  const std::int64_t B = 700;  // more than one pass of the CUDA block
  struct Case {
    double accepted_per_chain;  // of 4 steps
    double step_after;
  };
  for (DType dt : {DType::F32, DType::F64})
    for (const Case& cs : {Case{3.0, 0.15}, Case{2.2, 0.1}, Case{1.0, 0.1 / 1.5}}) {
      CAPTURE(test::dtype_label(dt));
      CAPTURE(cs.accepted_per_chain);
      std::vector<double> acc(static_cast<std::size_t>(B));
      double total = 0;
      const double lo = std::floor(cs.accepted_per_chain);
      const int extra = int(std::lround(5 * (cs.accepted_per_chain - lo)));
      for (std::int64_t b = 0; b < B; ++b) {  // counts of 4 steps with the case's mean (B is a multiple of 5)
        acc[std::size_t(b)] = lo + (b % 5 < extra ? 1 : 0);
        total += acc[std::size_t(b)];
      }
      const Tensor A = test::from_doubles(acc, Shape{B}, dt, dev, ctx);
      for (bool adaptive : {false, true}) {
        Tensor step = Tensor::from_vector(std::vector<double>{0.1}, Shape{1}, dev, ctx),
               rate = Tensor::empty(Shape{1}, DType::F64, ctx);
        kernels::mala_adapt(A, 4, adaptive, step, rate, ctx);
        CHECK(rate.to_doubles(ctx)[0] == doctest::Approx(total / (4.0 * B)).epsilon(1e-15));
        CHECK(step.to_doubles(ctx)[0] == doctest::Approx(adaptive ? cs.step_after : 0.1).epsilon(1e-15));
      }
    }
  Tensor stats = Tensor::zeros(Shape{3}, DType::F64, ctx);
  const Tensor v32 = Tensor::from_vector(std::vector<float>{1.5f}, Shape{1}, dev, ctx),
               v64 = Tensor::from_vector(std::vector<double>{0.25}, Shape{1}, dev, ctx);
  kernels::record_scalar(v32, stats, 1, false, ctx);
  kernels::record_scalar(v64, stats, 1, true, ctx);
  kernels::record_scalar(v64, stats, 2, false, ctx);
  CHECK(stats.to_doubles(ctx) == std::vector<double>{0, 1.75, 0.25});
  CHECK_THROWS_WITH_AS(kernels::record_scalar(v64, stats, 3, false, ctx), doctest::Contains("slot 3 outside"),
                       Error);
}

NSAMP_DEVICE_TEST("mcmc: chains reading their step from device memory match a fixed step - fused or not") {
  // The same chains with step 0.2 given as a number and as a device value, on a dense target (fused step)
  // and with the fused path off (the unfused sequence's kernels read it), tilted; then a changed device
  // value changes the next steps like set_step would.
  auto t = targets::make_target("gmm40");
  for (bool fused : {true, false}) {
    CAPTURE(fused);
    auto run = [&](bool device_step) {
      Context ctx(dev, 9);
      const std::int64_t B = 64, d = 2;
      const Tensor x0 = test::randn(Shape{B, d}, DType::F64, dev, ctx, 4, 10.0);
      const Tensor xt = test::randn(Shape{B, d}, DType::F64, dev, ctx, 5, 5.0);
      kernels::GaussianTilt tilt{xt, Tensor::from_vector(std::vector<double>(B, 0.8), Shape{B}, dev, ctx),
                                 Tensor::from_vector(std::vector<double>(B, 0.5 / 0.36), Shape{B}, dev, ctx),
                                 1.0};
      s::MalaChains ch(*t, x0, 0.2, ctx, tilt);
      ch.set_fused(fused);
      Tensor st = Tensor::from_vector(std::vector<double>{0.2}, Shape{1}, dev, ctx);
      if (device_step) ch.set_step(st);
      ch.run(5);
      if (device_step)
        fill_constant(st, 0.05, ctx);
      else
        ch.set_step(0.05);
      ch.run(5);
      std::vector<double> out = test::to_doubles(ch.x(), ctx);
      const std::vector<double> acc = test::to_doubles(ch.accepted(), ctx);
      out.insert(out.end(), acc.begin(), acc.end());
      return out;
    };
    const std::vector<double> fixed = run(false), on_device = run(true);
    CHECK(fixed == on_device);
  }
  Context ctx(dev);
  s::MalaChains ch(*t, Tensor::zeros(Shape{2, 2}, DType::F64, ctx), 0.1, ctx);
  CHECK_THROWS_WITH_AS(ch.set_step(Tensor::zeros(Shape{1}, DType::F32, ctx)),
                       doctest::Contains("a device step must be one float64"), Error);
}
