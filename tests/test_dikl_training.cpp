// A trained DiKL sampler reaches stated numbers: the quick preset's settings (configs/dikl/quick.json: batch
// 256, 10 DSM steps per generator step, both networks 4 x 128, the spec's MoG-40 schedule and posterior) cut
// to 500 iterations (40 s on one core). At that point a run with this seed covered 17 of GMM-40's
// 40 modes with a mean log p of -9.5 (x86-64-v3 build; -9.2 with baseline SSE2; untrained: 1 mode, -23; exact
// samples: -6.85 in the paper); the test asks for 14 modes and -11. Suite "training": the main build runs it,
// the sanitizer build does not.
#include <cmath>

#include "nsamp/samplers/dikl_training.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

TEST_CASE("dikl training: the quick preset spreads over GMM-40's modes" * doctest::test_suite("training")) {
  Context ctx(Device::cpu(), 0);
  auto target = targets::make_target("gmm40");
  s::DiklConfig c;  // the spec's MoG-40 schedule and posterior (HMC step 1.0 -> eta 0.5)
  c.gen_width = c.score_width = 128;
  c.posterior.ais_step = 0.5;
  s::DiklSampler sampler(*target, c, DType::F32, ctx);
  const s::DiklEval before = s::evaluate_dikl(sampler, 5000, 1, ctx);
  s::DiklTrainOptions o;
  o.iterations = 500;
  o.batch = 256;
  o.score_iter = 10;
  o.gen_lr = 1e-3;
  o.score_lr = 1e-3;
  o.eval_every = 500;
  o.eval_samples = 5000;
  s::DiklTrainLog last;
  s::train_dikl(sampler, o, ctx, [&](const s::DiklTrainLog& l) { last = l; });
  REQUIRE(last.eval);
  const s::DiklEval& e = *last.eval;
  MESSAGE("DiKL quick on gmm40, 500 iterations: "
          << e.modes_covered << "/40 modes, mean log p " << e.mean_log_p << " (untrained "
          << before.modes_covered << ", " << before.mean_log_p << "), " << last.skipped << " skipped");
  CHECK(last.skipped == 0);
  CHECK(e.nonfinite == 0);
  CHECK(e.modes_covered >= 14);
  CHECK(e.mean_log_p > -11.0);
  CHECK(e.mean_log_p > before.mean_log_p + 5);
}
