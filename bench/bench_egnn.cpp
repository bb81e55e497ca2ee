// bench_egnn: time per sample of the EGNN (samplers/egnn.h) forward pass without a tape and of forward +
// backward (parameter and input gradients, a random cotangent), for both implementations ("fused": the pair
// kernels of kernels/egnn.h; "composed": the autograd ops over stored edge tensors), for n = 4, 13, 55
// particles (DW-4 in 2-D, LJ-13 and LJ-55 in 3-D) at the given width and depth, on one device. One JSON line
// per case, with the network's FLOPs per sample (Egnn::flops_per_sample: the edge and node GEMMs; backward
// counted as twice the forward).
//   bench_egnn [--device cpu|cuda|auto] [--particles 4,13,55] [--width 128] [--layers 3]
//              [--batches 64,256] [--reps N]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"
#include "nsamp/samplers/egnn.h"

using namespace nsamp;
using nsamp::bench::split;

int main(int argc, char** argv) {
  std::string dev = "auto";
  std::vector<std::string> particles{"4", "13", "55"}, batches{"64", "256"};
  std::int64_t width = 128;
  int layers = 3, reps = 3;
  for (int i = 1; i < argc; ++i) {
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--device") && more)
      dev = argv[++i];
    else if (!std::strcmp(argv[i], "--particles") && more)
      particles = split(argv[++i]);
    else if (!std::strcmp(argv[i], "--width") && more)
      width = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--layers") && more)
      layers = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batches") && more)
      batches = split(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && more)
      reps = std::atoi(argv[++i]);
    else {
      std::fprintf(
          stderr,
          "usage: bench_egnn [--device auto|cpu|cuda] [--particles 4,13,55] [--width W] [--layers L] "
          "[--batches a,b] [--reps N]\n");
      return 2;
    }
  }
  try {
    Context ctx(parse_device(dev), 1);
    for (const std::string& ns : particles) {
      const int n = std::stoi(ns), D = n == 4 ? 2 : 3;
      samplers::EgnnConfig cfg;
      cfg.hidden = width;
      cfg.layers = layers;
      samplers::Egnn net(targets::Particles{n, D}, cfg, DType::F32, ctx, "bench");
      for (const std::string& bs : batches) {
        const std::int64_t B = std::stoll(bs);
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
          std::printf(
              "{\"bench\": \"egnn\", \"device\": \"%s\", \"particles\": %d, \"spatial\": %d, \"width\": "
              "%lld, "
              "\"layers\": %d, \"batch\": %lld, \"impl\": \"%s\", \"pass\": \"%s\", \"ms\": %.4f, "
              "\"us_per_sample\": %.3f, \"gflops\": %.2f}\n",
              ctx.device().str().c_str(), n, D, (long long)width, layers, (long long)B,
              fused ? "fused" : "composed", backward ? "forward_backward" : "forward", s * 1e3,
              s * 1e6 / double(B), flops / s * 1e-9);
          std::fflush(stdout);
        }
      }
    }
  } catch (const nsamp::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
