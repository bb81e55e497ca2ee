// bench_mc_score: throughput of iDEM's Monte Carlo noisy score (Target::mc_score: K energy+gradient
// evaluations per point, streamed through the online log-sum-exp), in points x K per second, per target and
// K, on one device. One JSON line per case. Points: exact samples where the target has a sampler, else
// Gaussian points of a physical scale (particle systems); sigma 0.5.
//   bench_mc_score [--device cpu|cuda|auto] [--targets gmm40,dw4,lj13,lj55] [--K 100,500,1000]
//   [--batch 512] [--reps N] [--float64]
#include <chrono>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"
#include "nsamp/targets/target.h"

using namespace nsamp;

int main(int argc, char** argv) {
  CLI::App app{"bench_mc_score: throughput of iDEM's Monte Carlo noisy score, as JSON lines",
               "bench_mc_score"};
  bench::CommonArgs common;
  bench::add_common(app, common);
  std::string names = "gmm40,dw4,lj13,lj55", ks = "100,500,1000";
  std::int64_t batch = 512;
  int reps = 3;
  bool float64 = false;
  bench::add_list(app, "--targets", names, "target names",
                  bench::checked_by([](const std::string& n) { targets::make_target(n); }));
  bench::add_list(app, "--K", ks, "Monte Carlo samples K per point", bench::positive());
  app.add_option("--batch", batch, "points per call")->capture_default_str()->check(bench::positive());
  bench::add_reps(app, reps, "timed calls per case");
  bench::add_float64(app, float64);
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    const DType dtype = float64 ? DType::F64 : DType::F32;
    Context ctx(parse_device(common.device), 1);
    for (const std::string& name : bench::split(names)) {
      auto t = targets::make_target(name);
      Tensor x = Tensor::empty(Shape{batch, t->dim()}, dtype, ctx),
             sigma = Tensor::empty(Shape{batch}, dtype, ctx);
      if (t->has_sampler())
        t->sample(x, ctx);
      else
        fill_normal(x, ctx, 0.0, t->particles().n > 0 ? 1.5 : 1.0);
      fill_constant(sigma, 0.5, ctx);
      Tensor score = Tensor::empty(x.shape(), dtype, ctx), log_p = Tensor::empty(Shape{batch}, dtype, ctx);
      for (const std::int64_t K : bench::split_ints(ks)) {
        t->mc_score(x, sigma, K, 0.0, score, &log_p, ctx);  // warm-up
        ctx.synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) t->mc_score(x, sigma, K, 0.0, score, &log_p, ctx);
        ctx.synchronize();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
        emit(bench::format(
            "{\"bench\": \"mc_score\", \"target\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", \"batch\": "
            "%lld, "
            "\"K\": %lld, \"ms\": %.6f, \"point_samples_per_s\": %.4g}",
            t->name().c_str(), ctx.device().str().c_str(), dtype_name(dtype), (long long)batch, (long long)K,
            s * 1e3, double(batch) * double(K) / s));
      }
    }
  });
}
