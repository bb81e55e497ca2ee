// Trained samplers on a particle system: DiKL with the quick-dw4 settings (configs/dikl/quick-dw4.json: EGNN
// generator 4 x 64 and score network 3 x 64, batch 128, 5 DSM steps per generator step, the spec's DW-4
// schedule and posterior) cut to 300 iterations (about 25 s on one core), then x-W2 of 1000 one-step
// samples against 1000 rows of the DW-4 reference set (val_split_DW4.npy, mean-free). With this seed the
// untrained generator (about its mean-free N(0, I) latent) is at 3.21 and the trained one at 2.13 with a mean
// energy of -19.0 (x86-64-v3 build with the grouped CPU EGNN forward; 2.12 and -18.8 with the per-sample
// forward before it, 2.16 and -19.1 with baseline SSE2; the reference's: -22.4; two MCMC
// reference sets of DW-4 differ by x-W2 1.4 at 2000 vs 2000); the test asks for x-W2 below 2.5 and a mean
// energy below -17. Suite "training": the main build runs it, the sanitizer build does not.
#include <cmath>

#include "nsamp/samplers/dikl_training.h"
#include "nsamp/samplers/sample_distances.h"
#include "nsamp/targets/reference.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

TEST_CASE("dikl training: EGNNs learn DW-4 from its energy" * doctest::test_suite("training")) {
  Context ctx(Device::cpu(), 0);
  auto target = targets::make_target("dw4");
  s::DiklConfig c;
  c.beta_start = 1e-6;
  c.beta_end = 0.05;
  c.weight_inv_alpha = false;
  c.gen_width = 64;
  c.gen_layers = 4;
  c.score_width = 64;
  c.score_layers = 3;
  c.posterior.n_is = 20;
  c.posterior.ais_levels = 10;
  c.posterior.ais_step = 0.01;
  c.posterior.mala_steps = 50;
  c.posterior.mala_step = 0.01;
  c.posterior.adaptive = true;
  s::DiklSampler sampler(*target, c, DType::F32, ctx);
  const Tensor ref = targets::load_reference(*target, targets::ReferenceSplit::Validation, ctx, DType::F32)
                         .slice_rows(0, 1000);
  auto w2_of = [&](const s::DiklSampler& smp) { return s::exact_w2(smp.sample(1000, 7, ctx), ref, ctx).w2; };
  const double before = w2_of(sampler);
  s::DiklTrainOptions o;
  o.iterations = 300;
  o.batch = 128;
  o.score_iter = 5;
  o.gen_lr = 5e-4;
  o.score_lr = 1e-3;
  o.eval_every = 300;
  o.eval_samples = 2000;
  s::DiklTrainLog last;
  s::train_dikl(sampler, o, ctx, [&](const s::DiklTrainLog& l) { last = l; });
  REQUIRE(last.eval);
  const double after = w2_of(sampler);
  const double mean_e = -last.eval->mean_log_p;  // dw4 has no log Z: mean log p is -E
  MESSAGE("DiKL quick on dw4, 300 iterations: x-W2 " << after << " (untrained " << before << "), mean E "
                                                     << mean_e << ", " << last.skipped << " skipped");
  CHECK(last.skipped == 0);
  CHECK(last.eval->nonfinite == 0);
  CHECK(after < 2.5);
  CHECK(after < before - 0.5);
  CHECK(mean_e < -17.0);
}
