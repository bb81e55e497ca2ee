// bench_egnn: time per sample of the EGNN (samplers/egnn.h) forward pass without a tape and of forward +
// backward (parameter and input gradients, a random cotangent), for both implementations ("fused": the pair
// kernels of kernels/egnn.h; "composed": the autograd ops over stored edge tensors), for n = 4, 13, 55
// particles (DW-4 in 2-D, LJ-13 and LJ-55 in 3-D) at the given width and depth, on one device. One JSON line
// per case, with the network's FLOPs per sample (Egnn::flops_per_sample: the edge and node GEMMs; backward
// counted as twice the forward).
//   bench_egnn [--device cpu|cuda|auto] [--particles 4,13,55] [--width 128] [--layers 3]
//              [--batches 64,256] [--reps N]
#include <chrono>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"
#include "nsamp/samplers/egnn.h"

using namespace nsamp;

int main(int argc, char** argv) {
  CLI::App app{"bench_egnn: time per sample of the EGNN's forward and forward + backward, as JSON lines",
               "bench_egnn"};
  bench::CommonArgs common;
  bench::add_common(app, common);
  std::string particles = "4,13,55", batches = "64,256";
  std::int64_t width = 128;
  int layers = 3, reps = 3;
  bench::add_list(app, "--particles", particles, "particle counts n (n = 4: 2-D, else 3-D)",
                  bench::positive());
  app.add_option("--width", width, "hidden width")->capture_default_str()->check(bench::positive());
  app.add_option("--layers", layers, "EGNN layers")->capture_default_str()->check(bench::positive());
  bench::add_list(app, "--batches", batches, "batch sizes", bench::positive());
  bench::add_reps(app, reps, "timed passes per case");
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    Context ctx(parse_device(common.device), 1);
    for (const std::int64_t np : bench::split_ints(particles)) {
      const int n = int(np), D = n == 4 ? 2 : 3;
      samplers::EgnnConfig cfg;
      cfg.hidden = width;
      cfg.layers = layers;
      samplers::Egnn net(targets::Particles{n, D}, cfg, DType::F32, ctx, "bench");
      for (const std::int64_t B : bench::split_ints(batches)) {
        Tensor xt = Tensor::empty(Shape{B, std::int64_t(n) * D}, DType::F32, ctx),
               tt = Tensor::empty(Shape{B, 1}, DType::F32, ctx), cot = xt.clone(ctx);
        fill_normal(xt, ctx, 0.0, 1.5);
        fill_uniform(tt, ctx, 0.0, 1.0);
        fill_normal(cot, ctx);
        const ag::Var x = ag::Var::leaf(xt, true), t = ag::Var::leaf(tt);
        std::vector<ag::Var> wrt = net.parameters();
        wrt.push_back(x);
        for (int pass = 0; pass < 4; ++pass) {
          const bool backward = pass % 2 == 1, fused = pass < 2;
          net.set_fused(fused);
          auto run = [&] {
            ag::Tape tp(ctx);
            if (!backward) {
              ag::NoGrad ng(tp);
              net.forward(tp, t, x);
              return;
            }
            tp.gradients(net.forward(tp, t, x), wrt, cot);
          };
          run();  // warm-up: the pair indices, the allocator cache
          ctx.synchronize();
          const auto t0 = std::chrono::steady_clock::now();
          for (int r = 0; r < reps; ++r) run();
          ctx.synchronize();
          const double s =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
          const double flops = net.flops_per_sample() * double(B) * (backward ? 3 : 1);
          emit(bench::format(
              "{\"bench\": \"egnn\", \"device\": \"%s\", \"particles\": %d, \"spatial\": %d, \"width\": "
              "%lld, "
              "\"layers\": %d, \"batch\": %lld, \"impl\": \"%s\", \"pass\": \"%s\", \"ms\": %.4f, "
              "\"us_per_sample\": %.3f, \"gflops\": %.2f}",
              ctx.device().str().c_str(), n, D, (long long)width, layers, (long long)B,
              fused ? "fused" : "composed", backward ? "forward_backward" : "forward", s * 1e3,
              s * 1e6 / double(B), flops / s * 1e-9));
        }
      }
    }
  });
}
