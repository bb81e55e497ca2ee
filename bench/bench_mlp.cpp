// bench_mlp: time per sample of an MLP's forward pass and of forward + backward, for each width and batch, on
// one device, one JSON line per case. Two paths:
//   whole_network: ag::mlp, the whole network as one tape node (GEMM + fused bias/activation epilogue per
//   layer) per_layer:     ag::matmul, ag::add and ag::activation as separate nodes (what an unfused framework
//   does)
// The network is the samplers' shape: d -> W -> W -> W -> d with SiLU, d = 32.
// --cases fourier_mlp adds the path samplers' control network (path_samplers.md's FourierMLP: d = 2, 2
// hidden layers of --fourier-width channels, one shared time), forward and forward + backward into the
// parameters and the input, as bench/peers/peer_mlp.py times it; its FLOPs are counted as 2 B P per pass
// over all P parameters, as the peer counts them (the time path runs once per batch, so this overstates).
//   bench_mlp [--device cpu|cuda|auto] [--widths 64,128,...] [--batches 1024,4096,...] [--reps N] [--tf32]
//             [--cases mlp,fourier_mlp] [--fourier-width 64] [--fourier-batches 1024,...]
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/autograd/module.h"
#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"
#include "nsamp/samplers/networks.h"

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
  std::string widths = "64,128,144,192,256,400", batches = "1024,4096,16384,65536", cases = "mlp",
              fourier_batches = "1024,4096,16384,65536";
  std::int64_t fourier_width = 64;
  int reps = 10;
  bool tf32 = false;
  bench::add_list(app, "--widths", widths, "hidden widths W of d -> W -> W -> W -> d", bench::positive());
  bench::add_list(app, "--batches", batches, "batch sizes", bench::positive());
  app.add_option("--cases", cases, "comma-separated: mlp, fourier_mlp")
      ->capture_default_str()
      ->check(bench::checked_by([](const std::string& v) {
        for (const std::string& c : bench::split(v))
          NSAMP_CHECK(c == "mlp" || c == "fourier_mlp", "unknown case '", c, "' (valid: mlp, fourier_mlp)");
      }));
  app.add_option("--fourier-width", fourier_width, "channels of the FourierMLP")
      ->capture_default_str()
      ->check(bench::positive());
  bench::add_list(app, "--fourier-batches", fourier_batches, "batch sizes of the FourierMLP",
                  bench::positive());
  bench::add_reps(app, reps, "timed passes per case");
  app.add_flag("--tf32", tf32, "allow TF32 tensor-core GEMMs on CUDA (default: off)");
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    ContextOptions co;
    co.device = parse_device(common.device);
    co.seed = 1;
    co.allow_tf32 = tf32;
    Context ctx(co);
    auto timed = [&](auto&& run) {  // seconds per call, after one warm-up call (handles, allocator cache)
      run();
      ctx.synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) run();
      ctx.synchronize();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    };
    const std::vector<std::string> case_list = bench::split(cases);
    const bool want_mlp = std::find(case_list.begin(), case_list.end(), "mlp") != case_list.end();
    if (std::find(case_list.begin(), case_list.end(), "fourier_mlp") != case_list.end()) {
      const std::int64_t dim = 2, W = fourier_width;
      samplers::FourierMLP net(dim, W, 2, false, DType::F32, ctx, "bench");
      std::int64_t params = 0;
      for (const ag::Var& p : net.parameters()) params += p.value().numel();
      const ag::Var tt =
          ag::Var::leaf(Tensor::from_vector(std::vector<float>{0.3f}, Shape{1, 1}, ctx.device(), ctx));
      for (std::int64_t B : bench::split_ints(fourier_batches)) {
        Tensor xt = Tensor::empty(Shape{B, dim}, DType::F32, ctx),
               cot = Tensor::empty(Shape{B, dim}, DType::F32, ctx);
        fill_normal(xt, ctx);
        fill_normal(cot, ctx);
        const ag::Var x = ag::Var::leaf(xt, true, "x");
        const double fwd_flops = 2.0 * double(B) * double(params);
        for (bool backward : {false, true}) {
          const double s = timed([&] {
            ag::Tape t(ctx);
            ag::Var y = net.forward(t, tt, x);
            if (backward) t.backward(y, cot);
          });
          const double flops = backward ? 3 * fwd_flops : fwd_flops;
          emit(bench::format(
              "{\"bench\": \"fourier_mlp\", \"device\": \"%s\", \"path\": \"whole_network\", "
              "\"pass\": \"%s\", \"width\": %lld, \"batch\": %lld, \"dim\": %lld, \"tf32\": %s, "
              "\"ms\": %.6f, \"ns_per_sample\": %.3f, \"gflops\": %.2f}",
              ctx.device().str().c_str(), backward ? "forward_backward" : "forward", (long long)W,
              (long long)B, (long long)dim, tf32 ? "true" : "false", s * 1e3, s * 1e9 / double(B),
              flops / s * 1e-9));
        }
        for (ag::Var p : net.parameters()) p.zero_grad();
      }
    }
    const std::int64_t d = 32;
    for (std::int64_t W : want_mlp ? bench::split_ints(widths) : std::vector<std::int64_t>{}) {
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
            const double s = timed([&] { run(backward); });
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
