// GEMM family: every transpose combination, alpha/beta, degenerate sizes and the linear layer, against
// float64.
#include "nsamp/kernels/gemm.h"
#include "test_util.h"

using namespace nsamp;
using namespace nsamp::kernels;

namespace {

std::vector<double> ref_gemm(const std::vector<double>& a, bool ta, const std::vector<double>& b, bool tb,
                             const std::vector<double>& c0, std::int64_t M, std::int64_t N, std::int64_t K,
                             double alpha, double beta) {
  std::vector<double> c(static_cast<std::size_t>(M * N));
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (std::int64_t k = 0; k < K; ++k)
        s += (ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
      c[i * N + j] = alpha * s + (beta == 0 ? 0.0 : beta * c0[i * N + j]);
    }
  return c;
}

}  // namespace

NSAMP_DEVICE_TEST("gemm: all transposes and sizes - alpha and beta - against float64") {
  Context ctx(dev);
  struct Size {
    std::int64_t M, N, K;
  };
  const Size sizes[] = {{1, 1, 1},  {7, 5, 3}, {64, 33, 17}, {129, 65, 100}, {1, 40, 9},
                        {40, 1, 9}, {0, 4, 3}, {4, 0, 3},    {5, 6, 0}};
  std::uint64_t seed = 100;
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Size& s : sizes) {
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        for (auto [alpha, beta] : {std::pair<double, double>{1.0, 0.0}, {-0.5, 2.0}}) {
          const std::string what = std::string("gemm ") + dtype_name(dt) + " M=" + std::to_string(s.M) +
                                   " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
                                   (ta ? " A^T" : "") + (tb ? " B^T" : "") +
                                   " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta);
          const Tensor a =
              test::randn(ta ? Shape{s.K, s.M} : Shape{s.M, s.K}, dt, Device::cpu(), ctx, ++seed);
          const Tensor b =
              test::randn(tb ? Shape{s.N, s.K} : Shape{s.K, s.N}, dt, Device::cpu(), ctx, ++seed);
          const Tensor c0 = test::randn(Shape{s.M, s.N}, dt, Device::cpu(), ctx, ++seed);
          const std::vector<double> ref = ref_gemm(test::to_doubles(a, ctx), ta, test::to_doubles(b, ctx), tb,
                                                   test::to_doubles(c0, ctx), s.M, s.N, s.K, alpha, beta);
          // Error of a length-K float32 dot product: a few eps * sqrt(K) relative to the |a||b| scale
          // (~sqrt(K)).
          const double atol = dt == DType::F32 ? 1e-5 * (1 + double(s.K)) : 1e-12 * (1 + double(s.K));
          test::check_backend(
              dev,
              [&](Device d) {
                Tensor A = a.to(d, ctx), B = b.to(d, ctx), C = c0.to(d, ctx);
                gemm(A, ta, B, tb, C, alpha, beta, ctx);
                return test::to_doubles(C, ctx);
              },
              ref, dt == DType::F32 ? 1e-5 : 1e-12, atol, what);
        }
      }
    }
  }
}

NSAMP_DEVICE_TEST("gemm: beta = 0 ignores NaN already in C") {
  Context ctx(dev);
  Tensor a = test::randn(Shape{8, 4}, DType::F32, dev, ctx, 1);
  Tensor b = test::randn(Shape{4, 6}, DType::F32, dev, ctx, 2);
  Tensor c = Tensor::empty(Shape{8, 6}, DType::F32, ctx);
  fill_constant(c, NAN, ctx);
  gemm(a, false, b, false, c, 1.0, 0.0, ctx);
  for (float v : c.to_vector<float>(ctx)) CHECK(std::isfinite(v));
  Tensor e = Tensor::empty(Shape{8, 0}, DType::F32, ctx), f = Tensor::empty(Shape{0, 6}, DType::F32, ctx);
  fill_constant(c, NAN, ctx);
  gemm(e, false, f, false, c, 1.0, 0.0, ctx);  // K = 0: C = 0
  for (float v : c.to_vector<float>(ctx)) CHECK(v == 0.0f);
}

NSAMP_DEVICE_TEST("linear: y = x W^T + b - with and without bias") {
  Context ctx(dev);
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x = test::randn(Shape{300, 24}, dt, Device::cpu(), ctx, 5);
    const Tensor w = test::randn(Shape{10, 24}, dt, Device::cpu(), ctx, 6);
    const Tensor bias = test::randn(Shape{10}, dt, Device::cpu(), ctx, 7);
    const std::vector<double> xv = test::to_doubles(x, ctx), wv = test::to_doubles(w, ctx),
                              bv = test::to_doubles(bias, ctx);
    for (bool with_bias : {true, false}) {
      std::vector<double> ref(300 * 10);
      for (int i = 0; i < 300; ++i)
        for (int o = 0; o < 10; ++o) {
          double s = with_bias ? bv[o] : 0.0;
          for (int k = 0; k < 24; ++k) s += xv[i * 24 + k] * wv[o * 24 + k];
          ref[i * 10 + o] = s;
        }
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor y = Tensor::empty(Shape{300, 10}, dt, d, ctx);
            linear(x.to(d, ctx), w.to(d, ctx), with_bias ? bias.to(d, ctx) : Tensor(), y, ctx);
            return test::to_doubles(y, ctx);
          },
          ref, dt == DType::F32 ? 1e-5 : 1e-12, dt == DType::F32 ? 2e-5 : 1e-12,
          std::string("linear ") + dtype_name(dt) + (with_bias ? " with bias" : " without bias"));
    }
  }
}

NSAMP_DEVICE_TEST("gemm: shape - rank and aliasing errors name the tensors") {
  Context ctx(dev);
  Tensor a = Tensor::empty(Shape{3, 4}, DType::F32, ctx), b = Tensor::empty(Shape{5, 6}, DType::F32, ctx);
  Tensor c = Tensor::empty(Shape{3, 6}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(gemm(a, false, b, false, c, 1, 0, ctx),
                       doctest::Contains("shapes do not agree: op(A) [3, 4]"), Error);
  Tensor v = Tensor::empty(Shape{3}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(gemm(v, false, b, false, c, 1, 0, ctx), doctest::Contains("needs 2-D tensors"), Error);
  Tensor sq = Tensor::empty(Shape{4, 4}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(gemm(sq, false, sq, false, sq, 1, 0, ctx), doctest::Contains("must not share memory"),
                       Error);
  Tensor w = Tensor::empty(Shape{2, 4}, DType::F32, ctx), bias = Tensor::empty(Shape{3}, DType::F32, ctx);
  Tensor y = Tensor::empty(Shape{3, 2}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(linear(a, w, bias, y, ctx), doctest::Contains("does not match W"), Error);
}
