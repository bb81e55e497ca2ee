// bench_mc_score: throughput of iDEM's Monte Carlo noisy score (Target::mc_score: K energy+gradient
// evaluations per point, streamed through the online log-sum-exp), in points x K per second, per target and
// K, on one device. One JSON line per case. Points: exact samples where the target has a sampler, else
// Gaussian points of a physical scale (particle systems); sigma 0.5.
//   bench_mc_score [--device cpu|cuda|auto] [--targets gmm40,dw4,lj13,lj55] [--K 100,500,1000]
//   [--batch 512] [--reps N] [--float64]
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
  std::vector<std::string> names{"gmm40", "dw4", "lj13", "lj55"}, ks{"100", "500", "1000"};
  std::int64_t batch = 512;
  int reps = 3;
  DType dtype = DType::F32;
  for (int i = 1; i < argc; ++i) {
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--device") && more)
      dev = argv[++i];
    else if (!std::strcmp(argv[i], "--targets") && more)
      names = split(argv[++i]);
    else if (!std::strcmp(argv[i], "--K") && more)
      ks = split(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && more)
      batch = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && more)
      reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--float64"))
      dtype = DType::F64;
    else {
      std::fprintf(stderr,
                   "usage: bench_mc_score [--device auto|cpu|cuda] [--targets a,b] [--K a,b] [--batch B] "
                   "[--reps N] [--float64]\n");
      return 2;
    }
  }
  try {
    Context ctx(parse_device(dev), 1);
    for (const std::string& name : names) {
      auto t = targets::make_target(name);
      Tensor x = Tensor::empty(Shape{batch, t->dim()}, dtype, ctx),
             sigma = Tensor::empty(Shape{batch}, dtype, ctx);
      if (t->has_sampler())
        t->sample(x, ctx);
      else
        fill_normal(x, ctx, 0.0, t->particles().n > 0 ? 1.5 : 1.0);
      fill_constant(sigma, 0.5, ctx);
      Tensor score = Tensor::empty(x.shape(), dtype, ctx), log_p = Tensor::empty(Shape{batch}, dtype, ctx);
      for (const std::string& kstr : ks) {
        const std::int64_t K = std::stoll(kstr);
        t->mc_score(x, sigma, K, 0.0, score, &log_p, ctx);  // warm-up
        ctx.synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) t->mc_score(x, sigma, K, 0.0, score, &log_p, ctx);
        ctx.synchronize();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
        std::printf(
            "{\"bench\": \"mc_score\", \"target\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", \"batch\": "
            "%lld, "
            "\"K\": %lld, \"ms\": %.6f, \"point_samples_per_s\": %.4g}\n",
            t->name().c_str(), ctx.device().str().c_str(), dtype_name(dtype), (long long)batch, (long long)K,
            s * 1e3, double(batch) * double(K) / s);
        std::fflush(stdout);
      }
    }
  } catch (const nsamp::Error& err) {
    std::fprintf(stderr, "%s\n", err.what());
    return 1;
  }
  return 0;
}
