// Elementwise family: broadcasting arithmetic, affine maps and activations against float64 loops, derivatives
// against central finite differences.
#include <iterator>

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

namespace {

const UnaryOp kUnaryOps[] = {UnaryOp::Neg,    UnaryOp::Exp, UnaryOp::Log, UnaryOp::Sqrt,
                             UnaryOp::Square, UnaryOp::Sin, UnaryOp::Cos};

// Independent float64 formulas (the C library, not the library's element math).
double ref_unary(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::Neg:
      return -x;
    case UnaryOp::Exp:
      return std::exp(x);
    case UnaryOp::Log:
      return std::log(x);
    case UnaryOp::Sqrt:
      return std::sqrt(x);
    case UnaryOp::Square:
      return x * x;
    case UnaryOp::Sin:
      return std::sin(x);
    default:
      return std::cos(x);
  }
}

// Central difference of ref_unary at x. The step is relative for log and sqrt (whose inputs span many
// decades) and absolute elsewhere; dividing by the difference of the rounded abscissae removes their rounding
// error.
double ref_unary_fd(UnaryOp op, double x) {
  const bool relative = op == UnaryOp::Log || op == UnaryOp::Sqrt;
  const double h = relative                                        ? 1e-5 * std::abs(x)
                   : (op == UnaryOp::Neg || op == UnaryOp::Square) ? 1e-5 * std::max(1.0, std::abs(x))
                                                                   : 1e-5;
  const double xp = x + h, xm = x - h;
  return (ref_unary(op, xp) - ref_unary(op, xm)) / (xp - xm);
}

// Inputs for each op: random values of several scales inside its domain, plus large magnitudes.
std::vector<double> unary_inputs(UnaryOp op) {
  Context host(Device::cpu(), 31);
  Tensor r = Tensor::empty(Shape{2000}, DType::F64, host);
  fill_normal(r, host, 0, 3);
  std::vector<double> xs = r.to_vector<double>(host);
  if (op == UnaryOp::Log || op == UnaryOp::Sqrt) {
    for (double& v : xs) v = std::exp(v);  // positive, e^-12 .. e^12
    for (double v : {1e-30, 1e30, 1.0, 4.0}) xs.push_back(v);
  } else if (op == UnaryOp::Exp) {
    for (double v : {50.0, -50.0, 80.0, -80.0, 0.0}) xs.push_back(v);
  } else if (op == UnaryOp::Sin || op == UnaryOp::Cos) {
    for (double v : {1e4, -1e4, 1e6, 0.0, 3.14159265358979}) xs.push_back(v);
  } else {
    for (double v : {1e15, -1e15, 0.0, -0.0}) xs.push_back(v);
  }
  return xs;
}

}  // namespace

NSAMP_DEVICE_TEST("unary: forward against float64 and backward against central differences") {
  Context ctx(dev);
  CHECK(std::string(unary_op_name(UnaryOp::Sqrt)) == "sqrt");
  for (UnaryOp op : kUnaryOps) {
    const std::vector<double> xs = unary_inputs(op);
    const Shape shape{static_cast<std::int64_t>(xs.size())};
    for (DType dt : {DType::F32, DType::F64}) {
      const bool f32 = dt == DType::F32;
      const std::string what = std::string(unary_op_name(op)) + " " + dtype_name(dt);
      const Tensor x_host = test::from_doubles(xs, shape, dt, Device::cpu(), ctx);
      const std::vector<double> xv = test::to_doubles(x_host, ctx);  // inputs as rounded to dt
      const Tensor gy_host = test::randn(shape, dt, Device::cpu(), ctx, 37);
      const std::vector<double> gy = test::to_doubles(gy_host, ctx);
      std::vector<double> fwd(xv.size()), bwd(xv.size());
      for (std::size_t i = 0; i < xv.size(); ++i) {
        fwd[i] = ref_unary(op, xv[i]);
        bwd[i] = gy[i] * ref_unary_fd(op, xv[i]);
      }
      // sin and cos are accurate relative to 1 (their range), the others relative to the result.
      const bool trig = op == UnaryOp::Sin || op == UnaryOp::Cos;
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor x = x_host.to(d, ctx), y = Tensor::empty(shape, dt, d, ctx);
            unary_forward(op, x, y, ctx);
            return test::to_doubles(y, ctx);
          },
          fwd, f32 ? 1e-6 : 1e-14, trig ? (f32 ? 1e-7 : 1e-16) : 0, what + " forward");
      // Central differences carry ~1e-10 relative error of their own (1e-9 absolute where cos and sin
      // cross zero).
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor x = x_host.to(d, ctx), g = gy_host.to(d, ctx), gx = Tensor::empty(shape, dt, d, ctx);
            unary_backward(op, x, g, gx, ctx);
            return test::to_doubles(gx, ctx);
          },
          bwd, f32 ? 2e-5 : 1e-7, f32 ? 1e-6 : 1e-9, what + " backward");
    }
  }
}

NSAMP_DEVICE_TEST("unary: log of 0 and negatives - sqrt at 0 - overflow - NaN") {
  Context ctx(dev);
  struct Edge {
    UnaryOp op;
    double x, y, dy;  // expected y and dy/dx (grad_y = 1) in both dtypes
  };
  const Edge edges[] = {{UnaryOp::Log, 0.0, -INFINITY, INFINITY},
                        {UnaryOp::Log, -0.0, -INFINITY, -INFINITY},
                        {UnaryOp::Log, -1.0, NAN, -1.0},
                        {UnaryOp::Log, 1.0, 0.0, 1.0},
                        {UnaryOp::Log, INFINITY, INFINITY, 0.0},
                        {UnaryOp::Sqrt, 0.0, 0.0, INFINITY},
                        {UnaryOp::Sqrt, -1.0, NAN, NAN},
                        {UnaryOp::Sqrt, 4.0, 2.0, 0.25},
                        {UnaryOp::Sqrt, INFINITY, INFINITY, 0.0},
                        {UnaryOp::Exp, 1000.0, INFINITY, INFINITY},
                        {UnaryOp::Exp, -1000.0, 0.0, 0.0},
                        {UnaryOp::Exp, -INFINITY, 0.0, 0.0},
                        {UnaryOp::Neg, INFINITY, -INFINITY, -1.0},
                        {UnaryOp::Neg, NAN, NAN, -1.0},
                        {UnaryOp::Square, -INFINITY, INFINITY, -INFINITY},
                        {UnaryOp::Sin, INFINITY, NAN, NAN},
                        {UnaryOp::Cos, -INFINITY, NAN, NAN},
                        {UnaryOp::Exp, NAN, NAN, NAN},
                        {UnaryOp::Cos, 0.0, 1.0, 0.0},
                        {UnaryOp::Sin, 0.0, 0.0, 1.0}};
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Edge& e : edges) {
      const std::string what =
          std::string(unary_op_name(e.op)) + "(" + std::to_string(e.x) + ") " + dtype_name(dt);
      Tensor x = test::from_doubles({e.x}, Shape{1}, dt, dev, ctx);
      Tensor one = test::from_doubles({1.0}, Shape{1}, dt, dev, ctx);
      Tensor y = Tensor::empty(Shape{1}, dt, ctx), gx = Tensor::empty(Shape{1}, dt, ctx);
      unary_forward(e.op, x, y, ctx);
      unary_backward(e.op, x, one, gx, ctx);
      test::check_close(test::to_doubles(y, ctx), {e.y}, 0, 0, what + " forward");
      test::check_close(test::to_doubles(gx, ctx), {e.dy}, 0, 0, what + " backward");
    }
    // Squares overflow to infinity in float32 only.
    Tensor x = test::from_doubles({1e20, -3e38}, Shape{2}, dt, dev, ctx);
    Tensor y = Tensor::empty(Shape{2}, dt, ctx);
    unary_forward(UnaryOp::Square, x, y, ctx);
    const std::vector<double> got = test::to_doubles(y, ctx);
    if (dt == DType::F32) {
      test::check_close(got, {INFINITY, INFINITY}, 0, 0, "square overflow float32");
    } else {
      test::check_close(got, {1e40, 9e76}, 1e-15, 0, "square float64");
    }
  }
  // Empty batches are no-ops; shapes are checked with the op's name.
  Tensor ex = Tensor::empty(Shape{0, 3}, DType::F32, ctx), ey = Tensor::empty(Shape{0, 3}, DType::F32, ctx);
  unary_forward(UnaryOp::Log, ex, ey, ctx);
  unary_backward(UnaryOp::Log, ex, ey, ey, ctx);
  Tensor a = Tensor::empty(Shape{4, 3}, DType::F32, ctx), b = Tensor::empty(Shape{3, 4}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(
      unary_forward(UnaryOp::Exp, a, b, ctx),
      doctest::Contains(
          ("unary_forward(exp): x must have shape [3, 4], got float32[4, 3]@" + dev.str()).c_str()),
      Error);
  CHECK_THROWS_WITH_AS(unary_backward(UnaryOp::Sin, a, b, a, ctx),
                       doctest::Contains("unary_backward(sin): grad_y must have shape [4, 3]"), Error);
  Tensor d = Tensor::empty(Shape{4, 3}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(unary_forward(UnaryOp::Neg, a, d, ctx),
                       doctest::Contains("unary_forward(neg): dtype mismatch"), Error);
}

NSAMP_DEVICE_TEST("clamp: forward and backward - boundaries included - infinite bounds - NaN") {
  Context ctx(dev);
  struct Bounds {
    double lo, hi;
  };
  const Bounds bounds[] = {{-1.5, 0.75}, {-INFINITY, 0.0}, {0.25, INFINITY}, {1.0, 1.0}};
  std::vector<double> xs;
  {
    Context host(Device::cpu(), 41);
    Tensor r = Tensor::empty(Shape{50, 7}, DType::F64, host);
    fill_normal(r, host, 0, 2);
    xs = r.to_vector<double>(host);
  }
  // Values exactly on every boundary, the infinities and NaN.
  const double specials[] = {-1.5, 0.75, 0.0, -0.0, 0.25, 1.0, INFINITY, -INFINITY, NAN, 1e30, -1e30};
  for (std::size_t i = 0; i < std::size(specials); ++i) xs[i * 3] = specials[i];
  const Shape shape{50, 7};
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x_host = test::from_doubles(xs, shape, dt, Device::cpu(), ctx);
    const std::vector<double> xv = test::to_doubles(x_host, ctx);
    const Tensor gy_host = test::randn(shape, dt, Device::cpu(), ctx, 43);
    const std::vector<double> gy = test::to_doubles(gy_host, ctx);
    for (const Bounds& bd : bounds) {
      const std::string what =
          "clamp [" + std::to_string(bd.lo) + ", " + std::to_string(bd.hi) + "] " + dtype_name(dt);
      std::vector<double> fwd(xv.size()), bwd(xv.size());
      for (std::size_t i = 0; i < xv.size(); ++i) {
        const double x = xv[i];
        fwd[i] = std::isnan(x) ? x : (x < bd.lo ? bd.lo : (x > bd.hi ? bd.hi : x));
        bwd[i] = (x >= bd.lo && x <= bd.hi) ? gy[i] : 0.0;  // NaN compares false: no gradient
      }
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor x = x_host.to(d, ctx), y = Tensor::empty(shape, dt, d, ctx);
            clamp_forward(x, bd.lo, bd.hi, y, ctx);
            return test::to_doubles(y, ctx);
          },
          fwd, 0, 0, what + " forward");
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor x = x_host.to(d, ctx), g = gy_host.to(d, ctx), gx = Tensor::empty(shape, dt, d, ctx);
            clamp_backward(x, bd.lo, bd.hi, g, gx, ctx);
            return test::to_doubles(gx, ctx);
          },
          bwd, 0, 0, what + " backward");
    }
  }
  // In place, an empty batch, and bad arguments.
  Tensor x = test::from_doubles({-3.0, 0.5, 3.0}, Shape{3}, DType::F32, dev, ctx);
  clamp_forward(x, -1.0, 1.0, x, ctx);
  test::check_close(test::to_doubles(x, ctx), {-1.0, 0.5, 1.0}, 0, 0, "clamp in place");
  Tensor e = Tensor::empty(Shape{0, 2}, DType::F64, ctx);
  clamp_forward(e, 0, 1, e, ctx);
  clamp_backward(e, 0, 1, e, e, ctx);
  CHECK_THROWS_WITH_AS(clamp_forward(x, NAN, 1.0, x, ctx),
                       doctest::Contains("clamp_forward: bounds must not be NaN"), Error);
  CHECK_THROWS_WITH_AS(clamp_backward(x, 0.0, NAN, x, x, ctx),
                       doctest::Contains("clamp_backward: bounds must not be NaN"), Error);
  Tensor y4 = Tensor::empty(Shape{4}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(
      clamp_forward(x, 0.0, 1.0, y4, ctx),
      doctest::Contains(("clamp_forward: x must have shape [4], got float32[3]@" + dev.str()).c_str()),
      Error);
}

NSAMP_DEVICE_TEST("broadcast_to: every broadcast form scaled by alpha") {
  Context ctx(dev);
  struct Case {
    Shape out, src;
    const char* form;
  };
  const Case cases[] = {{Shape{37, 19}, Shape{37, 19}, "same shape"},
                        {Shape{37, 19}, Shape{19}, "row vector [C]"},
                        {Shape{37, 19}, Shape{1, 19}, "row vector [1, C]"},
                        {Shape{37, 19}, Shape{37, 1}, "column vector"},
                        {Shape{37, 19}, Shape{1}, "scalar"},
                        {Shape{37, 19}, Shape{}, "rank-0 scalar"},
                        {Shape{2, 5, 7}, Shape{2, 5, 1}, "rank 3, column vector"},
                        {Shape{1, 300}, Shape{300}, "single row"},
                        {Shape{0, 4}, Shape{4}, "empty batch"},
                        {Shape{5000, 9}, Shape{5000, 1}, "parallel size"}};
  std::uint64_t seed = 60;
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Case& c : cases) {
      for (double alpha : {1.0, -0.5, 1.0 / 3.0}) {
        const std::string what =
            std::string("broadcast_to ") + c.form + " alpha " + std::to_string(alpha) + " " + dtype_name(dt);
        const Tensor s_host = test::randn(c.src, dt, Device::cpu(), ctx, ++seed);
        const std::vector<double> sv = test::to_doubles(s_host, ctx);
        const std::int64_t R = c.out.rows(), C = c.out.cols();
        std::vector<double> ref(static_cast<std::size_t>(c.out.numel()));
        for (std::int64_t r = 0; r < R; ++r)
          for (std::int64_t k = 0; k < C; ++k) {
            double v;
            if (c.src == c.out)
              v = sv[r * C + k];
            else if (c.src.numel() == 1)
              v = sv[0];
            else if (c.src.rank() >= 2 && c.src.cols() == 1)
              v = sv[r];
            else
              v = sv[k];
            ref[r * C + k] = alpha * v;
          }
        test::check_backend(
            dev,
            [&](Device d) {
              Tensor s = s_host.to(d, ctx), out = Tensor::empty(c.out, dt, d, ctx);
              broadcast_to(s, alpha, out, ctx);
              return test::to_doubles(out, ctx);
            },
            ref, test::elem_rtol(dt), 0, what);
      }
    }
  }
  // Same shape in place (a scaling), and the shape error.
  Tensor t = test::from_doubles({1.0, -2.0, 4.0}, Shape{3}, DType::F32, dev, ctx);
  broadcast_to(t, -2.0, t, ctx);
  test::check_close(test::to_doubles(t, ctx), {-2.0, 4.0, -8.0}, 0, 0, "broadcast_to in place");
  Tensor out = Tensor::empty(Shape{3, 4}, DType::F32, ctx);
  Tensor bad = Tensor::empty(Shape{3}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(broadcast_to(bad, 1.0, out, ctx),
                       doctest::Contains(("broadcast_to: src float32[3]@" + dev.str() +
                                          " does not broadcast to the output float32[3, 4]@" + dev.str())
                                             .c_str()),
                       Error);
}

NSAMP_DEVICE_TEST("bias_activation_forward: equals add then activation - aliasing rules") {
  Context ctx(dev);
  struct Case {
    Shape z, bias;
    const char* what;
  };
  const Case cases[] = {{Shape{37, 19}, Shape{19}, "bias [C]"},
                        {Shape{37, 19}, Shape{1, 19}, "bias [1, C]"},
                        {Shape{1, 6}, Shape{6}, "single row"},
                        {Shape{0, 5}, Shape{5}, "empty batch"},
                        {Shape{5000, 9}, Shape{9}, "parallel size"}};
  std::uint64_t seed = 80;
  for (DType dt : {DType::F32, DType::F64}) {
    const bool f32 = dt == DType::F32;
    for (const Case& c : cases) {
      const Tensor z_host = test::randn(c.z, dt, Device::cpu(), ctx, ++seed, 3.0);
      const Tensor b_host = test::randn(c.bias, dt, Device::cpu(), ctx, ++seed);
      const std::vector<double> zv = test::to_doubles(z_host, ctx), bv = test::to_doubles(b_host, ctx);
      const std::int64_t C = c.z.cols();
      // z + b rounded once to dt (the sum of two dt values is exact in float64 for float32 inputs).
      std::vector<double> zref(zv.size());
      for (std::size_t i = 0; i < zv.size(); ++i) {
        const double sum = zv[i] + bv[i % static_cast<std::size_t>(C)];
        zref[i] = f32 ? static_cast<double>(static_cast<float>(sum)) : sum;
      }
      for (Activation act : kActs) {
        const std::string what = std::string("bias_activation_forward ") + activation_name(act) + " " +
                                 c.what + " " + dtype_name(dt);
        std::vector<double> aref(zv.size());
        for (std::size_t i = 0; i < zv.size(); ++i) aref[i] = ref_act(act, zref[i]);
        auto run = [&](Device d, bool want_a) {
          Tensor z = z_host.to(d, ctx), b = b_host.to(d, ctx), a = Tensor::empty(c.z, dt, d, ctx);
          bias_activation_forward(act, b, z, a, ctx);
          return test::to_doubles(want_a ? a : z, ctx);
        };
        test::check_backend(
            dev, [&](Device d) { return run(d, false); }, zref, 0, 0, what + ": z updated in place");
        test::check_backend(
            dev, [&](Device d) { return run(d, true); }, aref, f32 ? 1e-5 : 1e-12, f32 ? 1e-30 : 1e-300,
            what + ": a");
      }
    }
  }
  // Identity may run fully in place; other activations must keep z for their backward pass.
  Tensor z = test::from_doubles({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, Shape{2, 3}, DType::F32, dev, ctx);
  Tensor b = test::from_doubles({0.5, -1.0, 2.0}, Shape{3}, DType::F32, dev, ctx);
  bias_activation_forward(Activation::Identity, b, z, z, ctx);
  test::check_close(test::to_doubles(z, ctx), {1.5, 1.0, 5.0, 4.5, 4.0, 8.0}, 0, 0, "identity in place");
  const std::string at = "@" + dev.str();
  CHECK_THROWS_WITH_AS(
      bias_activation_forward(Activation::ReLU, b, z, z, ctx),
      doctest::Contains(("bias_activation_forward(relu): a float32[2, 3]" + at +
                         " shares memory with z; a may alias z only for the identity activation")
                            .c_str()),
      Error);
  Tensor a = Tensor::empty(Shape{2, 3}, DType::F32, ctx);
  Tensor col = Tensor::empty(Shape{2, 1}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(
      bias_activation_forward(Activation::SiLU, col, z, a, ctx),
      doctest::Contains(("bias_activation_forward(silu): bias float32[2, 1]" + at +
                         " must be a row vector of z's 3 columns ([3] or [1, 3]); z float32[2, 3]" + at)
                            .c_str()),
      Error);
  Tensor a_bad = Tensor::empty(Shape{3, 2}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(bias_activation_forward(Activation::Tanh, b, z, a_bad, ctx),
                       doctest::Contains("bias_activation_forward(tanh): z must have shape [3, 2]"), Error);
}

NSAMP_DEVICE_TEST(
    "activations: an element's value depends on its input alone - not on its position or the size") {
  // The float32 host loops run in vector blocks (libmvec) with the tail padded into a full block: a scalar
  // tail, or a partition that changed with the thread count, would give other bits for the same input.
  Context ctx(dev);
  const std::int64_t n = 70001;  // above the parallel threshold's blocks, not a multiple of any block
  const Tensor x_host = test::randn(Shape{n}, DType::F32, Device::cpu(), ctx, 71, 4.0);
  const Tensor g_host = test::randn(Shape{n}, DType::F32, Device::cpu(), ctx, 72);
  const std::vector<float> xv = x_host.to_vector<float>(ctx), gv = g_host.to_vector<float>(ctx);
  for (Activation act : kActs) {
    const std::string what = activation_name(act);
    Tensor x = x_host.to(dev, ctx), g = g_host.to(dev, ctx);
    Tensor y = Tensor::empty(Shape{n}, DType::F32, dev, ctx), gx = y.clone(ctx);
    activation_forward(act, x, y, ctx);
    activation_backward(act, x, g, gx, ctx);
    const std::vector<float> yv = y.to_vector<float>(ctx), gxv = gx.to_vector<float>(ctx);
    // Pieces of every length class against a block of 64, at offsets that shift the block boundaries.
    std::int64_t o = 0;
    for (std::int64_t m : {1, 3, 17, 63, 64, 65, 130, 1000, 4097}) {
      o += 5;
      const auto piece = [&](const std::vector<float>& v) {
        return Tensor::from_vector(std::vector<float>(v.begin() + o, v.begin() + o + m), Shape{m}, dev, ctx);
      };
      Tensor px = piece(xv), pg = piece(gv), py = Tensor::empty(Shape{m}, DType::F32, dev, ctx);
      Tensor pgx = py.clone(ctx);
      activation_forward(act, px, py, ctx);
      activation_backward(act, px, pg, pgx, ctx);
      CHECK_MESSAGE(py.to_vector<float>(ctx) == std::vector<float>(yv.begin() + o, yv.begin() + o + m), what,
                    " forward, ", m, " elements at ", o);
      CHECK_MESSAGE(pgx.to_vector<float>(ctx) == std::vector<float>(gxv.begin() + o, gxv.begin() + o + m),
                    what, " backward, ", m, " elements at ", o);
      o += m;
    }
    // In place, and fused with a bias over rows of 100 (a block and a padded tail each): the same bits.
    Tensor xi = x.clone(ctx);
    activation_forward(act, xi, xi, ctx);
    CHECK_MESSAGE(xi.to_vector<float>(ctx) == yv, what, " in place");
    const std::int64_t R = 700, C = 100;
    Tensor z = Tensor::from_vector(std::vector<float>(xv.begin(), xv.begin() + R * C), Shape{R, C}, dev, ctx);
    Tensor zero = Tensor::zeros(Shape{C}, DType::F32, dev, ctx),
           a = Tensor::empty(Shape{R, C}, DType::F32, dev, ctx);
    bias_activation_forward(act, zero, z, a, ctx);
    CHECK_MESSAGE(a.to_vector<float>(ctx) == std::vector<float>(yv.begin(), yv.begin() + R * C), what,
                  " fused with a zero bias");
  }
}
