// Elementwise family: broadcasting arithmetic, affine maps and activations against float64 loops, derivatives
// against central finite differences.
#include "nsamp/kernels/elementwise.h"
#include "test_util.h"

using namespace nsamp;
using namespace nsamp::kernels;

namespace {

double ref_binary(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::Add:
      return a + b;
    case BinaryOp::Sub:
      return a - b;
    case BinaryOp::Mul:
      return a * b;
    default:
      return a / b;
  }
}

// Independent float64 formulas (not the library's element math).
double ref_act(Activation act, double x) {
  switch (act) {
    case Activation::Identity:
      return x;
    case Activation::ReLU:
      return x > 0 ? x : 0;
    case Activation::SiLU:
      return x / (1 + std::exp(-x));
    case Activation::GELU:
      return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case Activation::Tanh:
      return std::tanh(x);
    case Activation::Sigmoid:
      return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
    default:
      return x > 30 ? x : std::log1p(std::exp(x));
  }
}

const Activation kActs[] = {Activation::Identity, Activation::ReLU,    Activation::SiLU,    Activation::GELU,
                            Activation::Tanh,     Activation::Sigmoid, Activation::Softplus};

}  // namespace

NSAMP_DEVICE_TEST("binary: add/sub/mul/div with every broadcast form against float64") {
  Context ctx(dev);
  struct Case {
    Shape out, b;
    const char* form;
  };
  const Case cases[] = {{Shape{37, 19}, Shape{37, 19}, "same shape"},
                        {Shape{37, 19}, Shape{19}, "row vector [C]"},
                        {Shape{37, 19}, Shape{1, 19}, "row vector [1, C]"},
                        {Shape{37, 19}, Shape{37, 1}, "column vector"},
                        {Shape{37, 19}, Shape{1}, "scalar"},
                        {Shape{2, 5, 7}, Shape{7}, "rank 3, row vector"},
                        {Shape{2, 5, 7}, Shape{2, 5, 1}, "rank 3, column vector"},
                        {Shape{1, 300}, Shape{300}, "single row"},
                        {Shape{0, 4}, Shape{4}, "empty batch"},
                        {Shape{5000, 9}, Shape{9}, "parallel size"}};
  std::uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Case& c : cases) {
      for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
        const std::string what = std::string(binary_op_name(op)) + " " + c.form + " " + dtype_name(dt);
        ++seed;
        const Tensor a_host = test::randn(c.out, dt, Device::cpu(), ctx, seed);
        const Tensor b_host =
            test::randn(c.b, dt, Device::cpu(), ctx, seed + 1000, 1.0, 3.0);  // away from 0 for div
        const std::vector<double> av = test::to_doubles(a_host, ctx), bv = test::to_doubles(b_host, ctx);
        std::vector<double> ref(static_cast<std::size_t>(c.out.numel()));
        const std::int64_t R = c.out.rows(), C = c.out.cols();
        for (std::int64_t r = 0; r < R; ++r)
          for (std::int64_t k = 0; k < C; ++k) {
            double bval;
            if (c.b == c.out)
              bval = bv[r * C + k];
            else if (c.b.numel() == 1)
              bval = bv[0];
            else if (c.b.cols() == C && c.b.rows() == 1)
              bval = bv[k];
            else
              bval = bv[r];
            ref[r * C + k] = ref_binary(op, av[r * C + k], bval);
          }
        test::check_backend(
            dev,
            [&](Device d) {
              Tensor a = a_host.to(d, ctx), b = b_host.to(d, ctx);
              Tensor out = Tensor::empty(c.out, dt, d, ctx);
              binary(op, a, b, out, ctx);
              return test::to_doubles(out, ctx);
            },
            ref, test::elem_rtol(dt), 0, what);
        // The broadcast operand may come first as well.
        if (c.b != c.out && op == BinaryOp::Sub) {
          std::vector<double> ref_rev(ref.size());
          for (std::size_t i = 0; i < ref.size(); ++i) ref_rev[i] = -ref[i];
          test::check_backend(
              dev,
              [&](Device d) {
                Tensor a = a_host.to(d, ctx), b = b_host.to(d, ctx);
                Tensor out = Tensor::empty(c.out, dt, d, ctx);
                sub(b, a, out, ctx);
                return test::to_doubles(out, ctx);
              },
              ref_rev, test::elem_rtol(dt), 0, what + " (broadcast first)");
        }
      }
    }
  }
}

NSAMP_DEVICE_TEST("binary: in place - overflow to infinity - and clear shape errors") {
  Context ctx(dev);
  Tensor a = test::from_doubles({1e30, -1e30, 2.0, 0.0}, Shape{4}, DType::F32, dev, ctx);
  Tensor b = test::from_doubles({1e30, 1e30, 0.0, 0.0}, Shape{4}, DType::F32, dev, ctx);
  Tensor out = Tensor::empty(Shape{4}, DType::F32, ctx);
  mul(a, b, out, ctx);
  test::check_close(test::to_doubles(out, ctx), {INFINITY, -INFINITY, 0.0, 0.0}, 0, 0, "float32 overflow");
  div(a, b, out, ctx);
  test::check_close(test::to_doubles(out, ctx), {1.0, -1.0, INFINITY, NAN}, 0, 0, "division by zero");
  add(a, b, a, ctx);  // out aliases a
  test::check_close(test::to_doubles(a, ctx), {2e30, 0.0, 2.0, 0.0}, 1e-7, 0, "in place");

  Tensor m = Tensor::empty(Shape{3, 4}, DType::F32, ctx);
  Tensor bad = Tensor::empty(Shape{3}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(add(m, bad, m, ctx),
                       doctest::Contains(("b float32[3]@" + dev.str() + " does not broadcast").c_str()),
                       Error);
  Tensor buf = Tensor::empty(Shape{6, 4}, DType::F32, ctx);
  Tensor lo = buf.slice_rows(0, 3), hi = buf.slice_rows(1, 4);
  CHECK_THROWS_WITH_AS(add(lo, m, hi, ctx), doctest::Contains("overlaps a"), Error);
  Tensor d64 = Tensor::empty(Shape{3, 4}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(add(m, d64, m, ctx), doctest::Contains("add: dtype mismatch"), Error);
  if (dev.is_cuda()) {
    Tensor h = Tensor::empty(Shape{3, 4}, DType::F32, Device::cpu(), ctx);
    CHECK_THROWS_WITH_AS(add(m, h, m, ctx), doctest::Contains("device mismatch"), Error);
  }
}

NSAMP_DEVICE_TEST("affine: alpha times a + beta") {
  Context ctx(dev);
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor a_host = test::randn(Shape{33, 7}, dt, Device::cpu(), ctx, 9);
    std::vector<double> ref = test::to_doubles(a_host, ctx);
    for (double& v : ref) v = -1.5 * v + 0.25;
    test::check_backend(
        dev,
        [&](Device d) {
          Tensor a = a_host.to(d, ctx), out = Tensor::empty(a.shape(), dt, d, ctx);
          affine(a, -1.5, 0.25, out, ctx);
          return test::to_doubles(out, ctx);
        },
        ref, test::elem_rtol(dt), 1e-7, std::string("affine ") + dtype_name(dt));
  }
}

NSAMP_DEVICE_TEST("activations: forward and backward against float64 - including large magnitudes") {
  Context ctx(dev);
  // Random values of several scales, plus the extremes where naive formulas overflow.
  std::vector<double> xs;
  Context host(Device::cpu(), 17);
  Tensor r = Tensor::empty(Shape{3000}, DType::F64, host);
  fill_normal(r, host, 0, 3);
  xs = r.to_vector<double>(host);
  for (double v :
       {0.0, -0.0, 1e-8, -1e-8, 20.0, -20.0, 50.0, -50.0, 88.0, -88.0, 500.0, -500.0, 1e4, -1e4, 3e38, -3e38})
    xs.push_back(v);
  const Shape shape{static_cast<std::int64_t>(xs.size())};
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x_host = test::from_doubles(xs, shape, dt, Device::cpu(), ctx);
    const std::vector<double> xv = test::to_doubles(x_host, ctx);  // inputs as rounded to dt
    const Tensor gy_host = test::randn(shape, dt, Device::cpu(), ctx, 23);
    const std::vector<double> gy = test::to_doubles(gy_host, ctx);
    for (Activation act : kActs) {
      const std::string what = std::string(activation_name(act)) + " " + dtype_name(dt);
      std::vector<double> fwd(xv.size()), bwd(xv.size());
      for (std::size_t i = 0; i < xv.size(); ++i) {
        fwd[i] = ref_act(act, xv[i]);
        // Derivative by central differences of the float64 formula (smooth away from relu's kink at 0).
        const double h = 1e-5 * std::max(1.0, std::abs(xv[i]));
        double d = (ref_act(act, xv[i] + h) - ref_act(act, xv[i] - h)) / (2 * h);
        if (act == Activation::ReLU) d = xv[i] > 0 ? 1.0 : 0.0;
        bwd[i] = gy[i] * d;
      }
      const double rtol = dt == DType::F32 ? 1e-5 : 1e-12;
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor x = x_host.to(d, ctx), y = Tensor::empty(shape, dt, d, ctx);
            activation_forward(act, x, y, ctx);
            return test::to_doubles(y, ctx);
          },
          fwd, rtol, dt == DType::F32 ? 1e-30 : 1e-300, what + " forward");
      // Finite differences carry ~1e-10 relative error of their own. float32 derivatives are accurate
      // relative to the size of their terms (~1), not to the result where it crosses zero (silu' at x =
      // -1.28): atol 1e-6.
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor x = x_host.to(d, ctx), g = gy_host.to(d, ctx), gx = Tensor::empty(shape, dt, d, ctx);
            activation_backward(act, x, g, gx, ctx);
            return test::to_doubles(gx, ctx);
          },
          bwd, dt == DType::F32 ? 2e-5 : 1e-7, dt == DType::F32 ? 1e-6 : 1e-9, what + " backward");
    }
  }
  // An empty batch is a no-op, not an error.
  Tensor ex = Tensor::empty(Shape{0, 5}, DType::F32, ctx), ey = Tensor::empty(Shape{0, 5}, DType::F32, ctx);
  activation_forward(Activation::GELU, ex, ey, ctx);
  activation_backward(Activation::GELU, ex, ey, ey, ctx);
  CHECK(parse_activation("gelu") == Activation::GELU);
  CHECK_THROWS_WITH_AS(parse_activation("swish"), doctest::Contains("unknown name 'swish'"), Error);
}
