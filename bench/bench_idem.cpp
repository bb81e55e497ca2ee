// bench_idem: one iDEM / IW-SM inner step at the paper's GMM-40 settings (batch 512, K = 500, the residual
// MLP 3 x 128, a full buffer of 10000 rows for IW-SM's density), and one reverse-SDE sampling pass (1000
// samples, 1000 Euler-Maruyama steps), on one device. One JSON line per case. The inner steps are timed as
// one epoch of `steps` steps without the refill (one sample by one SDE step).
//   bench_idem [--device cpu|cuda|auto] [--target gmm40] [--batch 512] [--K 500] [--steps 5] [--sde-samples
//   1000] [--sde-steps 1000] [--graph on|off]
// --graph on (the default, as nsamp train runs it): the inner steps after the first replay one CUDA graph;
// the epoch's time then includes the first, eager step and the capture. The reverse-SDE pass is timed after
// an eager run and, graphed, a captured one: the time of one replay.
#include <chrono>
#include <string>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/samplers/idem_training.h"

using namespace nsamp;

int main(int argc, char** argv) {
  CLI::App app{"bench_idem: one iDEM and one IW-SM inner step and one reverse-SDE pass, as JSON lines",
               "bench_idem"};
  bench::CommonArgs common;
  bench::add_common(app, common);
  std::string target = "gmm40";
  std::int64_t batch = 512, K = 500, steps = 5, sde_samples = 1000;
  int sde_steps = 1000;
  std::string graph = "on";
  app.add_option("--target", target, "target name")
      ->capture_default_str()
      ->check(bench::checked_by([](const std::string& n) { targets::make_target(n); }));
  app.add_option("--batch", batch, "points per inner step")->capture_default_str()->check(bench::positive());
  app.add_option("--K", K, "Monte Carlo samples of the noisy score")
      ->capture_default_str()
      ->check(bench::positive());
  app.add_option("--steps", steps, "inner steps timed (one epoch)")
      ->capture_default_str()
      ->check(bench::positive());
  app.add_option("--sde-samples", sde_samples, "samples of the reverse-SDE pass")
      ->capture_default_str()
      ->check(bench::positive());
  app.add_option("--sde-steps", sde_steps, "Euler-Maruyama steps of the reverse-SDE pass")
      ->capture_default_str()
      ->check(bench::positive());
  app.add_option("--graph", graph, "inner steps replayed as a CUDA graph (on) or eager (off)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    Context ctx(parse_device(common.device), 1);
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
      o.cuda_graph = graph == "on";
      double secs = 0;
      samplers::train_idem(s, o, ctx, [&](const samplers::IdemTrainLog& l) { secs = l.seconds_per_epoch; });
      emit(bench::format(
          "{\"bench\": \"idem_inner_step\", \"method\": \"%s\", \"target\": \"%s\", \"device\": \"%s\", "
          "\"graph\": \"%s\", \"batch\": %lld, \"K\": %lld, \"buffer\": 10000, \"ms\": %.3f, "
          "\"steps_per_s\": "
          "%.4g}",
          iw ? "iwsm" : "idem", t->name().c_str(), ctx.device().str().c_str(), graph.c_str(),
          (long long)batch, (long long)K, secs / double(steps) * 1e3, double(steps) / secs));
      if (iw) continue;
      // Untimed: the first run (eager) and, graphed, the capture with its first replay.
      const bool g = graph == "on";
      for (int w = 0; w < (g ? 2 : 1); ++w) s.reverse_sde(sde_samples, sde_steps, false, ctx, g);
      ctx.synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      s.reverse_sde(sde_samples, sde_steps, false, ctx, g);
      ctx.synchronize();
      const double st = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      emit(bench::format(
          "{\"bench\": \"idem_reverse_sde\", \"target\": \"%s\", \"device\": \"%s\", \"graph\": \"%s\", "
          "\"samples\": %lld, \"steps\": %d, \"ms\": %.3f}",
          t->name().c_str(), ctx.device().str().c_str(), graph.c_str(), (long long)sde_samples, sde_steps,
          st * 1e3));
    }
  });
}
