// Trained path samplers reach a stated log Z error and normalised ESS: the quick preset's settings
// (configs/path/quick.json: batch 256, 50 steps per path, lr 1e-3, clip schedule, no EMA) cut to 600
// iterations so that a CI run on 2 cores stays within about a minute per case. Suite "training": the
// main build runs it, the sanitizer build (label cpu) does not.
#include <cmath>

#include "nsamp/samplers/path_training.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

namespace {

s::metrics::WeightStats train_quick(const std::string& target, s::PathMethod method, s::PathLoss loss,
                                    std::int64_t iterations, double* log_z) {
  Context ctx(Device::cpu(), 1);
  auto t = targets::make_target(target);
  *log_z = *t->log_z();
  s::PathConfig c;
  c.method = method;
  c.steps = 50;
  s::PathSampler ps(*t, c, DType::F32, ctx);
  s::PathTrainOptions o;
  o.loss = loss;
  o.iterations = iterations;
  o.batch = 256;
  o.lr = 1e-3;
  o.eval_every = iterations;
  o.eval_paths = 8192;
  o.seed = 1;
  s::metrics::WeightStats out;
  std::int64_t skipped = -1;
  s::train_path_sampler(ps, o, ctx, [&](const s::PathTrainLog& l) {
    if (l.eval) out = *l.eval;
    skipped = l.skipped;
  });
  CHECK(skipped == 0);
  MESSAGE(std::string(s::path_method_name(method))
          << " / " << std::string(s::path_loss_name(loss)) << " on " << target << ", " << iterations
          << " steps: log Z " << out.log_z << " (error " << std::abs(out.log_z - *log_z) << "), ELBO "
          << out.elbo << ", ESS " << out.ess_fraction);
  return out;
}

}  // namespace

TEST_CASE("training: DDS on gmm9: lv reaches a small log Z error and beats kl" *
          doctest::test_suite("training")) {
  // The paper's comparison (PIS, batch 2048, 60k steps: log Z error 1.094 with kl against 0.046 with lv; ESS
  // 0.005 against 0.909) needs a GPU; at this budget PIS collapses onto few modes with either loss, while DDS
  // shows the same gap. Measured (2-core CPU, seed 1, x86-64-v3 build): lv error 0.008, ESS 0.256; kl error
  // 0.094, ESS 0.006 (baseline SSE2 build: 0.003, 0.236; 0.090, 0.006).
  double log_z = 0;
  const s::metrics::WeightStats lv = train_quick("gmm9", s::PathMethod::Dds, s::PathLoss::Lv, 600, &log_z);
  CHECK(std::abs(lv.log_z - log_z) < 0.1);
  CHECK(lv.ess_fraction > 0.12);
  const s::metrics::WeightStats kl = train_quick("gmm9", s::PathMethod::Dds, s::PathLoss::Kl, 600, &log_z);
  CHECK(std::abs(kl.log_z - log_z) > 3 * std::abs(lv.log_z - log_z));
  CHECK(kl.ess_fraction * 10 < lv.ess_fraction);
}

TEST_CASE("training: DDS with lv on funnel10" * doctest::test_suite("training")) {
  double log_z = 0;
  const s::metrics::WeightStats w = train_quick("funnel10", s::PathMethod::Dds, s::PathLoss::Lv, 600, &log_z);
  CHECK(std::abs(w.log_z - log_z) < 1.0);  // measured 0.65 (ESS 0.070): the funnel's neck is hard for all
  CHECK(w.ess_fraction > 0.02);
}
