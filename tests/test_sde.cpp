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

NSAMP_DEVICE_TEST("sde: the fused step matches the float64 reference of control, cost, Ito term and update") {
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
