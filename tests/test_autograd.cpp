// Autograd: every op's gradient against float64 central finite differences on the CPU (relative error <
// 1e-6), the same ops on CUDA in float32 against the CPU path, and the tape's features and errors.
#include <functional>

#include "nsamp/autograd/ops.h"
#include "test_util.h"

using namespace nsamp;
using ag::Tape;
using ag::Var;

namespace {

using OpFn = std::function<Var(Tape&, const std::vector<Var>&)>;

struct OpCase {
  const char* name;
  std::vector<Shape> shapes;
  OpFn f;
  bool positive = false;  // inputs in [0.5, 2.5) (log, sqrt, division)
};

std::vector<OpCase> op_cases(Device d, Context& ctx) {
  using ag::Activation;
  std::vector<OpCase> c;
  c.push_back({"add same", {{4, 3}, {4, 3}}, [](Tape& t, auto& x) { return ag::add(t, x[0], x[1]); }});
  c.push_back({"add row", {{4, 3}, {3}}, [](Tape& t, auto& x) { return ag::add(t, x[0], x[1]); }});
  c.push_back({"add row first", {{3}, {4, 3}}, [](Tape& t, auto& x) { return ag::add(t, x[0], x[1]); }});
  c.push_back({"sub column", {{4, 3}, {4, 1}}, [](Tape& t, auto& x) { return ag::sub(t, x[0], x[1]); }});
  c.push_back({"sub scalar first", {{1}, {4, 3}}, [](Tape& t, auto& x) { return ag::sub(t, x[0], x[1]); }});
  c.push_back({"mul same", {{5, 2}, {5, 2}}, [](Tape& t, auto& x) { return ag::mul(t, x[0], x[1]); }});
  c.push_back({"mul column", {{5, 2}, {5, 1}}, [](Tape& t, auto& x) { return ag::mul(t, x[0], x[1]); }});
  c.push_back({"mul same input twice", {{3, 3}}, [](Tape& t, auto& x) { return ag::mul(t, x[0], x[0]); }});
  c.push_back({"div same", {{4, 3}, {4, 3}}, [](Tape& t, auto& x) { return ag::div(t, x[0], x[1]); }, true});
  c.push_back({"div row", {{4, 3}, {3}}, [](Tape& t, auto& x) { return ag::div(t, x[0], x[1]); }, true});
  c.push_back({"div scalar", {{4, 3}, {1}}, [](Tape& t, auto& x) { return ag::div(t, x[0], x[1]); }, true});
  c.push_back({"affine", {{6}}, [](Tape& t, auto& x) { return ag::affine(t, x[0], -1.7, 0.3); }});
  c.push_back({"exp", {{4, 3}}, [](Tape& t, auto& x) { return ag::exp(t, x[0]); }});
  c.push_back({"log", {{4, 3}}, [](Tape& t, auto& x) { return ag::log(t, x[0]); }, true});
  c.push_back({"sqrt", {{4, 3}}, [](Tape& t, auto& x) { return ag::sqrt(t, x[0]); }, true});
  c.push_back({"square", {{4, 3}}, [](Tape& t, auto& x) { return ag::square(t, x[0]); }});
  c.push_back({"sin", {{4, 3}}, [](Tape& t, auto& x) { return ag::sin(t, x[0]); }});
  c.push_back({"cos", {{4, 3}}, [](Tape& t, auto& x) { return ag::cos(t, x[0]); }});
  for (Activation a : {Activation::Identity, Activation::ReLU, Activation::SiLU, Activation::GELU,
                       Activation::Tanh, Activation::Sigmoid, Activation::Softplus})
    c.push_back({kernels::activation_name(a), {{5, 4}}, [a](Tape& t, auto& x) {
                   return ag::activation(t, a, x[0]);
                 }});
  c.push_back({"clamp", {{6, 5}}, [](Tape& t, auto& x) { return ag::clamp(t, x[0], -0.5, 0.7); }});
  for (int tr = 0; tr < 4; ++tr) {
    const bool ta = tr & 1, tb = tr & 2;
    c.push_back({ta ? (tb ? "matmul AT BT" : "matmul AT B") : (tb ? "matmul A BT" : "matmul A B"),
                 {ta ? Shape{3, 4} : Shape{4, 3}, tb ? Shape{5, 3} : Shape{3, 5}},
                 [ta, tb](Tape& t, auto& x) { return ag::matmul(t, x[0], x[1], ta, tb); }});
  }
  for (Activation a : {Activation::Identity, Activation::SiLU, Activation::GELU, Activation::Tanh})
    c.push_back({"linear with bias", {{7, 4}, {3, 4}, {3}}, [a](Tape& t, auto& x) {
                   return ag::linear(t, x[0], x[1], x[2], a);
                 }});
  c.push_back({"linear without bias relu", {{7, 4}, {3, 4}}, [](Tape& t, auto& x) {
                 return ag::linear(t, x[0], x[1], Var(), Activation::ReLU);
               }});
  c.push_back(
      {"mlp", {{6, 3}, {5, 3}, {5}, {4, 5}, {2, 4}, {2}}, [](Tape& t, auto& x) {
         return ag::mlp(t, x[0], {x[1], x[3], x[4]}, {x[2], Var(), x[5]}, Activation::GELU, Activation::Tanh);
       }});
  c.push_back({"reshape", {{2, 6}}, [](Tape& t, auto& x) {
                 return ag::mul(t, ag::reshape(t, x[0], Shape{3, 4}), ag::reshape(t, x[0], Shape{3, 4}));
               }});
  c.push_back({"concat_cols", {{3, 2}, {3, 1}, {3, 4}}, [](Tape& t, auto& x) {
                 return ag::concat_cols(t, {x[0], x[1], x[2]});
               }});
  c.push_back({"split_cols partly used", {{3, 7}}, [](Tape& t, auto& x) {
                 auto parts = ag::split_cols(t, x[0], {2, 1, 4});
                 return ag::add(t, ag::sum_rows(t, ag::square(t, parts[0])), ag::sum_rows(t, parts[2]));
               }});
  c.push_back({"sum", {{4, 3}}, [](Tape& t, auto& x) { return ag::sum(t, x[0]); }});
  c.push_back({"mean", {{4, 3}}, [](Tape& t, auto& x) { return ag::mean(t, x[0]); }});
  c.push_back({"sum_rows", {{4, 3}}, [](Tape& t, auto& x) { return ag::sum_rows(t, x[0]); }});
  c.push_back({"mean_rows rank 3", {{2, 3, 4}}, [](Tape& t, auto& x) { return ag::mean_rows(t, x[0]); }});
  c.push_back({"logsumexp_rows", {{5, 7}}, [](Tape& t, auto& x) { return ag::logsumexp_rows(t, x[0]); }});
  c.push_back({"sq_norm_rows", {{5, 7}}, [](Tape& t, auto& x) { return ag::sq_norm_rows(t, x[0]); }});
  const Tensor idx = test::index_tensor({2, 0, 2, 3, 1, 2}, d, ctx);
  c.push_back(
      {"gather_rows repeated", {{4, 3}}, [idx](Tape& t, auto& x) { return ag::gather_rows(t, x[0], idx); }});
  c.push_back({"index_add_rows repeated", {{6, 3}}, [idx](Tape& t, auto& x) {
                 return ag::index_add_rows(t, x[0], idx, 5);
               }});
  c.push_back({"masked_select_rows", {{5, 2}}, [](Tape& t, auto& x) {
                 return ag::masked_select_rows(t, x[0], {true, false, true, true, false});
               }});
  c.push_back({"shared subexpression", {{4, 3}, {3}}, [](Tape& t, auto& x) {
                 Var h = ag::activation(t, ag::Activation::Tanh, ag::add(t, x[0], x[1]));
                 return ag::sub(t, ag::mul(t, h, x[0]), ag::exp(t, h));
               }});
  return c;
}

std::vector<Tensor> make_inputs(const OpCase& c, DType dt, Context& ctx, std::uint64_t seed) {
  std::vector<Tensor> xs;
  for (const Shape& s : c.shapes) {
    Context host(Device::cpu(), seed++);
    Tensor v = Tensor::empty(s, dt, host);
    if (c.positive)
      fill_uniform(v, host, 0.5, 2.5);
    else
      fill_normal(v, host);
    xs.push_back(v.to(Device::cpu(), ctx));
  }
  return xs;
}

// <w, f(x)> computed on the host, in float64.
double objective(const OpCase& c, const std::vector<Tensor>& xs, const std::vector<double>& w, Context& ctx) {
  Tape t(ctx);
  std::vector<Var> v;
  for (const Tensor& x : xs) v.push_back(Var::leaf(x));
  const std::vector<double> y = test::to_doubles(c.f(t, v).value(), ctx);
  double s = 0;
  for (std::size_t i = 0; i < y.size(); ++i) s += w[i] * y[i];
  return s;
}

}  // namespace

TEST_CASE("autograd: every op's gradient matches float64 finite differences" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 1);
  std::uint64_t seed = 1000;
  for (const OpCase& c : op_cases(Device::cpu(), ctx)) {
    CAPTURE(c.name);
    const std::vector<Tensor> xs = make_inputs(c, DType::F64, ctx, seed += 10);
    Tape t(ctx);
    std::vector<Var> v;
    for (const Tensor& x : xs) v.push_back(Var::leaf(x.clone(ctx), true));
    Var y = c.f(t, v);
    const Tensor w = test::randn(y.shape(), DType::F64, Device::cpu(), ctx, seed + 5);
    const std::vector<double> wv = test::to_doubles(w, ctx);
    t.backward(y, w);
    CHECK(t.size() == 0);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      REQUIRE_MESSAGE(v[i].grad().defined(), "no gradient reached input " << i);
      const std::vector<double> analytic = test::to_doubles(v[i].grad(), ctx);
      std::vector<double> numeric(analytic.size());
      for (std::size_t j = 0; j < numeric.size(); ++j) {
        std::vector<Tensor> plus, minus;
        for (const Tensor& x : xs) {
          plus.push_back(x.clone(ctx));
          minus.push_back(x.clone(ctx));
        }
        const double h = 1e-6;
        plus[i].data<double>()[j] += h;
        minus[i].data<double>()[j] -= h;
        numeric[j] = (objective(c, plus, wv, ctx) - objective(c, minus, wv, ctx)) / (2 * h);
      }
      double scale = 0;
      for (double g : numeric) scale = std::max(scale, std::abs(g));
      // Relative error 1e-6 against the gradient's largest entry (entries near zero are judged on that
      // scale).
      test::check_close(analytic, numeric, 0, 1e-6 * std::max(scale, 1e-3),
                        std::string(c.name) + ": input " + std::to_string(i));
    }
  }
}

TEST_CASE("gpu: autograd ops in float32 on CUDA match the CPU path" * doctest::test_suite("gpu")) {
  Context gpu(Device::cuda(0), 1), cpu(Device::cpu(), 1);
  std::uint64_t seed = 5000;
  const std::vector<OpCase> gcases = op_cases(Device::cuda(0), gpu), ccases = op_cases(Device::cpu(), cpu);
  for (std::size_t k = 0; k < gcases.size(); ++k) {
    CAPTURE(gcases[k].name);
    const std::vector<Tensor> xs = make_inputs(gcases[k], DType::F32, cpu, seed += 10);
    std::vector<std::vector<double>> results[2];
    for (int side = 0; side < 2; ++side) {
      Context& ctx = side ? cpu : gpu;
      const OpCase& c = side ? ccases[k] : gcases[k];
      Tape t(ctx);
      std::vector<Var> v;
      for (const Tensor& x : xs) v.push_back(Var::leaf(x.to(ctx.device(), ctx), true));
      Var y = c.f(t, v);
      const Tensor w = test::randn(y.shape(), DType::F32, ctx.device(), ctx, seed + 5);
      t.backward(y, w);
      results[side].push_back(test::to_doubles(y.value(), ctx));
      for (Var& x : v) results[side].push_back(test::to_doubles(x.grad(), ctx));
    }
    for (std::size_t r = 0; r < results[0].size(); ++r)
      test::check_close(
          results[0][r], results[1][r], 1e-4, 1e-5,
          std::string(gcases[k].name) + (r ? ": gradient " + std::to_string(r - 1) : ": value"));
  }
}

TEST_CASE("autograd: gradients() for chosen variables leaves leaf gradients alone" *
          doctest::test_suite("cpu")) {
  Context ctx;
  Tape t(ctx);
  Var a = Var::leaf(test::randn(Shape{3, 2}, DType::F64, Device::cpu(), ctx, 1), true, "a");
  Var b = Var::leaf(test::randn(Shape{3, 2}, DType::F64, Device::cpu(), ctx, 2), true, "b");
  Var h = ag::mul(t, a, b);
  Var loss = ag::sum(t, ag::square(t, h));
  const std::vector<Tensor> g = t.gradients(loss, {a, h});
  CHECK_FALSE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
  const std::vector<double> av = test::to_doubles(a.value(), ctx), bv = test::to_doubles(b.value(), ctx);
  std::vector<double> ga(6), gh(6);
  for (int i = 0; i < 6; ++i) {
    gh[i] = 2 * av[i] * bv[i];
    ga[i] = gh[i] * bv[i];
  }
  test::check_close(test::to_doubles(g[0], ctx), ga, 1e-14, 0, "d loss / d a");
  test::check_close(test::to_doubles(g[1], ctx), gh, 1e-14, 0, "d loss / d h (an intermediate)");
}

TEST_CASE("autograd: leaf gradients accumulate until zero_grad" * doctest::test_suite("cpu")) {
  Context ctx;
  Var x = Var::leaf(test::from_doubles({1, 2, 3}, Shape{3}, DType::F64, Device::cpu(), ctx), true);
  for (int pass = 1; pass <= 2; ++pass) {
    Tape t(ctx);
    t.backward(ag::sum(t, ag::scale(t, x, 3.0)));
    test::check_close(test::to_doubles(x.grad(), ctx), std::vector<double>(3, 3.0 * pass), 0, 0,
                      "accumulated");
  }
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: no-grad scopes and detach record nothing" * doctest::test_suite("cpu")) {
  Context ctx;
  Tape t(ctx);
  Var x = Var::leaf(test::randn(Shape{4}, DType::F64, Device::cpu(), ctx, 3), true);
  {
    ag::NoGrad ng(t);
    Var y = ag::exp(t, x);
    CHECK_FALSE(y.requires_grad());
    CHECK(t.size() == 0);
    CHECK_THROWS_WITH_AS(t.backward(ag::sum(t, y)), doctest::Contains("does not depend"), Error);
  }
  Var d = ag::detach(ag::exp(t, x));
  CHECK_FALSE(d.requires_grad());
  Var z = ag::sum(t, ag::mul(t, d, x));  // d/dx sum(d * x) with d held constant = d
  t.backward(z);
  test::check_close(test::to_doubles(x.grad(), ctx), test::to_doubles(d.value(), ctx), 0, 0,
                    "detached factor");
}

TEST_CASE("autograd: misuse is reported clearly" * doctest::test_suite("cpu")) {
  Context ctx;
  Tape t(ctx);
  Var a = Var::leaf(test::randn(Shape{3, 2}, DType::F64, Device::cpu(), ctx, 1), true);
  Var b = Var::leaf(test::randn(Shape{4, 2}, DType::F64, Device::cpu(), ctx, 2), true);
  CHECK_THROWS_WITH_AS(ag::add(t, a, b), doctest::Contains("add: shapes [3, 2] and [4, 2] do not broadcast"),
                       Error);
  CHECK_THROWS_WITH_AS(ag::matmul(t, a, b), doctest::Contains("op(A) [3, 2]"), Error);
  Var y = ag::square(t, a);
  CHECK_THROWS_WITH_AS(t.backward(y), doctest::Contains("not a scalar: pass a cotangent"), Error);
  CHECK_THROWS_WITH_AS(
      t.backward(y, Tensor::zeros(Shape{2, 3}, DType::F64, ctx)),
      doctest::Contains("cotangent float64[2, 3]@cpu does not match the root float64[3, 2]@cpu"), Error);
  Var s = ag::sum(t, y);
  t.backward(s);
  CHECK_THROWS_WITH_AS(t.backward(s), doctest::Contains("tape that has since been freed"), Error);
  CHECK_THROWS_WITH_AS(ag::exp(t, y), doctest::Contains("before it was freed"), Error);
  CHECK_THROWS_WITH_AS(ag::split_cols(t, a, {1, 2}), doctest::Contains("widths sum to 3"), Error);
  CHECK_THROWS_WITH_AS(ag::masked_select_rows(t, a, {true}), doctest::Contains("mask of 1 entries"), Error);
  Tape other(ctx);
  Var o = ag::sum(other, ag::square(other, a));
  CHECK_THROWS_WITH_AS(t.backward(o), doctest::Contains("recorded on another tape"), Error);
}

NSAMP_DEVICE_TEST("autograd: a vector-Jacobian product with a given cotangent") {
  Context ctx(dev);
  Tape t(ctx);
  // y = W x (per row): the VJP with cotangent c gives dW = c^T x and dx = c W.
  Var x = Var::leaf(test::randn(Shape{5, 3}, DType::F64, dev, ctx, 1), true);
  Var W = Var::leaf(test::randn(Shape{4, 3}, DType::F64, dev, ctx, 2), true);
  Var y = ag::linear(t, x, W, Var());
  const Tensor c = test::randn(Shape{5, 4}, DType::F64, dev, ctx, 3);
  t.backward(y, c);
  const std::vector<double> xv = test::to_doubles(x.value(), ctx), wv = test::to_doubles(W.value(), ctx),
                            cv = test::to_doubles(c, ctx);
  std::vector<double> gx(15, 0.0), gw(12, 0.0);
  for (int i = 0; i < 5; ++i)
    for (int o = 0; o < 4; ++o)
      for (int k = 0; k < 3; ++k) {
        gx[i * 3 + k] += cv[i * 4 + o] * wv[o * 3 + k];
        gw[o * 3 + k] += cv[i * 4 + o] * xv[i * 3 + k];
      }
  test::check_close(test::to_doubles(x.grad(), ctx), gx, 1e-12, 1e-13, "dx");
  test::check_close(test::to_doubles(W.grad(), ctx), gw, 1e-12, 1e-13, "dW");
}
