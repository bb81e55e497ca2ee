// bench_mlp: time per sample of an MLP's forward pass and of forward + backward, for each width and batch, on
// one device, one JSON line per case. Two paths:
//   whole_network: ag::mlp, the whole network as one tape node (GEMM + fused bias/activation epilogue per
//   layer) per_layer:     ag::matmul, ag::add and ag::activation as separate nodes (what an unfused framework
//   does)
// The network is the samplers' shape: d -> W -> W -> W -> d with SiLU, d = 32.
//   bench_mlp [--device cpu|cuda|auto] [--widths 64,128,...] [--batches 1024,4096,...] [--reps N] [--tf32]
#include <chrono>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/autograd/module.h"
#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"

using namespace nsamp;

namespace {

ag::Var per_layer(ag::Tape& t, const ag::MLP& net, const ag::Var& x) {
  ag::Var h = x;
  const auto& layers = net.layers();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    h = ag::add(t, ag::matmul(t, h, layers[l].weight(), false, true), layers[l].bias());
    if (l + 1 < layers.size()) h = ag::activation(t, ag::Activation::SiLU, h);
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_mlp: time per sample of an MLP's forward and forward + backward, as JSON lines",
               "bench_mlp"};
  bench::CommonArgs common;
  bench::add_common(app, common);
  std::string widths = "64,128,144,192,256,400", batches = "1024,4096,16384,65536";
  int reps = 10;
  bool tf32 = false;
  bench::add_list(app, "--widths", widths, "hidden widths W of d -> W -> W -> W -> d", bench::positive());
  bench::add_list(app, "--batches", batches, "batch sizes", bench::positive());
  bench::add_reps(app, reps, "timed passes per case");
  app.add_flag("--tf32", tf32, "allow TF32 tensor-core GEMMs on CUDA (default: off)");
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    ContextOptions co;
    co.device = parse_device(common.device);
    co.seed = 1;
    co.allow_tf32 = tf32;
    Context ctx(co);
    const std::int64_t d = 32;
    for (std::int64_t W : bench::split_ints(widths)) {
      ag::MLP net({d, W, W, W, d}, ag::Activation::SiLU, ag::Activation::Identity, DType::F32, ctx, "bench");
      std::int64_t params = 0;
      for (const ag::Var& p : net.parameters()) params += p.value().numel();
      for (std::int64_t B : bench::split_ints(batches)) {
        Tensor xt = Tensor::empty(Shape{B, d}, DType::F32, ctx);
        fill_normal(xt, ctx);
        const ag::Var x = ag::Var::leaf(xt);
        Tensor cot = Tensor::empty(Shape{B, d}, DType::F32, ctx);
        fill_normal(cot, ctx);
        // Multiply-adds of the GEMMs: forward 2 B P (P = weight count), backward twice that.
        const double fwd_flops = 2.0 * double(B) * double(params);
        for (const char* path : {"whole_network", "per_layer"}) {
          const bool whole = path[0] == 'w';
          auto run = [&](bool backward) {
            ag::Tape t(ctx);
            ag::Var y = whole ? net.forward(t, x) : per_layer(t, net, x);
            if (backward) t.backward(y, cot);
          };
          for (bool backward : {false, true}) {
            run(backward);  // warm-up: handles, allocator cache
            ctx.synchronize();
            const auto t0 = std::chrono::steady_clock::now();
            for (int r = 0; r < reps; ++r) run(backward);
            ctx.synchronize();
            const double s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
            const double flops = backward ? 3 * fwd_flops : fwd_flops;
            emit(bench::format(
                "{\"bench\": \"mlp\", \"device\": \"%s\", \"path\": \"%s\", \"pass\": \"%s\", \"width\": "
                "%lld, "
                "\"batch\": %lld, \"tf32\": %s, \"ms\": %.6f, \"ns_per_sample\": %.3f, \"gflops\": %.2f}",
                ctx.device().str().c_str(), path, backward ? "forward_backward" : "forward", (long long)W,
                (long long)B, tf32 ? "true" : "false", s * 1e3, s * 1e9 / double(B), flops / s * 1e-9));
          }
        }
        for (ag::Var p : net.parameters()) p.zero_grad();
      }
    }
  });
}
