// iDEM / IW-SM family: noise levels, loss weights with IW-SM's self-normalised weights, buffer indices and
// the running sums, each against float64 loops written from the spec's formulas.
#include <cmath>
#include <limits>

#include "nsamp/core/fill.h"
#include "nsamp/kernels/idem.h"
#include "test_util.h"

using namespace nsamp;

NSAMP_DEVICE_TEST("idem kernels: the VE noise levels - the buffer density's scale and shift - lambda(t)") {
  Context ctx(dev);
  const std::int64_t B = 300;
  kernels::VeLevels v;
  v.sigma_min = 1e-3;
  v.sigma_max = 3.0;
  v.coord_scale = 2.5;
  v.d_eff = 6;
  v.buffer_rows = 777;
  v.lambda_h = true;
  v.lambda_eps = 0.1;
  std::vector<double> u(static_cast<std::size_t>(B));
  for (std::int64_t i = 0; i < B; ++i) u[std::size_t(i)] = (double(i) + 0.5) / double(B);
  for (std::int64_t groups : {0, 1, 7, 300})
    for (DType dt : {DType::F32, DType::F64}) {
      CAPTURE(test::dtype_label(dt));
      CAPTURE(groups);
      v.time_groups = groups;
      // groups 0: t = u; else point i shares group g = i mod groups' stratified time (g + u_g) / groups.
      std::vector<double> t(static_cast<std::size_t>(B));
      for (std::int64_t i = 0; i < B; ++i)
        t[std::size_t(i)] = groups == 0 ? u[std::size_t(i)]
                                        : (double(i % groups) + u[std::size_t(i % groups)]) / double(groups);
      std::vector<double> ref;
      const double pi = std::acos(-1.0);
      for (double ti : t) {
        const double h = v.sigma_min * v.sigma_min * std::expm1(2 * ti * std::log(v.sigma_max / v.sigma_min));
        const double s = std::sqrt(h);
        ref.insert(ref.end(), {ti, s, v.coord_scale * s, 0.5 / h,
                               -std::log(777.0) - 0.5 * v.d_eff * std::log(2 * pi * h), h + v.lambda_eps});
      }
      auto run = [&](Device on) {
        Context c(on);
        const Tensor T = Tensor::from_vector(u, Shape{B}, on, c);
        Tensor tc = Tensor::empty(Shape{B, 1}, dt, on, c), sg = Tensor::empty(Shape{B, 1}, dt, on, c),
               sx = Tensor::empty(Shape{B}, dt, on, c), sc = Tensor::empty(Shape{B}, dt, on, c),
               sh = Tensor::empty(Shape{B}, DType::F64, on, c),
               la = Tensor::empty(Shape{B}, DType::F64, on, c);
        kernels::idem_noise_levels(T, v, tc, sg, sx, sc, sh, la, c);
        std::vector<std::vector<double>> cols;
        for (const Tensor* x : {&tc, &sg, &sx, &sc, &sh, &la}) cols.push_back(test::to_doubles(*x, c));
        std::vector<double> out;
        for (std::int64_t i = 0; i < B; ++i)
          for (const auto& col : cols) out.push_back(col[std::size_t(i)]);
        return out;
      };
      test::check_backend(dev, run, ref, dt == DType::F32 ? 2e-7 : 1e-12, 1e-12, "idem_noise_levels");
    }
  Tensor T = Tensor::zeros(Shape{4}, DType::F32, ctx), x = Tensor::empty(Shape{4, 1}, DType::F32, ctx),
         y = Tensor::empty(Shape{4}, DType::F32, ctx), z = Tensor::empty(Shape{4}, DType::F64, ctx);
  v.time_groups = 0;
  CHECK_THROWS_WITH_AS(kernels::idem_noise_levels(T, v, x, x, y, y, z, z, ctx),
                       doctest::Contains("t must be float64"), Error);
  Tensor T64 = Tensor::zeros(Shape{4}, DType::F64, ctx);
  v.time_groups = 5;
  CHECK_THROWS_WITH_AS(kernels::idem_noise_levels(T64, v, x, x, y, y, z, z, ctx),
                       doctest::Contains("time_groups 5 outside [0, batch 4]"), Error);
}

NSAMP_DEVICE_TEST("idem kernels: loss weights with self-normalised importance weights and their ESS") {
  Context ctx(dev);
  const std::int64_t B = 700;  // more than one pass of the CUDA block
  const double dim = 5;
  const std::vector<double> lp = test::to_doubles(
                                test::randn(Shape{B}, DType::F64, Device::cpu(), ctx, 1, 2.0), ctx),
                            ks = test::to_doubles(
                                test::randn(Shape{B}, DType::F64, Device::cpu(), ctx, 2, 2.0), ctx),
                            sh = test::to_doubles(test::randn(Shape{B}, DType::F64, Device::cpu(), ctx, 3),
                                                  ctx);
  std::vector<double> lam(static_cast<std::size_t>(B));
  for (std::int64_t i = 0; i < B; ++i) lam[std::size_t(i)] = 0.1 + 0.01 * double(i % 17);
  // groups: 0 and 1 (the whole batch), 7 (groups of 100), 96 (more groups than the CUDA block's warps,
  // of 7 or 8 members), B (every point alone: iDEM's 1/B); the uniform mixture's share 0, 0.3 and 1.
  for (DType dt : {DType::F32, DType::F64})
    for (bool iw : {true, false})
      for (std::int64_t groups : {0, 1, 7, 96, 700})
        for (double mix : {0.0, 0.3, 1.0}) {
          CAPTURE(test::dtype_label(dt));
          CAPTURE(iw);
          CAPTURE(groups);
          CAPTURE(mix);
          std::vector<double> lpv = lp, ksv = ks;
          if (groups < B) {  // a row with a non-finite log-weight weighs 0 (alone in its group: NaN, below)
            lpv[3] = NAN;
            lpv[10] = -INFINITY;
          }
          auto rd = [&](double x) { return dt == DType::F32 ? double(float(x)) : x; };
          std::vector<double> w(std::size_t(B), 1.0 / double(B));
          double ess = 1;
          if (iw) {
            std::vector<double> l(static_cast<std::size_t>(B));
            for (std::int64_t i = 0; i < B; ++i)
              l[std::size_t(i)] = rd(lpv[std::size_t(i)]) - rd(rd(ksv[std::size_t(i)]) + sh[std::size_t(i)]);
            // A softmax over each group's members (all rows for groups 0), scaled to the group's share.
            const std::int64_t G = std::max<std::int64_t>(groups, 1);
            for (std::int64_t g = 0; g < G; ++g) {
              std::vector<std::size_t> mem;
              for (std::int64_t i = 0; i < B; ++i)
                if (i % G == g) mem.push_back(std::size_t(i));
              double m = -INFINITY, s = 0;
              for (std::size_t i : mem)
                if (std::isfinite(l[i])) m = std::max(m, l[i]);
              for (std::size_t i : mem) s += (w[i] = std::isfinite(l[i]) ? std::exp(l[i] - m) : 0.0);
              for (std::size_t i : mem) w[i] = w[i] / s * double(mem.size()) / double(B);
            }
            for (double& x : w) x = (1 - mix) * x + mix / double(B);
            double s2 = 0;
            for (double x : w) s2 += x * x;
            ess = 1 / (double(B) * s2);
            if (groups < B && mix == 0) CHECK(w[3] == 0);
            if (groups < B && mix > 0) CHECK(w[3] == mix / double(B));  // defensive: no row weighs 0
            if (groups == B)
              for (double x : w) CHECK(std::abs(x - 1.0 / double(B)) < 1e-18);  // iDEM's weights
          }
          std::vector<double> ref;
          for (std::int64_t i = 0; i < B; ++i) ref.push_back(lam[std::size_t(i)] * w[std::size_t(i)] / dim);
          ref.push_back(ess);
          auto run = [&](Device on) {
            Context c(on);
            const Tensor LP = test::from_doubles(lpv, Shape{B}, dt, on, c),
                         KS = test::from_doubles(ksv, Shape{B}, dt, on, c),
                         SH = Tensor::from_vector(sh, Shape{B}, on, c),
                         LA = Tensor::from_vector(lam, Shape{B}, on, c);
            Tensor coef = Tensor::empty(Shape{B}, dt, on, c), e = Tensor::empty(Shape{1}, DType::F64, on, c);
            kernels::idem_loss_weights(iw ? &LP : nullptr, iw ? &KS : nullptr, SH, LA, dim, coef, e, c,
                                       groups, mix);
            std::vector<double> out = test::to_doubles(coef, c);
            out.push_back(test::to_doubles(e, c)[0]);
            return out;
          };
          test::check_backend(dev, run, ref, dt == DType::F32 ? 1e-6 : 1e-12, 1e-15, "idem_loss_weights");
        }
  // No finite log-weight: NaN weights (the loss becomes NaN and the step is skipped).
  const Tensor LP = test::from_doubles({NAN, NAN}, Shape{2}, DType::F32, dev, ctx),
               KS = Tensor::zeros(Shape{2}, DType::F32, dev, ctx),
               SH = Tensor::zeros(Shape{2}, DType::F64, dev, ctx);
  Tensor coef = Tensor::empty(Shape{2}, DType::F32, dev, ctx),
         e = Tensor::empty(Shape{1}, DType::F64, dev, ctx);
  kernels::idem_loss_weights(&LP, &KS, SH, SH, 1.0, coef, e, ctx);
  for (double c : test::to_doubles(coef, ctx)) CHECK(std::isnan(c));
  CHECK_THROWS_WITH_AS(kernels::idem_loss_weights(&LP, nullptr, SH, SH, 1.0, coef, e, ctx),
                       doctest::Contains("come together"), Error);
  // One of two groups with no finite log-weight: that group's weights are NaN, the other's its softmax.
  const Tensor LP2 = test::from_doubles({NAN, 0.5, NAN, 1.5}, Shape{4}, DType::F64, dev, ctx),
               KS2 = Tensor::zeros(Shape{4}, DType::F64, dev, ctx),
               SH2 = Tensor::zeros(Shape{4}, DType::F64, dev, ctx);
  Tensor coef2 = Tensor::empty(Shape{4}, DType::F64, dev, ctx),
         one2 = Tensor::empty(Shape{4}, DType::F64, dev, ctx);
  fill_constant(one2, 1.0, ctx);
  kernels::idem_loss_weights(&LP2, &KS2, SH2, one2, 1.0, coef2, e, ctx, 2);
  const std::vector<double> c2 = test::to_doubles(coef2, ctx);
  CHECK(std::isnan(c2[0]));
  CHECK(std::isnan(c2[2]));
  // Group 1 (rows 1 and 3, log-weights 0.5 and 1.5): its softmax 1 / (1 + e), e / (1 + e), times its share
  // 1/2.
  const double ee = std::exp(1.0);
  CHECK(c2[1] == doctest::Approx(0.5 / (1 + ee)).epsilon(1e-14));
  CHECK(c2[3] == doctest::Approx(0.5 * ee / (1 + ee)).epsilon(1e-14));
  // With the uniform mixture (m = 0.5) the NaN group stays NaN (the step is skipped, not trained as iDEM's)
  // and the other's weights are 0.5 softmax share + 0.5 / B.
  kernels::idem_loss_weights(&LP2, &KS2, SH2, one2, 1.0, coef2, e, ctx, 2, 0.5);
  const std::vector<double> c3 = test::to_doubles(coef2, ctx);
  CHECK(std::isnan(c3[0]));
  CHECK(std::isnan(c3[2]));
  CHECK(c3[1] == doctest::Approx(0.25 / (1 + ee) + 0.125).epsilon(1e-14));
  CHECK(c3[3] == doctest::Approx(0.25 * ee / (1 + ee) + 0.125).epsilon(1e-14));
  CHECK_THROWS_WITH_AS(kernels::idem_loss_weights(&LP2, &KS2, SH2, SH2, 1.0, coef2, e, ctx, 5),
                       doctest::Contains("groups 5 outside [0, batch 4]"), Error);
  CHECK_THROWS_WITH_AS(kernels::idem_loss_weights(&LP2, &KS2, SH2, SH2, 1.0, coef2, e, ctx, 2, 1.5),
                       doctest::Contains("uniform_mix 1.5 outside [0, 1]"), Error);
}

NSAMP_DEVICE_TEST(
    "idem kernels: buffer indices cover 0 .. size - 1 and the running sums skip non-finite losses") {
  Context ctx(dev);
  const std::vector<double> u{0.0, 1e-9, 0.4999, 0.5, 0.99999999, 1.0 - 1e-17, 0.731};
  const std::int64_t n = std::int64_t(u.size()), size = 10;
  Tensor U = Tensor::from_vector(u, Shape{n}, dev, ctx), idx = Tensor::empty(Shape{n}, DType::I32, dev, ctx);
  kernels::buffer_indices(U, size, idx, ctx);
  const std::vector<std::int32_t> got = idx.to_vector<std::int32_t>(ctx);
  const std::vector<std::int32_t> want{0, 0, 4, 5, 9, 9, 7};
  CHECK(got == want);
  CHECK_THROWS_WITH_AS(kernels::buffer_indices(U, 0, idx, ctx), doctest::Contains("buffer size 0"), Error);
  Tensor acc = Tensor::zeros(Shape{4}, DType::F64, dev, ctx),
         ess = Tensor::empty(Shape{1}, DType::F64, dev, ctx);
  Tensor loss = Tensor::empty(Shape{1}, DType::F32, dev, ctx);
  double want_sum = 0;
  for (double l : {1.5, 2.25, double(NAN), 0.125}) {
    fill_constant(loss, l, ctx);
    fill_constant(ess, 0.5, ctx);
    kernels::idem_accumulate(loss, ess, acc, ctx);
    if (std::isfinite(l)) want_sum += l;
  }
  const std::vector<double> a = test::to_doubles(acc, ctx);
  CHECK(std::isnan(a[0]));  // the log's mean shows a non-finite step, as before
  CHECK(a[1] == 2.0);
  CHECK(a[2] == want_sum);
  CHECK(a[3] == 3.0);
}
