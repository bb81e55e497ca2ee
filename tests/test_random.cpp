// Philox4x32-10 and the random fills: known answers, distribution moments, counter layout, backend agreement.
#include "nsamp/core/philox.h"
#include "test_util.h"

using namespace nsamp;

TEST_CASE("philox: Random123 known-answer vectors" * doctest::test_suite("cpu")) {
  // From Random123's kat_vectors for philox4x32_10.
  auto r = philox::philox4x32_10(philox::U32x4{{0, 0, 0, 0}}, 0, 0);
  CHECK(r.v[0] == 0x6627e8d5u);
  CHECK(r.v[1] == 0xe169c58du);
  CHECK(r.v[2] == 0xbc57ac4cu);
  CHECK(r.v[3] == 0x9b00dbd8u);
  r = philox::philox4x32_10(philox::U32x4{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu,
                            0xffffffffu);
  CHECK(r.v[0] == 0x408f276du);
  CHECK(r.v[1] == 0x41c83b0eu);
  CHECK(r.v[2] == 0xa20bc7c6u);
  CHECK(r.v[3] == 0x6d5451fdu);
  r = philox::philox4x32_10(philox::U32x4{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u,
                            0x299f31d0u);
  CHECK(r.v[0] == 0xd16cfe09u);
  CHECK(r.v[1] == 0x94fdccebu);
  CHECK(r.v[2] == 0x5001e420u);
  CHECK(r.v[3] == 0x24126ea1u);
}

TEST_CASE("philox: uniforms stay inside the open interval at the extremes" * doctest::test_suite("cpu")) {
  CHECK(philox::uniform_f32(0u) > 0.0f);
  CHECK(philox::uniform_f32(0xffffffffu) < 1.0f);
  CHECK(philox::uniform_f64(0u, 0u) > 0.0);
  CHECK(philox::uniform_f64(0xffffffffu, 0xffffffffu) < 1.0);
}

namespace {
struct Moments {
  double mean = 0, var = 0, skew = 0, kurt = 0, lo = INFINITY, hi = -INFINITY;
};
Moments moments(const std::vector<double>& v) {
  Moments m;
  for (double x : v) m.mean += x;
  m.mean /= double(v.size());
  for (double x : v) {
    const double d = x - m.mean;
    m.var += d * d;
    m.skew += d * d * d;
    m.kurt += d * d * d * d;
    m.lo = std::min(m.lo, x);
    m.hi = std::max(m.hi, x);
  }
  m.var /= double(v.size());
  m.skew /= double(v.size()) * std::pow(m.var, 1.5);
  m.kurt /= double(v.size()) * m.var * m.var;
  return m;
}
}  // namespace

NSAMP_DEVICE_TEST("fill: uniform and normal moments (n = 2^20 - 5-sigma bounds)") {
  Context ctx(dev, 1234);
  const std::int64_t n = 1 << 20;
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(dtype_name(dt));
    Tensor u = Tensor::empty(Shape{n}, dt, ctx);
    fill_uniform(u, ctx, -2.0, 3.0);
    const Moments mu = moments(test::to_doubles(u, ctx));
    // U(-2, 3): mean 0.5, variance 25/12; standard error of the mean sqrt(25/12/n) = 1.4e-3.
    CHECK(std::abs(mu.mean - 0.5) < 5 * 1.41e-3);
    CHECK(std::abs(mu.var - 25.0 / 12.0) < 5 * 25.0 / 12.0 * std::sqrt(0.8 / double(n)));
    CHECK(mu.lo > -2.0);
    CHECK(mu.hi < 3.0);
    Tensor z = Tensor::empty(Shape{n}, dt, ctx);
    fill_normal(z, ctx, 1.0, 2.0);
    const Moments mz = moments(test::to_doubles(z, ctx));
    CHECK(std::abs(mz.mean - 1.0) < 5 * 2.0 / std::sqrt(double(n)));
    CHECK(std::abs(mz.var - 4.0) < 5 * 4.0 * std::sqrt(2.0 / double(n)));
    CHECK(std::abs(mz.skew) < 5 * std::sqrt(6.0 / double(n)));
    CHECK(std::abs(mz.kurt - 3.0) < 5 * std::sqrt(24.0 / double(n)));
  }
}

NSAMP_DEVICE_TEST("fill: element k comes from counter offset + k / per-counter - whatever the tensor size") {
  Context ctx(dev);
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(dtype_name(dt));
    const std::int64_t per = dt == DType::F32 ? 4 : 2;
    Tensor whole = Tensor::empty(Shape{103}, dt, ctx);
    fill_normal_at(whole, 99, 10, ctx);
    // The tail starting at element 8*per, filled on its own from counter 10 + 8.
    Tensor tail = Tensor::empty(Shape{103 - 8 * per}, dt, ctx);
    fill_normal_at(tail, 99, 18, ctx);
    std::vector<double> w = test::to_doubles(whole, ctx);
    test::check_close(test::to_doubles(tail, ctx), std::vector<double>(w.begin() + 8 * per, w.end()), 0, 0,
                      "suffix of a fill");
    // A different seed or offset gives different numbers.
    Tensor other = Tensor::empty(Shape{103}, dt, ctx);
    fill_normal_at(other, 100, 10, ctx);
    CHECK(test::to_doubles(other, ctx) != w);
    CHECK(rng_counters(103, dt) == std::uint64_t((103 + per - 1) / per));
  }
}

NSAMP_DEVICE_TEST("fill: the context's stream advances - and a reset replays it") {
  Context ctx(dev, 5);
  Tensor a = Tensor::empty(Shape{10}, DType::F32, ctx), b = Tensor::empty(Shape{10}, DType::F32, ctx);
  fill_uniform(a, ctx);
  CHECK(ctx.rng_offset() == 3);
  fill_uniform(b, ctx);
  CHECK(ctx.rng_offset() == 6);
  CHECK(test::to_doubles(a, ctx) != test::to_doubles(b, ctx));
  ctx.set_rng_state(5, 0);
  Tensor c = Tensor::empty(Shape{10}, DType::F32, ctx);
  fill_uniform(c, ctx);
  test::check_close(test::to_doubles(c, ctx), test::to_doubles(a, ctx), 0, 0, "replayed stream");
}

NSAMP_DEVICE_TEST("fill: the same seed and offset give the same numbers on this backend as on the CPU") {
  Context ctx(dev), host;
  for (DType dt : {DType::F32, DType::F64}) {
    CAPTURE(dtype_name(dt));
    Tensor u = Tensor::empty(Shape{4097}, dt, ctx), hu = Tensor::empty(Shape{4097}, dt, host);
    Tensor z = Tensor::empty(Shape{4097}, dt, ctx), hz = Tensor::empty(Shape{4097}, dt, host);
    // A scale and shift that are not powers of two: the device must not fuse a * u + b into one rounding.
    fill_uniform_at(u, 11, 77, ctx, -2.0, 3.0);
    fill_uniform_at(hu, 11, 77, host, -2.0, 3.0);
    fill_normal_at(z, 11, 77, ctx, 0.3, 1.7);
    fill_normal_at(hz, 11, 77, host, 0.3, 1.7);
    // Uniforms are exact integer arithmetic and two correctly rounded operations; normals go through
    // log/cos/sin, accurate to a few ulp either side.
    test::check_close(test::to_doubles(u, ctx), test::to_doubles(hu, host), 0, 0, "uniform");
    test::check_close(test::to_doubles(z, ctx), test::to_doubles(hz, host), dt == DType::F32 ? 2e-6 : 1e-14,
                      dt == DType::F32 ? 2e-6 : 1e-14, "normal");
    Tensor k = Tensor::empty(Shape{5}, dt, ctx);
    fill_constant(k, -2.5, ctx);
    for (double v : test::to_doubles(k, ctx)) CHECK(v == -2.5);
  }
  Tensor t = Tensor::empty(Shape{3}, DType::F32, ctx);
  const std::uint64_t offset = ctx.rng_offset();
  CHECK_THROWS_WITH_AS(fill_normal(t, ctx, 0, -1), doctest::Contains("negative standard deviation"), Error);
  CHECK(ctx.rng_offset() == offset);  // a rejected fill consumes no counters
  CHECK_THROWS_WITH_AS(fill_uniform(t, ctx, 2, 1), doctest::Contains("low 2 > high 1"), Error);
}
