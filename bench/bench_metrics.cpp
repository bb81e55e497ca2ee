// bench_metrics: time of the pairwise sample-set metrics against the sample count on one device: exact x-W2
// (auction + exact finish), Sinkhorn (sde_sampler convention, 100 iterations) and MMD (median bandwidth).
// Inputs: N exact samples of a target against N more (default gmm40, so the problem is the real one).
// One JSON line per case.
//   bench_metrics [--device cpu|cuda|auto] [--sizes 500,1000,2000,5000,10000] [--target gmm40] [--metrics
//   x_w2,sinkhorn,mmd] [--float32]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/samplers/sample_distances.h"
#include "nsamp/targets/target.h"

using namespace nsamp;

using nsamp::bench::split;

int main(int argc, char** argv) {
  std::string dev = "auto", target = "gmm40";
  std::vector<std::string> sizes{"500", "1000", "2000", "5000", "10000"}, which{"x_w2", "sinkhorn", "mmd"};
  DType dtype = DType::F64;
  for (int i = 1; i < argc; ++i) {
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--device") && more)
      dev = argv[++i];
    else if (!std::strcmp(argv[i], "--sizes") && more)
      sizes = split(argv[++i]);
    else if (!std::strcmp(argv[i], "--target") && more)
      target = argv[++i];
    else if (!std::strcmp(argv[i], "--metrics") && more)
      which = split(argv[++i]);
    else if (!std::strcmp(argv[i], "--float32"))
      dtype = DType::F32;
    else {
      std::fprintf(stderr,
                   "usage: bench_metrics [--device auto|cpu|cuda] [--sizes a,b] [--target NAME] [--metrics "
                   "x_w2,sinkhorn,mmd] [--float32]\n");
      return 2;
    }
  }
  try {
    Context ctx(parse_device(dev), 1);
    auto t = targets::make_target(target, {32});
    for (const std::string& sz : sizes) {
      const std::int64_t n = std::stoll(sz);
      Tensor x = Tensor::empty(Shape{n, t->dim()}, dtype, ctx),
             y = Tensor::empty(Shape{n, t->dim()}, dtype, ctx);
      t->sample(x, ctx);
      t->sample(y, ctx);
      for (const std::string& m : which) {
        std::string extra;
        std::function<void()> run;
        if (m == "x_w2")
          run = [&] {
            const samplers::W2Result r = samplers::exact_w2(x, y, ctx);
            extra = ", \"value\": " + std::to_string(r.w2) +
                    ", \"auction_rounds\": " + std::to_string(r.auction_rounds) +
                    ", \"augmented_rows\": " + std::to_string(r.augmented_rows);
          };
        else if (m == "sinkhorn")
          run = [&] {
            const samplers::SinkhornResult r = samplers::sinkhorn(
                x, y, samplers::SinkhornOptions::defaults_for(samplers::SinkhornConvention::SdeSampler), ctx);
            extra = ", \"value\": " + std::to_string(r.value) +
                    ", \"iterations\": " + std::to_string(r.iterations);
          };
        else if (m == "mmd")
          run = [&] { extra = ", \"value\": " + std::to_string(samplers::mmd_median(x, y, ctx).mmd); };
        else
          throw Error("bench_metrics: unknown metric '" + m + "' (valid: x_w2, sinkhorn, mmd)");
        ctx.synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        run();
        ctx.synchronize();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(
            "{\"bench\": \"metrics\", \"metric\": \"%s\", \"target\": \"%s\", \"device\": \"%s\", \"dtype\": "
            "\"%s\", \"n\": %lld, \"seconds\": %.4f%s}\n",
            m.c_str(), t->name().c_str(), ctx.device().str().c_str(), dtype_name(dtype), (long long)n, s,
            extra.c_str());
        std::fflush(stdout);
      }
    }
  } catch (const nsamp::Error& err) {
    std::fprintf(stderr, "%s\n", err.what());
    return 1;
  }
  return 0;
}
