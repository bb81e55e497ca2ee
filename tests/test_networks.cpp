// Networks: parameter gradients of every module against float64 finite differences, the specs' structure
// (zero-initialised outputs, names), and save -> load round trips.
#include <cstdio>
#include <functional>

#include "nsamp/autograd/module.h"
#include "nsamp/autograd/params.h"
#include "nsamp/samplers/networks.h"
#include "test_util.h"

using namespace nsamp;
using ag::Tape;
using ag::Var;

namespace {

// <w, f()> on the host in float64 for the network's current parameter values.
double objective(const std::function<Var(Tape&)>& f, const std::vector<double>& w, Context& ctx) {
  Tape t(ctx);
  ag::NoGrad ng(t);
  const std::vector<double> y = test::to_doubles(f(t).value(), ctx);
  double s = 0;
  for (std::size_t i = 0; i < y.size(); ++i) s += w[i] * y[i];
  return s;
}

// Checks d<w, f>/d(theta) for every parameter entry (and d/dx when x is given) by central differences.
void gradcheck_module(const char* name, std::vector<Var> params, const std::function<Var(Tape&)>& f,
                      Context& ctx, std::uint64_t seed) {
  CAPTURE(name);
  Tape t(ctx);
  Var y = f(t);
  const Tensor w = test::randn(y.shape(), DType::F64, Device::cpu(), ctx, seed);
  const std::vector<double> wv = test::to_doubles(w, ctx);
  for (Var& p : params) p.zero_grad();
  t.backward(y, w);
  for (Var& p : params) {
    REQUIRE_MESSAGE(p.grad().defined(), "no gradient for " << p.name());
    const std::vector<double> analytic = test::to_doubles(p.grad(), ctx);
    std::vector<double> numeric(analytic.size());
    double* v = p.mutable_value().data<double>();
    for (std::size_t j = 0; j < numeric.size(); ++j) {
      const double keep = v[j], h = 1e-6;
      v[j] = keep + h;
      const double up = objective(f, wv, ctx);
      v[j] = keep - h;
      const double down = objective(f, wv, ctx);
      v[j] = keep;
      numeric[j] = (up - down) / (2 * h);
    }
    double scale = 0;
    for (double g : numeric) scale = std::max(scale, std::abs(g));
    test::check_close(analytic, numeric, 0, 1e-6 * std::max(scale, 1e-3),
                      std::string(name) + ": " + p.name());
  }
}

void randomise(std::vector<Var> params, Context& ctx) {
  for (Var& p : params) fill_normal(p.mutable_value(), ctx, 0.0, 0.5);
}

}  // namespace

TEST_CASE("networks: parameter gradients match float64 finite differences" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 3);
  const DType f64 = DType::F64;
  const Var x = Var::leaf(test::randn(Shape{5, 3}, f64, Device::cpu(), ctx, 11), true, "x");
  const Var x2 = Var::leaf(test::randn(Shape{5, 2}, f64, Device::cpu(), ctx, 12), true, "x2");
  const Var tcol = Var::leaf(test::randn(Shape{5, 1}, f64, Device::cpu(), ctx, 13, 0.3, 0.5), false, "t");
  const Var tshared = Var::leaf(test::from_doubles({0.37}, Shape{1}, f64, Device::cpu(), ctx), false, "t");

  ag::MLP mlp({3, 6, 5, 2}, ag::Activation::SiLU, ag::Activation::Tanh, f64, ctx, "mlp");
  gradcheck_module(
      "MLP", mlp.parameters(), [&](Tape& t) { return mlp.forward(t, x); }, ctx, 1);

  samplers::FourierMLP fmlp(3, 8, 2, false, f64, ctx);
  gradcheck_module(
      "FourierMLP per-sample t", fmlp.parameters(), [&](Tape& t) { return fmlp.forward(t, tcol, x); }, ctx,
      2);
  gradcheck_module(
      "FourierMLP shared t", fmlp.parameters(), [&](Tape& t) { return fmlp.forward(t, tshared, x); }, ctx, 3);

  samplers::TimeNet tnet(8, 1, 3, f64, ctx);
  randomise(tnet.parameters(), ctx);  // the zero-initialised last layer would hide every other gradient
  gradcheck_module(
      "TimeNet", tnet.parameters(), [&](Tape& t) { return tnet.forward(t, tcol); }, ctx, 4);

  samplers::ConditionalMLP cmlp(2, 8, 2, 1.0, f64, ctx);
  const Var tidx =
      Var::leaf(test::from_doubles({1, 5, 29, 3, 12}, Shape{5, 1}, f64, Device::cpu(), ctx), false, "t");
  gradcheck_module(
      "ConditionalMLP", cmlp.parameters(), [&](Tape& t) { return cmlp.forward(t, tidx, x2); }, ctx, 5);

  samplers::ResidualMLP rmlp(2, 8, 2, 8, f64, ctx);
  gradcheck_module(
      "ResidualMLP", rmlp.parameters(), [&](Tape& t) { return rmlp.forward(t, tcol, x2); }, ctx, 6);
  // And through the inputs: the score networks are differentiated in x by some samplers.
  gradcheck_module(
      "ResidualMLP input", {x2}, [&](Tape& t) { return rmlp.forward(t, tcol, x2); }, ctx, 7);
  gradcheck_module(
      "FourierMLP input", {x}, [&](Tape& t) { return fmlp.forward(t, tcol, x); }, ctx, 8);
}

TEST_CASE("networks: initial outputs and parameter names follow the specs" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 4);
  Tape t(ctx);
  const Var x = Var::leaf(test::randn(Shape{4, 3}, DType::F32, Device::cpu(), ctx, 1));
  const Var time =
      Var::leaf(test::from_doubles({0.1, 0.5, 0.9, 1.0}, Shape{4, 1}, DType::F32, Device::cpu(), ctx));
  samplers::FourierMLP f(3, 64, 2, true, DType::F32, ctx);
  for (double v : test::to_doubles(f.forward(t, time, x).value(), ctx))
    CHECK(v == 0.0);  // zero-initialised output
  samplers::TimeNet nt(64, 1, 3, DType::F32, ctx);
  for (double v : test::to_doubles(nt.forward(t, time).value(), ctx)) CHECK(v == doctest::Approx(0.01));
  // 64 channels: phase + input embed (2) + time path (4) + 2 hidden (4) + output (2).
  CHECK(f.parameters().size() == 13);
  CHECK(f.parameters()[0].name() == "fourier_mlp.timestep_phase");
  samplers::ResidualMLP r(2, 128, 3, 128, DType::F32, ctx);
  CHECK(r.parameters().front().shape() == Shape{128, 3 * 128});
  CHECK(r.parameters().back().name() == "residual_mlp.joint_mlp.4.bias");
  samplers::ConditionalMLP c(2, 400, 4, 30.0, DType::F32, ctx);
  CHECK(c.parameters().size() == 10);
  CHECK_THROWS_WITH_AS(samplers::ConditionalMLP(2, 401, 4, 30.0, DType::F32, ctx),
                       doctest::Contains("must be even"), Error);
  CHECK_THROWS_WITH_AS(r.forward(t, time, x), doctest::Contains("must be [B, 2]"), Error);
}

NSAMP_DEVICE_TEST("networks: save then load restores outputs exactly - and mismatches are refused") {
  Context ctx(dev, 9);
  samplers::FourierMLP a(3, 16, 2, false, DType::F32, ctx), b(3, 16, 2, false, DType::F32, ctx);
  const Var x = Var::leaf(test::randn(Shape{6, 3}, DType::F32, dev, ctx, 2));
  const Var time = Var::leaf(test::randn(Shape{6, 1}, DType::F32, dev, ctx, 3));
  Tape t(ctx);
  const std::vector<double> ya = test::to_doubles(a.forward(t, time, x).value(), ctx);
  CHECK(test::to_doubles(b.forward(t, time, x).value(), ctx) != ya);
  const std::string path = test::scratch_path("networks_params.safetensors");
  ag::save_parameters(path, a.parameters(), ctx);
  std::vector<Var> pb = b.parameters();
  ag::load_parameters(path, pb, ctx);
  test::check_close(test::to_doubles(b.forward(t, time, x).value(), ctx), ya, 0, 0, "after load");

  samplers::FourierMLP wider(3, 32, 2, false, DType::F32, ctx);
  std::vector<Var> pw = wider.parameters();
  CHECK_THROWS_WITH_AS(
      ag::load_parameters(path, pw, ctx),
      doctest::Contains("'fourier_mlp.timestep_phase' has shape [16] in the file but [32] in the model"),
      Error);
  samplers::FourierMLP renamed(3, 16, 2, false, DType::F32, ctx, "other");
  std::vector<Var> pr = renamed.parameters();
  CHECK_THROWS_WITH_AS(ag::load_parameters(path, pr, ctx),
                       doctest::Contains("'other.timestep_phase' is not in the file"), Error);
  std::vector<Var> subset(pb.begin(), pb.begin() + 3);
  CHECK_THROWS_WITH_AS(ag::load_parameters(path, subset, ctx),
                       doctest::Contains("which the model does not have"), Error);
  {  // a truncated file
    std::FILE* fp = std::fopen(path.c_str(), "r+b");
    REQUIRE(fp != nullptr);
    std::fclose(fp);
    std::FILE* tr = std::fopen(path.c_str(), "wb");
    std::fwrite("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 1, 13, tr);
    std::fclose(tr);
  }
  CHECK_THROWS_WITH_AS(ag::load_parameters(path, pb, ctx), doctest::Contains("exceeds the file"), Error);
  std::remove(path.c_str());
}
