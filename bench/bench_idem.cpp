// bench_idem: one iDEM / IW-SM inner step at the paper's GMM-40 settings (batch 512, K = 500, the residual
// MLP 3 x 128, a full buffer of 10000 rows for IW-SM's density), and one reverse-SDE sampling pass (1000
// samples, 1000 Euler-Maruyama steps), on one device. One JSON line per case. The inner steps are timed as
// one epoch of `steps` steps without the refill (one sample by one SDE step).
//   bench_idem [--device cpu|cuda|auto] [--target gmm40] [--batch 512] [--K 500] [--steps 5] [--sde-samples
//   1000] [--sde-steps 1000]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "nsamp/core/device.h"
#include "nsamp/samplers/idem_training.h"

using namespace nsamp;

int main(int argc, char** argv) {
  std::string dev = "auto", target = "gmm40";
  std::int64_t batch = 512, K = 500, steps = 5, sde_samples = 1000;
  int sde_steps = 1000;
  for (int i = 1; i < argc; ++i) {
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--device") && more)
      dev = argv[++i];
    else if (!std::strcmp(argv[i], "--target") && more)
      target = argv[++i];
    else if (!std::strcmp(argv[i], "--batch") && more)
      batch = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--K") && more)
      K = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && more)
      steps = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--sde-samples") && more)
      sde_samples = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--sde-steps") && more)
      sde_steps = std::atoi(argv[++i]);
    else {
      std::fprintf(
          stderr,
          "usage: bench_idem [--device auto|cpu|cuda] [--target NAME] [--batch B] [--K K] [--steps N] "
          "[--sde-samples N] [--sde-steps N]\n");
      return 2;
    }
  }
  try {
    Context ctx(parse_device(dev), 1);
    auto t = targets::make_target(target);
    for (bool iw : {false, true}) {
      samplers::IdemConfig c;
      c.importance_weighted = iw;
      c.K = K;
      c.coord_scale = 50.000005;  // configs/idem/gmm40.json
      c.coord_shift = 0.000005;
      samplers::IdemSampler s(*t, c, DType::F32, ctx);
      samplers::IdemTrainOptions o;
      o.epochs = 1;
      o.inner_steps = steps;
      o.batch = batch;
      o.buffer_capacity = o.init_samples = 10000;  // a full buffer, filled by one S_K-driven SDE step
      o.buffer_min = 1;
      o.samples_per_epoch = 1;
      o.sde_steps = 1;
      o.eval_samples = 1;
      double secs = 0;
      samplers::train_idem(s, o, ctx, [&](const samplers::IdemTrainLog& l) { secs = l.seconds_per_epoch; });
      std::printf(
          "{\"bench\": \"idem_inner_step\", \"method\": \"%s\", \"target\": \"%s\", \"device\": \"%s\", "
          "\"batch\": "
          "%lld, \"K\": %lld, \"buffer\": 10000, \"ms\": %.3f, \"steps_per_s\": %.4g}\n",
          iw ? "iwsm" : "idem", t->name().c_str(), ctx.device().str().c_str(), (long long)batch, (long long)K,
          secs / double(steps) * 1e3, double(steps) / secs);
      std::fflush(stdout);
      if (iw) continue;
      ctx.synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      s.reverse_sde(sde_samples, sde_steps, false, ctx);
      ctx.synchronize();
      const double st = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf(
          "{\"bench\": \"idem_reverse_sde\", \"target\": \"%s\", \"device\": \"%s\", \"samples\": %lld, "
          "\"steps\": "
          "%d, \"ms\": %.3f}\n",
          t->name().c_str(), ctx.device().str().c_str(), (long long)sde_samples, sde_steps, st * 1e3);
      std::fflush(stdout);
    }
  } catch (const nsamp::Error& err) {
    std::fprintf(stderr, "%s\n", err.what());
    return 1;
  }
  return 0;
}
