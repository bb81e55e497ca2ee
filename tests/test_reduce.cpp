// Reduction family: rows and columns, every reduction, warp and block paths, and the edge cases (empty,
// single row, -inf rows, +inf, NaN, huge magnitudes), against float64 loops.
#include "nsamp/kernels/reduce.h"
#include "test_util.h"

using namespace nsamp;
using namespace nsamp::kernels;

namespace {

double ref_reduce(Reduce r, const std::vector<double>& v) {
  if (r == Reduce::Sum || r == Reduce::Mean || r == Reduce::SqNorm) {
    double s = 0;
    for (double x : v) s += r == Reduce::SqNorm ? x * x : x;
    return r == Reduce::Mean ? s / double(v.size()) : s;
  }
  double m = -INFINITY;
  for (double x : v) {
    if (std::isnan(x)) return NAN;
    m = std::max(m, x);
  }
  if (r == Reduce::Max || std::isinf(m)) return m;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

// Tolerance scale: a float32 reduction is accurate relative to the sum of magnitudes, not to the result.
double ref_scale(Reduce r, const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += r == Reduce::SqNorm ? x * x : std::abs(x);
  if (r == Reduce::Mean) s /= std::max<double>(1, double(v.size()));
  if (r == Reduce::Max || r == Reduce::LogSumExp) s = 1 + std::abs(ref_reduce(r, v));
  return s;
}

void check_reduction(Device dev, Context& ctx, Reduce r, bool rows, const Tensor& x_host,
                     const std::string& what) {
  const std::vector<double> xv = test::to_doubles(x_host, ctx);
  const std::int64_t R = x_host.rows(), C = x_host.cols();
  const std::int64_t n_out = rows ? R : C, n_in = rows ? C : R;
  std::vector<double> ref(static_cast<std::size_t>(n_out)), scale(ref.size());
  for (std::int64_t i = 0; i < n_out; ++i) {
    std::vector<double> v(static_cast<std::size_t>(n_in));
    for (std::int64_t k = 0; k < n_in; ++k) v[k] = rows ? xv[i * C + k] : xv[k * C + i];
    ref[i] = ref_reduce(r, v);
    scale[i] = ref_scale(r, v);
  }
  const double eps = x_host.dtype() == DType::F32 ? 1e-6 : 1e-14;
  auto run = [&](Device d) {
    Tensor x = x_host.to(d, ctx), out = Tensor::empty(Shape{n_out}, x_host.dtype(), d, ctx);
    if (rows)
      reduce_rows(r, x, out, ctx);
    else
      reduce_cols(r, x, out, ctx);
    return test::to_doubles(out, ctx);
  };
  // Per-element tolerance eps * scale_i, applied by normalising both sides.
  auto normalise = [&](std::vector<double> v) {
    for (std::size_t i = 0; i < v.size(); ++i)
      if (std::isfinite(v[i]) && std::isfinite(ref[i])) v[i] = (v[i] - ref[i]) / std::max(scale[i], 1e-300);
    return v;
  };
  std::vector<double> zero_ref = ref;
  for (std::size_t i = 0; i < zero_ref.size(); ++i)
    if (std::isfinite(zero_ref[i])) zero_ref[i] = 0;
  const std::vector<double> got = run(dev);
  test::check_close(normalise(got), zero_ref, 0, 16 * eps * std::log2(2.0 + double(n_in)),
                    what + " on " + dev.str());
  if (dev.is_cuda()) {
    std::vector<double> cpu = run(Device::cpu());
    test::check_close(normalise(got), normalise(cpu), 0, 16 * eps * std::log2(2.0 + double(n_in)),
                      what + ": cuda vs cpu");
  }
}

const Reduce kRowReductions[] = {Reduce::Sum, Reduce::Mean, Reduce::Max, Reduce::SqNorm, Reduce::LogSumExp};
const Reduce kColReductions[] = {Reduce::Sum, Reduce::Mean, Reduce::Max, Reduce::SqNorm};

}  // namespace

NSAMP_DEVICE_TEST("reduce: rows and columns of random matrices - warp and block paths") {
  Context ctx(dev);
  const Shape shapes[] = {Shape{1, 1},    Shape{1, 300},   Shape{300, 1},   Shape{37, 19},  Shape{5, 1024},
                          Shape{3, 1025}, Shape{2, 20000}, Shape{20000, 3}, Shape{513, 70}, Shape{2, 3, 17}};
  std::uint64_t seed = 500;
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Shape& s : shapes) {
      const Tensor x = test::randn(s, dt, Device::cpu(), ctx, ++seed, 2.0, 0.5);
      for (Reduce r : kRowReductions)
        check_reduction(dev, ctx, r, true, x,
                        std::string("rows ") + reduce_name(r) + " " + s.str() + " " + dtype_name(dt));
      for (Reduce r : kColReductions)
        check_reduction(dev, ctx, r, false, x,
                        std::string("cols ") + reduce_name(r) + " " + s.str() + " " + dtype_name(dt));
    }
  }
}

NSAMP_DEVICE_TEST("reduce: empty reductions follow the stated conventions") {
  Context ctx(dev);
  Tensor x = Tensor::empty(Shape{3, 0}, DType::F32, ctx);
  Tensor out = Tensor::empty(Shape{3}, DType::F32, ctx);
  const std::pair<Reduce, double> expect[] = {{Reduce::Sum, 0.0},
                                              {Reduce::Mean, NAN},
                                              {Reduce::Max, -INFINITY},
                                              {Reduce::SqNorm, 0.0},
                                              {Reduce::LogSumExp, -INFINITY}};
  for (auto [r, v] : expect) {
    reduce_rows(r, x, out, ctx);
    test::check_close(test::to_doubles(out, ctx), {v, v, v}, 0, 0,
                      std::string("rows of length 0: ") + reduce_name(r));
  }
  Tensor tall = Tensor::empty(Shape{0, 2}, DType::F64, ctx), cols = Tensor::empty(Shape{2}, DType::F64, ctx);
  for (auto [r, v] : expect) {
    if (r == Reduce::LogSumExp) continue;
    reduce_cols(r, tall, cols, ctx);
    test::check_close(test::to_doubles(cols, ctx), {v, v}, 0, 0,
                      std::string("columns of length 0: ") + reduce_name(r));
  }
  Tensor none = Tensor::empty(Shape{0}, DType::F64, ctx);
  reduce_rows(Reduce::Sum, tall, none, ctx);  // zero rows: nothing to do, no error
}

NSAMP_DEVICE_TEST("reduce: log-sum-exp is stable at huge magnitudes and exact for -inf - +inf and NaN rows") {
  Context ctx(dev);
  for (std::int64_t C : {4, 3000}) {  // warp path and block path
    for (DType dt : {DType::F32, DType::F64}) {
      CAPTURE(C);
      CAPTURE(dtype_name(dt));
      const double ninf = -INFINITY;
      std::vector<double> v(static_cast<std::size_t>(6 * C), 0.0);
      for (std::int64_t c = 0; c < C; ++c) {
        v[0 * C + c] = ninf;                     // all -inf
        v[1 * C + c] = c == 1 ? 3.0 : ninf;      // one finite value among -inf
        v[2 * C + c] = c == 0 ? INFINITY : 1.0;  // +inf
        v[3 * C + c] = c == C - 1 ? NAN : 1.0;   // NaN
        v[4 * C + c] = 1e4 + double(c % 3);      // exp would overflow without the max shift
        v[5 * C + c] = -1e4 - double(c % 3);     // exp would underflow to 0 everywhere
      }
      double s4 = 0, s5 = 0;
      for (std::int64_t c = 0; c < C; ++c) {
        s4 += std::exp(double(c % 3) - 2);
        s5 += std::exp(-double(c % 3));
      }
      const std::vector<double> ref = {ninf, 3.0, INFINITY, NAN, 1e4 + 2 + std::log(s4), -1e4 + std::log(s5)};
      Tensor x = test::from_doubles(v, Shape{6, C}, dt, dev, ctx), out = Tensor::empty(Shape{6}, dt, ctx);
      row_logsumexp(x, out, ctx);
      test::check_close(test::to_doubles(out, ctx), ref, dt == DType::F32 ? 1e-6 : 1e-14, 0, "special rows");
      // max propagates NaN too
      row_max(x, out, ctx);
      const std::vector<double> m = test::to_doubles(out, ctx);
      CHECK(m[0] == ninf);
      CHECK(m[2] == INFINITY);
      CHECK(std::isnan(m[3]));
    }
  }
}

NSAMP_DEVICE_TEST("softmax: rows sum to one and match float64 - including huge and -inf entries") {
  Context ctx(dev);
  for (std::int64_t C : {1, 7, 1000, 5000}) {
    for (DType dt : {DType::F32, DType::F64}) {
      const std::string what = "softmax C=" + std::to_string(C) + " " + dtype_name(dt);
      Tensor x_host = test::randn(Shape{9, C}, dt, Device::cpu(), ctx, 40 + C, 5.0);
      std::vector<double> xv = test::to_doubles(x_host, ctx);
      xv[0] = 1e4;                       // dominant entry far beyond exp's range
      if (C > 1) xv[C + 1] = -INFINITY;  // an impossible entry gets probability 0
      for (std::int64_t c = 0; c < C; ++c) xv[2 * C + c] = -INFINITY;  // no distribution: NaN row
      xv[3 * C] = INFINITY;  // +inf: no distribution either, the whole row is NaN
      x_host = test::from_doubles(xv, Shape{9, C}, dt, Device::cpu(), ctx);
      xv = test::to_doubles(x_host, ctx);
      std::vector<double> ref(xv.size());
      for (std::int64_t r = 0; r < 9; ++r) {
        const double l =
            ref_reduce(Reduce::LogSumExp, std::vector<double>(xv.begin() + r * C, xv.begin() + (r + 1) * C));
        for (std::int64_t c = 0; c < C; ++c)
          ref[r * C + c] = std::isinf(l) ? NAN : std::exp(xv[r * C + c] - l);
      }
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor x = x_host.to(d, ctx), y = Tensor::empty(x.shape(), dt, d, ctx);
            row_softmax(x, y, ctx);
            return test::to_doubles(y, ctx);
          },
          ref, dt == DType::F32 ? 2e-5 : 1e-12, dt == DType::F32 ? 1e-7 : 1e-15, what);
      // In place.
      Tensor x = x_host.to(dev, ctx);
      row_softmax(x, x, ctx);
      const std::vector<double> y = test::to_doubles(x, ctx);
      for (std::int64_t r = 4; r < 9; ++r) {
        double s = 0;
        for (std::int64_t c = 0; c < C; ++c) s += y[r * C + c];
        CHECK(std::abs(s - 1) < (dt == DType::F32 ? 1e-5 * std::log2(2.0 + double(C)) : 1e-12));
      }
    }
  }
}

NSAMP_DEVICE_TEST("reduce: argument errors name the op and the tensors") {
  Context ctx(dev);
  Tensor x = Tensor::empty(Shape{4, 5}, DType::F32, ctx);
  Tensor wrong = Tensor::empty(Shape{5}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(row_sum(x, wrong, ctx), doctest::Contains("reduce_rows(sum): out float32[5]"), Error);
  Tensor cols = Tensor::empty(Shape{4}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(col_mean(x, cols, ctx), doctest::Contains("one value per column"), Error);
  CHECK_THROWS_WITH_AS(reduce_cols(Reduce::LogSumExp, x, wrong, ctx),
                       doctest::Contains("not offered per column"), Error);
  Tensor y = Tensor::empty(Shape{5, 4}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(row_softmax(x, y, ctx), doctest::Contains("row_softmax: x must have shape [5, 4]"),
                       Error);
}
