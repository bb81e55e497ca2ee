// bench_energy: energy + gradient evaluations per second of every built-in target, per batch size, on one
// device. One JSON line per case. Inputs: exact samples where the target has a sampler, else Gaussian points
// of a physical scale (particle systems), so that the timed work is the realistic one.
//   bench_energy [--device cpu|cuda|auto] [--batches 1000,65536,1048576] [--targets a,b] [--reps N]
//   [--float64]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"
#include "nsamp/targets/target.h"

using namespace nsamp;

using nsamp::bench::split;

int main(int argc, char** argv) {
  std::string dev = "auto";
  std::vector<std::string> batches{"1000", "65536", "1048576"}, names = targets::target_names();
  int reps = 5;
  DType dtype = DType::F32;
  for (int i = 1; i < argc; ++i) {
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--device") && more)
      dev = argv[++i];
    else if (!std::strcmp(argv[i], "--batches") && more)
      batches = split(argv[++i]);
    else if (!std::strcmp(argv[i], "--targets") && more)
      names = split(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && more)
      reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--float64"))
      dtype = DType::F64;
    else {
      std::fprintf(stderr,
                   "usage: bench_energy [--device auto|cpu|cuda] [--batches a,b] [--targets a,b] [--reps N] "
                   "[--float64]\n");
      return 2;
    }
  }
  try {
    Context ctx(parse_device(dev), 1);
    for (const std::string& name : names) {
      auto t = targets::make_target(name, {32});
      for (const std::string& bs : batches) {
        const std::int64_t B = std::stoll(bs);
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
        std::printf(
            "{\"bench\": \"energy\", \"target\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", \"batch\": "
            "%lld, "
            "\"ms\": %.6f, \"evals_per_s\": %.4g}\n",
            t->name().c_str(), ctx.device().str().c_str(), dtype_name(dtype), (long long)B, s * 1e3,
            double(B) / s);
        std::fflush(stdout);
      }
    }
  } catch (const nsamp::Error& err) {
    std::fprintf(stderr, "%s\n", err.what());
    return 1;
  }
  return 0;
}
