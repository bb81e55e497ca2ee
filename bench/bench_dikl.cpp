// bench_dikl: time of one full DiKL iteration (score_iter DSM steps on fresh generator batches, the posterior
// estimate of the target's noisy score, the generator's VJP step) at the paper's MoG-40 settings by default
// (batch 1024, 50 DSM steps, generator and score network 4 x 400, 10 proposals x 15 AIS levels, 5 MALA
// steps). One JSON line per case.
//   bench_dikl [--device cpu|cuda|auto] [--target gmm40] [--batch 1024] [--score-iter 50] [--width 400]
//   [--reps 3] [--float64] [--graph on|off]
// --graph on (the default, as nsamp train runs it): the iterations after the first replay one CUDA graph and
// the mean of `reps` replays is reported (the first two iterations, eager and captured, are not timed).
// --graph off: eager iterations with the three phases timed separately (device synchronised at their ends).
#include <string>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/samplers/dikl_training.h"

using namespace nsamp;

int main(int argc, char** argv) {
  CLI::App app{"bench_dikl: one full DiKL iteration, split into its phases, as JSON lines", "bench_dikl"};
  bench::CommonArgs common;
  bench::add_common(app, common);
  std::string target = "gmm40";
  std::int64_t batch = 1024, score_iter = 50, width = 400;
  int reps = 3;
  bool float64 = false;
  app.add_option("--target", target, "target name")
      ->capture_default_str()
      ->check(bench::checked_by([](const std::string& n) { targets::make_target(n); }));
  app.add_option("--batch", batch, "generator batch")->capture_default_str()->check(bench::positive());
  app.add_option("--score-iter", score_iter, "DSM steps per iteration")
      ->capture_default_str()
      ->check(bench::positive());
  app.add_option("--width", width, "generator and score network width")
      ->capture_default_str()
      ->check(bench::positive());
  bench::add_reps(app, reps, "timed iterations");
  bench::add_float64(app, float64);
  std::string graph = "on";
  app.add_option("--graph", graph, "iterations replayed as a CUDA graph (on) or eager with phase times (off)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    const DType dtype = float64 ? DType::F64 : DType::F32;
    Context ctx(parse_device(common.device), 1);
    auto t = targets::make_target(target);
    samplers::DiklConfig c;  // the spec's MoG-40 settings
    c.gen_width = c.score_width = width;
    samplers::DiklSampler sampler(*t, c, dtype, ctx);
    samplers::DiklTrainOptions o;
    o.batch = batch;
    o.score_iter = score_iter;
    o.eval_samples = 1;
    o.cuda_graph = graph == "on";
    o.time_phases = !o.cuda_graph;
    // Two untimed iterations (allocator, cuBLAS, the graph's capture), then `reps` timed ones, each logged:
    // a log's time is its own iteration's, ended by the log's read of the step's numbers.
    constexpr std::int64_t kUntimed = 2;
    o.iterations = o.eval_every = kUntimed + reps;
    o.log_every = 1;
    samplers::DiklTrainLog l;
    std::int64_t timed = 0;
    samplers::train_dikl(sampler, o, ctx, [&](const samplers::DiklTrainLog& log) {
      if (log.step <= kUntimed) return;
      l.seconds_per_step += log.seconds_per_step;
      l.score_seconds += log.score_seconds;
      l.posterior_seconds += log.posterior_seconds;
      l.generator_seconds += log.generator_seconds;
      ++timed;
    });
    for (double* v : {&l.seconds_per_step, &l.score_seconds, &l.posterior_seconds, &l.generator_seconds})
      *v /= double(timed);
    std::string phases;  // eager runs only: a graph replays the iteration as one unit
    if (!o.cuda_graph)
      phases = bench::format(", \"score_ms\": %.3f, \"posterior_ms\": %.3f, \"generator_ms\": %.3f",
                             l.score_seconds * 1e3, l.posterior_seconds * 1e3, l.generator_seconds * 1e3);
    emit(bench::format(
        "{\"bench\": \"dikl_iteration\", \"target\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", "
        "\"graph\": \"%s\", \"batch\": %lld, \"score_iter\": %lld, \"width\": %lld, \"n_is\": %d, "
        "\"ais_levels\": %d, \"mala_steps\": %d, \"ms\": %.3f, \"iterations_per_s\": %.4g%s}",
        t->name().c_str(), ctx.device().str().c_str(), dtype_name(dtype), graph.c_str(), (long long)batch,
        (long long)score_iter, (long long)width, c.posterior.n_is, c.posterior.ais_levels,
        c.posterior.mala_steps, l.seconds_per_step * 1e3, 1 / l.seconds_per_step, phases.c_str()));
  });
}
