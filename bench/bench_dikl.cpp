// bench_dikl: time of one full DiKL iteration (score_iter DSM steps on fresh generator batches, the posterior
// estimate of the target's noisy score, the generator's VJP step) at the paper's MoG-40 settings by default
// (batch 1024, 50 DSM steps, generator and score network 4 x 400, 10 proposals x 15 AIS levels, 5 MALA
// steps), with the three phases timed separately (device synchronised at their ends). One JSON line per case.
//   bench_dikl [--device cpu|cuda|auto] [--target gmm40] [--batch 1024] [--score-iter 50] [--width 400]
//   [--reps 3] [--float64]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "nsamp/core/device.h"
#include "nsamp/samplers/dikl_training.h"

using namespace nsamp;

int main(int argc, char** argv) {
  std::string dev = "auto", target = "gmm40";
  std::int64_t batch = 1024, score_iter = 50, width = 400;
  int reps = 3;
  DType dtype = DType::F32;
  for (int i = 1; i < argc; ++i) {
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--device") && more)
      dev = argv[++i];
    else if (!std::strcmp(argv[i], "--target") && more)
      target = argv[++i];
    else if (!std::strcmp(argv[i], "--batch") && more)
      batch = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--score-iter") && more)
      score_iter = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--width") && more)
      width = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && more)
      reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--float64"))
      dtype = DType::F64;
    else {
      std::fprintf(stderr,
                   "usage: bench_dikl [--device auto|cpu|cuda] [--target NAME] [--batch B] [--score-iter N] "
                   "[--width W] [--reps N] [--float64]\n");
      return 2;
    }
  }
  try {
    Context ctx(parse_device(dev), 1);
    auto t = targets::make_target(target);
    samplers::DiklConfig c;  // the spec's MoG-40 settings
    c.gen_width = c.score_width = width;
    samplers::DiklSampler sampler(*t, c, dtype, ctx);
    samplers::DiklTrainOptions o;
    o.batch = batch;
    o.score_iter = score_iter;
    o.eval_samples = 1;
    o.time_phases = true;
    o.iterations = 1;  // warm-up (allocator, cuBLAS)
    samplers::train_dikl(sampler, o, ctx, [](const samplers::DiklTrainLog&) {});
    o.iterations = o.log_every = o.eval_every = reps;
    samplers::DiklTrainLog l;
    samplers::train_dikl(sampler, o, ctx, [&](const samplers::DiklTrainLog& log) { l = log; });
    std::printf(
        "{\"bench\": \"dikl_iteration\", \"target\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", "
        "\"batch\": %lld, \"score_iter\": %lld, \"width\": %lld, \"n_is\": %d, \"ais_levels\": %d, "
        "\"mala_steps\": %d, \"ms\": %.3f, \"iterations_per_s\": %.4g, \"score_ms\": %.3f, \"posterior_ms\": "
        "%.3f, \"generator_ms\": %.3f}\n",
        t->name().c_str(), ctx.device().str().c_str(), dtype_name(dtype), (long long)batch,
        (long long)score_iter, (long long)width, c.posterior.n_is, c.posterior.ais_levels,
        c.posterior.mala_steps, l.seconds_per_step * 1e3, 1 / l.seconds_per_step, l.score_seconds * 1e3,
        l.posterior_seconds * 1e3, l.generator_seconds * 1e3);
    std::fflush(stdout);
  } catch (const nsamp::Error& err) {
    std::fprintf(stderr, "%s\n", err.what());
    return 1;
  }
  return 0;
}
