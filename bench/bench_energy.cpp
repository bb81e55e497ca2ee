// bench_energy: energy + gradient evaluations per second of every built-in target, per batch size, on one
// device. One JSON line per case. Inputs: exact samples where the target has a sampler, else Gaussian points
// of a physical scale (particle systems), so that the timed work is the realistic one.
//   bench_energy [--device cpu|cuda|auto] [--batches 1000,65536,1048576] [--targets a,b] [--reps N]
//   [--float64]
#include <chrono>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"
#include "nsamp/targets/target.h"

using namespace nsamp;

int main(int argc, char** argv) {
  CLI::App app{
      "bench_energy: energy + gradient evaluations per second of the built-in targets, as JSON lines",
      "bench_energy"};
  bench::CommonArgs common;
  bench::add_common(app, common);
  std::string batches = "1000,65536,1048576", names;
  for (const std::string& n : targets::target_names()) names += (names.empty() ? "" : ",") + n;
  int reps = 5;
  bool float64 = false;
  bench::add_list(app, "--batches", batches, "batch sizes", bench::positive());
  bench::add_list(app, "--targets", names, "target names (gaussian in d = 32)",
                  bench::checked_by([](const std::string& n) { targets::make_target(n, {32}); }));
  bench::add_reps(app, reps, "timed evaluations per case");
  bench::add_float64(app, float64);
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    const DType dtype = float64 ? DType::F64 : DType::F32;
    Context ctx(parse_device(common.device), 1);
    for (const std::string& name : bench::split(names)) {
      auto t = targets::make_target(name, {32});
      for (const std::int64_t B : bench::split_ints(batches)) {
        Tensor x = Tensor::empty(Shape{B, t->dim()}, dtype, ctx);
        if (t->has_sampler())
          t->sample(x, ctx);
        else
          fill_normal(x, ctx, 0.0, t->particles().n > 0 ? 1.5 : 1.0);
        Tensor e = Tensor::empty(Shape{B}, dtype, ctx), g = Tensor::empty(x.shape(), dtype, ctx);
        t->energy_and_grad(x, e, g, ctx);  // warm-up
        ctx.synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) t->energy_and_grad(x, e, g, ctx);
        ctx.synchronize();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
        emit(bench::format(
            "{\"bench\": \"energy\", \"target\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", \"batch\": "
            "%lld, "
            "\"ms\": %.6f, \"evals_per_s\": %.4g}",
            t->name().c_str(), ctx.device().str().c_str(), dtype_name(dtype), (long long)B, s * 1e3,
            double(B) / s));
      }
    }
  });
}
