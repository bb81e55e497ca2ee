// SDE family: the fused path-sampler step against a float64 reference written term by term, with the noise
// of fill_normal_at at the same counters.
#include <cmath>

#include "nsamp/core/fill.h"
#include "nsamp/kernels/sde.h"
#include "test_util.h"

using namespace nsamp;

namespace {

double clip(double v, double c) { return std::max(-c, std::min(c, v)); }

}  // namespace

NSAMP_DEVICE_TEST(
    "sde: the fused step matches the float64 reference of control - cost - Ito term and update") {
  Context ctx(dev);
  const std::int64_t B = 37, d = 7;  // d odd: rows start in the middle of Philox blocks
  kernels::SdeStepCoef k;
  k.h = 0.03;
  k.diffusion = 0.7;
  k.decay = 1.02;
  k.clip = 1.5;  // inputs of scale 2: every clip is active somewhere
  k.score_x = -0.3;
  k.score_g = -0.6;
  k.score_scale = 0.8;
  k.ref = -0.5;
  k.constant = 0.1;
  const std::uint64_t seed = 11, offset = 5;
  for (DType dt : {DType::F32, DType::F64})
    for (bool per_row : {false, true})
      for (bool with_cot : {false, true}) {
        CAPTURE(test::dtype_label(dt));
        CAPTURE(per_row);
        CAPTURE(with_cot);
        const Tensor x = test::randn(Shape{B, d}, dt, Device::cpu(), ctx, 1, 2.0);
        const Tensor nn = test::randn(Shape{B, d}, dt, Device::cpu(), ctx, 2, 2.0);
        const Tensor nt = test::randn(Shape{per_row ? B : 1}, dt, Device::cpu(), ctx, 3, 2.0);
        const Tensor g = test::randn(Shape{B, d}, dt, Device::cpu(), ctx, 4, 2.0);
        const Tensor R0 = test::randn(Shape{B}, dt, Device::cpu(), ctx, 5);
        const Tensor cot = test::randn(Shape{B}, dt, Device::cpu(), ctx, 6);
        Context host(Device::cpu());
        Tensor xi = Tensor::empty(Shape{B, d}, dt, Device::cpu(), host);
        fill_normal_at(xi, seed, offset, host);
        const auto xv = test::to_doubles(x, ctx), nv = test::to_doubles(nn, ctx),
                   tv = test::to_doubles(nt, ctx), gv = test::to_doubles(g, ctx),
                   rv = test::to_doubles(R0, ctx), cv = test::to_doubles(cot, ctx),
                   zv = test::to_doubles(xi, ctx);
        std::vector<double> ref_x(xv.size()), ref_R(rv), ref_ug(xv.size());
        for (std::int64_t b = 0; b < B; ++b) {
          double dr = k.constant;
          for (std::int64_t j = 0; j < d; ++j) {
            const std::size_t i = std::size_t(b * d + j);
            const double u = clip(nv[i], k.clip) + k.score_scale *
                                                       clip(k.score_x * xv[i] + k.score_g * gv[i], k.clip) *
                                                       clip(tv[per_row ? std::size_t(b) : 0], k.clip);
            const double dW = std::sqrt(k.h) * zv[i], diff = u - k.ref * xv[i];
            dr += 0.5 * k.h * diff * diff + diff * dW;
            ref_x[i] = k.decay * xv[i] + k.diffusion * (k.h * u + dW);
            ref_ug[i] = cv[std::size_t(b)] * dW;
          }
          ref_R[std::size_t(b)] += dr;
        }
        const double rtol = dt == DType::F32 ? 2e-5 : 1e-12, atol = dt == DType::F32 ? 2e-5 : 1e-12;
        auto run = [&](Device on, bool in_place) {
          Context c(on);
          Tensor X = x.to(on, c), R = R0.to(on, c), C = cot.to(on, c);
          Tensor XN = in_place ? X : Tensor::empty(Shape{B, d}, dt, on, c),
                 UG = Tensor::empty(Shape{B, d}, dt, on, c);
          kernels::sde_step(X, nn.to(on, c), nt.to(on, c), g.to(on, c), k, seed, offset, XN, R,
                            with_cot ? &C : nullptr, with_cot ? &UG : nullptr, c);
          std::vector<double> out = test::to_doubles(XN, c), r = test::to_doubles(R, c);
          out.insert(out.end(), r.begin(), r.end());
          if (with_cot) {
            const std::vector<double> u = test::to_doubles(UG, c);
            out.insert(out.end(), u.begin(), u.end());
          }
          return out;
        };
        std::vector<double> ref = ref_x;
        ref.insert(ref.end(), ref_R.begin(), ref_R.end());
        if (with_cot) ref.insert(ref.end(), ref_ug.begin(), ref_ug.end());
        test::check_backend(
            dev, [&](Device on) { return run(on, false); }, ref, rtol, atol, "sde_step");
        test::check_close(run(dev, true), ref, rtol, atol, "sde_step in place");
      }
}

TEST_CASE("sde: bad operands are reported with the op and the shapes" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu());
  const Tensor x = Tensor::zeros(Shape{4, 3}, DType::F64, ctx), nt = Tensor::zeros(Shape{1}, DType::F64, ctx);
  Tensor xn = Tensor::zeros(Shape{4, 3}, DType::F64, ctx), R = Tensor::zeros(Shape{4}, DType::F64, ctx);
  const Tensor bad = Tensor::zeros(Shape{4, 2}, DType::F64, ctx);
  kernels::SdeStepCoef k;
  k.h = 0.1;
  CHECK_THROWS_WITH_AS(kernels::sde_step(x, bad, nt, x, k, 0, 0, xn, R, nullptr, nullptr, ctx),
                       doctest::Contains("sde_step: nn must have shape [4, 3]"), Error);
  Tensor R3 = Tensor::zeros(Shape{3}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(kernels::sde_step(x, x, nt, x, k, 0, 0, xn, R3, nullptr, nullptr, ctx),
                       doctest::Contains("one value per path"), Error);
  const Tensor nt2 = Tensor::zeros(Shape{2}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(kernels::sde_step(x, x, nt2, x, k, 0, 0, xn, R, nullptr, nullptr, ctx),
                       doctest::Contains("nt must hold 1 or 4 values"), Error);
  const Tensor xf = Tensor::zeros(Shape{4, 3}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(kernels::sde_step(xf, x, nt, x, k, 0, 0, xn, R, nullptr, nullptr, ctx),
                       doctest::Contains("dtype mismatch"), Error);
  k.h = -1;
  CHECK_THROWS_WITH_AS(kernels::sde_step(x, x, nt, x, k, 0, 0, xn, R, nullptr, nullptr, ctx),
                       doctest::Contains("h >= 0"), Error);
}

NSAMP_DEVICE_TEST(
    "sde: the truncated-normal prior follows its rejection rule - repeats rows - stays in bounds") {
  Context ctx(dev);
  const std::int64_t points = 50, repeats = 3, d = 7;
  const std::uint64_t seed = 21, offset = 40;
  const double a = 0.8, scale = 1.7;  // a small bound, so that several rounds are needed somewhere
  const int rounds = 4;
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(test::dtype_label(dt));
    const std::uint64_t stride = rng_counters(points * d, dt) + 3;
    // Reference: whole Philox fills per round (fill_normal_at), the rule applied entry by entry.
    Context host(Device::cpu());
    std::vector<std::vector<double>> draws;
    for (int r = 0; r < rounds; ++r) {
      Tensor z = Tensor::empty(Shape{points, d}, dt, Device::cpu(), host);
      fill_normal_at(z, seed, offset + std::uint64_t(r) * stride, host);
      draws.push_back(test::to_doubles(z, host));
    }
    std::vector<double> ref;
    int clamped = 0, late = 0;
    for (std::int64_t p = 0; p < points; ++p)
      for (std::int64_t k = 0; k < repeats; ++k)
        for (std::int64_t c = 0; c < d; ++c) {
          const std::size_t e = std::size_t(p * d + c);
          double v = draws[0][e];
          int r = 1;
          for (; r < rounds && std::abs(v) > a; ++r) v = draws[std::size_t(r)][e];
          if (std::abs(v) > a) v = std::copysign(a, v), clamped += k == 0;
          late += k == 0 && r > 2;
          ref.push_back(scale * v);
        }
    CHECK(clamped > 0);  // every branch of the rule is exercised
    CHECK(late > 0);
    auto run = [&](Device on) {
      Context c(on);
      Tensor x = Tensor::empty(Shape{points * repeats, d}, dt, on, c);
      kernels::truncated_normal_rows(x, seed, offset, stride, rounds, a, repeats, scale, c);
      return test::to_doubles(x, c);
    };
    test::check_backend(dev, run, ref, dt == DType::F32 ? 1e-6 : 1e-14, 1e-6, "truncated_normal_rows");
    const std::vector<double> got = run(dev);
    for (double v : got) CHECK(std::abs(v) <= a * scale * (1 + 1e-6));
  }
  Tensor x = Tensor::empty(Shape{6, 2}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(kernels::truncated_normal_rows(x, 0, 0, 100, 8, 1.0, 4, 1.0, ctx),
                       doctest::Contains("repeats 4 must divide"), Error);
  CHECK_THROWS_WITH_AS(kernels::truncated_normal_rows(x, 0, 0, 1, 8, 1.0, 1, 1.0, ctx),
                       doctest::Contains("round_stride 1 is below"), Error);
}

NSAMP_DEVICE_TEST("sde: the log-variance loss and its cotangent match float64 sums over usable paths") {
  Context ctx(dev);
  const double drop = 50.0, dim = 3.0;
  for (DType dt : {DType::F32, DType::F64})
    for (std::int64_t group : {std::int64_t(4), std::int64_t(600)}) {
      CAPTURE(test::dtype_label(dt));
      CAPTURE(group);
      const std::int64_t B = 1200;
      std::vector<double> r =
          test::to_doubles(test::randn(Shape{B}, DType::F64, Device::cpu(), ctx, 8, 3.0, 1.0), ctx);
      // Unusable paths: NaN, infinities and R >= drop, and for small groups one group with a single survivor.
      for (std::int64_t i = 0; i < B; i += 7)
        r[std::size_t(i)] = (i / 7) % 3 == 0 ? NAN : (i / 7) % 3 == 1 ? INFINITY : drop + 1;
      if (group == 4) r[4] = r[5] = r[6] = NAN;
      // Reference with the values as the op sees them (rounded to dt).
      std::vector<double> rv(r);
      if (dt == DType::F32)
        for (double& v : rv) v = double(float(v));
      std::vector<double> cot(std::size_t(B), 0.0);
      double total = 0;
      std::int64_t used = 0, groups_used = 0;
      for (std::int64_t g = 0; g < B / group; ++g) {
        std::vector<std::int64_t> ok;
        for (std::int64_t j = g * group; j < (g + 1) * group; ++j)
          if (std::isfinite(rv[std::size_t(j)]) && rv[std::size_t(j)] < drop) ok.push_back(j);
        if (ok.size() < 2) continue;
        double m = 0;
        for (std::int64_t j : ok) m += rv[std::size_t(j)];
        m /= double(ok.size());
        double var = 0;
        for (std::int64_t j : ok) var += (rv[std::size_t(j)] - m) * (rv[std::size_t(j)] - m);
        total += var / double(ok.size() - 1);
        for (std::int64_t j : ok) cot[std::size_t(j)] = 2 * (rv[std::size_t(j)] - m) / double(ok.size() - 1);
        used += std::int64_t(ok.size());
        ++groups_used;
      }
      for (double& c : cot) c /= double(groups_used) * dim;
      std::vector<double> ref = cot;
      ref.push_back(total / (double(groups_used) * dim));
      ref.push_back(double(used));
      auto run = [&](Device on) {
        Context c(on);
        const Tensor R = test::from_doubles(r, Shape{B}, dt, on, c);
        Tensor C = Tensor::empty(Shape{B}, dt, on, c), st = Tensor::empty(Shape{2}, DType::F64, on, c);
        kernels::log_variance_loss(R, group, drop, dim, C, st, c);
        std::vector<double> out = test::to_doubles(C, c);
        for (double v : test::to_doubles(st, c)) out.push_back(v);
        return out;
      };
      test::check_backend(dev, run, ref, dt == DType::F32 ? 1e-6 : 1e-12, 1e-12, "log_variance_loss");
    }
  // No usable group: the loss is NaN (the optimiser skips the step) and the cotangent is zero.
  const Tensor R = test::from_doubles({NAN, 1.0, INFINITY, 2.0}, Shape{4}, DType::F32, dev, ctx);
  Tensor C = Tensor::empty(Shape{4}, DType::F32, dev, ctx),
         st = Tensor::empty(Shape{2}, DType::F64, dev, ctx);
  kernels::log_variance_loss(R, 2, drop, dim, C, st, ctx);
  const std::vector<double> s = test::to_doubles(st, ctx);
  CHECK(std::isnan(s[0]));
  CHECK(s[1] == 0);
  for (double v : test::to_doubles(C, ctx)) CHECK(v == 0);
  CHECK_THROWS_WITH_AS(kernels::log_variance_loss(R, 3, drop, dim, C, st, ctx), doctest::Contains("group 3"),
                       Error);
}

NSAMP_DEVICE_TEST("sde: the KL loss and its cotangent match float64 sums over the finite paths") {
  Context ctx(dev);
  const double dim = 5.0;
  const std::int64_t B = 1300;  // several passes of the CUDA block
  std::vector<double> r =
      test::to_doubles(test::randn(Shape{B}, DType::F64, Device::cpu(), ctx, 12, 40.0, -3.0), ctx);
  for (std::int64_t i = 0; i < B; i += 11) r[std::size_t(i)] = (i / 11) % 2 == 0 ? NAN : -INFINITY;
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(test::dtype_label(dt));
    std::vector<double> rv(r);
    if (dt == DType::F32)
      for (double& v : rv) v = double(float(v));
    double total = 0, n = 0;
    for (double v : rv)
      if (std::isfinite(v)) total += v, n += 1;
    std::vector<double> ref;
    for (double v : rv) ref.push_back(std::isfinite(v) ? 1.0 / (n * dim) : 0.0);
    ref.push_back(total / (n * dim));
    ref.push_back(n);
    auto run = [&](Device on) {
      Context c(on);
      const Tensor R = test::from_doubles(r, Shape{B}, dt, on, c);
      Tensor C = Tensor::empty(Shape{B}, dt, on, c), st = Tensor::empty(Shape{2}, DType::F64, on, c);
      kernels::kl_path_loss(R, dim, C, st, c);
      std::vector<double> out = test::to_doubles(C, c);
      for (double v : test::to_doubles(st, c)) out.push_back(v);
      return out;
    };
    test::check_backend(dev, run, ref, dt == DType::F32 ? 1e-7 : 1e-13, 1e-13, "kl_path_loss");
  }
  // No finite path: the loss is NaN (the optimiser skips the step) and the cotangent is zero.
  const Tensor R = test::from_doubles({NAN, INFINITY}, Shape{2}, DType::F32, dev, ctx);
  Tensor C = Tensor::empty(Shape{2}, DType::F32, dev, ctx),
         st = Tensor::empty(Shape{2}, DType::F64, dev, ctx);
  kernels::kl_path_loss(R, dim, C, st, ctx);
  const std::vector<double> sv = test::to_doubles(st, ctx);
  CHECK(std::isnan(sv[0]));
  CHECK(sv[1] == 0);
  for (double v : test::to_doubles(C, ctx)) CHECK(v == 0);
  CHECK_THROWS_WITH_AS(kernels::kl_path_loss(R, dim, C, C, ctx), doctest::Contains("stats"), Error);
}
