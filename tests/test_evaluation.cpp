// Evaluation protocols: NaN rows counted and excluded, bad input named, the protocols' repeats and subsets,
// log-weight estimators on weights with a known answer.
#include <cmath>

#include "nsamp/samplers/evaluation.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

namespace {
const s::MetricValue* find(const s::EvalReport& r, const std::string& name) {
  for (const s::MetricValue& m : r.metrics)
    if (m.name == name) return &m;
  return nullptr;
}
}  // namespace

NSAMP_DEVICE_TEST("evaluate: a target against its own exact samples - NaN rows counted and excluded") {
  Context ctx(dev, 1);
  auto t = targets::make_target("gmm9");
  std::string source;
  const Tensor ref = s::reference_for(*t, 3000, 7, source, ctx);
  CHECK(source.find("exact sampler of gmm9") != std::string::npos);
  Tensor x = s::reference_for(*t, 600, 8, source, ctx).to(Device::cpu(), ctx);
  x.data<double>()[3] = NAN;        // row 1
  x.data<double>()[10] = INFINITY;  // row 5
  std::vector<double> lw(600, 0.0);
  lw[7] = NAN;  // excluded and counted; -inf would be a valid zero weight
  const Tensor l = Tensor::from_vector(lw, Shape{600}, Device::cpu(), ctx);
  s::EvalOptions o;
  o.seed = 3;
  o.max_pairs = 400;
  // Everything but the Sinkhorn divergence, whose 3 x 2000 iterations are slow on a CPU (its own tests cover
  // it).
  o.metrics = {"x_w2", "sinkhorn", "mmd", "energy_tvd", "energy_w2", "modes", "weights"};
  const s::EvalReport r = s::evaluate(*t, x, ref, &l, "test", o, ctx);
  CHECK(r.nonfinite_rows == 2);
  CHECK(r.samples_used == 598);
  CHECK(r.nonfinite_log_weights == 1);
  REQUIRE(find(r, "x_w2"));
  CHECK(find(r, "x_w2")->samples == 400);
  // Same distribution: small distances, full coverage of gmm9's 9 modes, uniform weights give ESS = 1.
  CHECK(find(r, "energy_tvd")->value < 0.3);
  CHECK(find(r, "modes_covered")->value == 9);
  CHECK(find(r, "entropic_mode_coverage")->value > 0.95);
  CHECK(find(r, "ess_fraction")->value == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(find(r, "log_z")->value == doctest::Approx(0.0).epsilon(1e-12));
  REQUIRE(find(r, "log_z_error"));
  // A shifted sample set is further from the target on every distance.
  Tensor far = x.clone(ctx);
  for (std::int64_t i = 0; i < far.numel(); ++i) far.data<double>()[i] += 3.0;
  const s::EvalReport rf = s::evaluate(*t, far, ref, nullptr, "test", o, ctx);
  for (const char* m : {"x_w2", "mmd", "energy_tvd", "energy_w2"}) {
    CAPTURE(m);
    CHECK(find(rf, m)->value > find(r, m)->value);
  }
  CHECK(find(rf, "log_z") == nullptr);  // no log-weights given
}

TEST_CASE("evaluate: protocols - repeats - seeds and bad input" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 1);
  auto t = targets::make_target("dw4");
  std::string source;
  const Tensor ref = s::reference_for(*t, 0, 0, source, ctx);
  CHECK(source == "reference file test_split_DW4.npy");  // the papers' split by default
  std::string val_source;
  const Tensor val = s::reference_for(*t, 0, 0, val_source, ctx, targets::ReferenceSplit::Validation);
  CHECK(val_source == "reference file val_split_DW4.npy");
  CHECK(val.to_doubles(ctx) != ref.to_doubles(ctx));
  const Tensor x = ref.slice_rows(0, 2500);
  s::EvalOptions o;
  o.protocol = s::Protocol::Dikl;
  o.seed = 11;
  const s::EvalReport a = s::evaluate(*t, x, ref, nullptr, "test", o, ctx);
  const s::MetricValue* w = find(a, "x_w2");
  REQUIRE(w);
  CHECK(w->repeats == 10);
  CHECK(w->samples == 2000);
  CHECK(w->convention.find("10 repeats of 2000 vs 2000") != std::string::npos);
  {  // fewer samples than 2000 shrink every repeat, and the convention says so
    const s::EvalReport small = s::evaluate(*t, x.slice_rows(0, 1000), ref, nullptr, "test", o, ctx);
    CHECK(find(small, "x_w2")->samples == 1000);
    CHECK(find(small, "x_w2")->convention.find("10 repeats of 1000 vs 1000") != std::string::npos);
  }
  CHECK(w->std > 0);
  REQUIRE(find(a, "distance_tvd"));
  const s::EvalReport b = s::evaluate(*t, x, ref, nullptr, "test", o, ctx);
  CHECK(find(b, "x_w2")->value == w->value);  // same seed, same subsets
  o.seed = 12;
  CHECK(find(s::evaluate(*t, x, ref, nullptr, "test", o, ctx), "x_w2")->value != w->value);
  o.protocol = s::Protocol::Idem;
  const s::EvalReport c = s::evaluate(*t, x, ref, nullptr, "test", o, ctx);
  CHECK(find(c, "x_w2")->samples == 1000);
  CHECK(find(c, "distance_w2"));
  CHECK(s::parse_protocol("idem") == s::Protocol::Idem);
  CHECK_THROWS_WITH_AS(s::parse_protocol("fab"), doctest::Contains("valid: full, idem, dikl"), Error);

  const Tensor wrong = Tensor::zeros(Shape{10, 3}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(s::evaluate(*t, wrong, ref, nullptr, "test", {}, ctx),
                       doctest::Contains("needs [N, 8]"), Error);
  const Tensor empty = Tensor::zeros(Shape{0, 8}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(s::evaluate(*t, empty, ref, nullptr, "test", {}, ctx), doctest::Contains("empty"),
                       Error);
  Tensor all_nan = Tensor::zeros(Shape{2, 8}, DType::F64, ctx);
  all_nan.data<double>()[0] = NAN;
  all_nan.data<double>()[8] = NAN;
  CHECK_THROWS_WITH_AS(s::evaluate(*t, all_nan, ref, nullptr, "test", {}, ctx),
                       doctest::Contains("all 2 samples have NaN"), Error);
  s::EvalOptions bad;
  bad.metrics = {"x_w3"};
  CHECK_THROWS_WITH_AS(s::evaluate(*t, x, ref, nullptr, "test", bad, ctx),
                       doctest::Contains("unknown metric 'x_w3'"), Error);
  const Tensor lw = Tensor::zeros(Shape{5}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(s::evaluate(*t, x, ref, &lw, "test", {}, ctx),
                       doctest::Contains("5 log-weights for 2500"), Error);
}
