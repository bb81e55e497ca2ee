// iDEM and IW-SM train on GMM-40 (normalised units, the spec's network and schedule, K = 500) with a CPU
// budget: 128 points per inner step, 25 inner steps and 256 reverse-SDE samples (200 steps) per epoch, 30
// epochs. Suite "training": the main build runs it, the sanitizer build does not.
#include <cmath>

#include "nsamp/samplers/idem_training.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

namespace {
s::IdemTrainOptions cpu_options() {
  s::IdemTrainOptions o;
  o.epochs = 10;
  o.inner_steps = 25;
  o.batch = 128;
  o.buffer_capacity = 10000;
  o.buffer_min = 200;
  o.init_samples = 256;
  o.samples_per_epoch = 128;
  o.sde_steps = 100;
  o.eval_every = 5;
  o.eval_samples = 1000;
  return o;
}
}  // namespace

TEST_CASE("idem training: iDEM and IW-SM spread over GMM-40's modes" * doctest::test_suite("training")) {
  for (bool iw : {false, true}) {
    Context ctx(Device::cpu(), 0);
    auto target = targets::make_target("gmm40");
    s::IdemConfig c;
    c.importance_weighted = iw;
    s::IdemSampler sampler(*target, c, DType::F32, ctx);
    const s::IdemEval before = s::evaluate_idem(sampler, 1000, 100, ctx);
    MESSAGE(std::string(iw ? "IW-SM" : "iDEM")
            << " untrained: " << before.modes_covered << "/40 modes, mean log p " << before.mean_log_p);
    s::IdemTrainLog last;
    s::train_idem(sampler, cpu_options(), ctx, [&](const s::IdemTrainLog& l) {
      last = l;
      if (l.eval)
        MESSAGE(std::string(iw ? "IW-SM" : "iDEM")
                << " epoch " << l.epoch << ": loss " << l.loss << ", ESS " << l.ess << ", "
                << l.eval->modes_covered << "/40 modes, mean log p " << l.eval->mean_log_p << ", "
                << l.seconds_per_epoch << " s/epoch");
    });
    REQUIRE(last.eval);
    CHECK(last.skipped == 0);
    CHECK(last.eval->nonfinite == 0);
    CHECK(std::isfinite(last.loss));
    CHECK(last.eval->mean_log_p > before.mean_log_p + 600);
    CHECK(last.eval->modes_covered >= (iw ? 28 : 15));
    if (iw) CHECK(last.ess < 0.9);  // the weights are not uniform: IW-SM re-weights
  }
}
