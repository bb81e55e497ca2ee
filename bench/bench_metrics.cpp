// bench_metrics: time of the pairwise sample-set metrics against the sample count on one device: exact x-W2
// (auction + exact finish), Sinkhorn (sde_sampler convention, 100 iterations) and MMD (median bandwidth).
// Inputs: N exact samples of a target against N more (default gmm40, so the problem is the real one).
// One JSON line per case.
//   bench_metrics [--device cpu|cuda|auto] [--sizes 500,1000,2000,5000,10000] [--target gmm40] [--metrics
//   x_w2,sinkhorn,mmd] [--float32] [--auction-min-rows N]
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/samplers/sample_distances.h"
#include "nsamp/targets/target.h"

using namespace nsamp;

namespace {

void check_metric(const std::string& m) {
  NSAMP_CHECK(m == "x_w2" || m == "sinkhorn" || m == "mmd", "bench_metrics: unknown metric '", m,
              "' (valid: x_w2, sinkhorn, mmd)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_metrics: seconds per call of the pairwise sample-set metrics, as JSON lines",
               "bench_metrics"};
  bench::CommonArgs common;
  bench::add_common(app, common);
  std::string sizes = "500,1000,2000,5000,10000", target = "gmm40", which = "x_w2,sinkhorn,mmd";
  bool float32 = false;
  bench::add_list(app, "--sizes", sizes, "sample counts N (N against N)", bench::positive());
  app.add_option("--target", target, "target whose exact samples are compared")
      ->capture_default_str()
      ->check(bench::checked_by([](const std::string& n) { targets::make_target(n, {32}); }));
  bench::add_list(app, "--metrics", which, "metrics: x_w2, sinkhorn, mmd", bench::checked_by(check_metric));
  app.add_flag("--float32", float32, "time in float32 (default: float64)");
  std::int64_t auction_min_rows = samplers::kDeviceAuctionMinRows;
  app.add_option("--auction-min-rows", auction_min_rows,
                 "x-W2 on CUDA: the device auction from this many rows up (0: always; default: never)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    const DType dtype = float32 ? DType::F32 : DType::F64;
    Context ctx(parse_device(common.device), 1);
    auto t = targets::make_target(target, {32});
    for (const std::int64_t n : bench::split_ints(sizes)) {
      Tensor x = Tensor::empty(Shape{n, t->dim()}, dtype, ctx),
             y = Tensor::empty(Shape{n, t->dim()}, dtype, ctx);
      t->sample(x, ctx);
      t->sample(y, ctx);
      for (const std::string& m : bench::split(which)) {
        std::string extra;
        std::function<void()> run;
        if (m == "x_w2")
          run = [&] {
            const samplers::W2Result r = samplers::exact_w2(x, y, ctx, auction_min_rows);
            extra = ", \"value\": " + std::to_string(r.w2) +
                    ", \"auction_min_rows\": " + std::to_string(auction_min_rows) +
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
        emit(bench::format(
            "{\"bench\": \"metrics\", \"metric\": \"%s\", \"target\": \"%s\", \"device\": \"%s\", \"dtype\": "
            "\"%s\", \"n\": %lld, \"seconds\": %.4f%s}",
            m.c_str(), t->name().c_str(), ctx.device().str().c_str(), dtype_name(dtype), (long long)n, s,
            extra.c_str()));
      }
    }
  });
}
