// bench_path: time of one path-sampler training step (loss and gradient, no optimiser) per method and loss,
// at the paper's size by default (batch 2048, 200 steps per path, FourierMLP 64 wide). One JSON line per
// case. lv costs two simulations and one backward per step; kl one simulation and a backward through the
// whole path (its tape holds every step): peak_mib, the allocator's high-water mark during the timed steps
// above what was in use before them, shows that memory (kl: O(steps x batch x width); lv: one step's).
//   bench_path [--device cpu|cuda|auto] [--target gmm9] [--batch 2048] [--steps 200] [--methods pis,dis,...]
//   [--losses kl,lv,lv_traj] [--graph on|off|both] [--reps 3] [--float64]
// --graph: steps also (both) or only (on) timed replayed as a CUDA graph (core/step_graph.h), the way nsamp
// train runs them.
#include <chrono>
#include <string>
#include <vector>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/core/rng_counter.h"
#include "nsamp/core/step_graph.h"
#include "nsamp/samplers/path_samplers.h"

using namespace nsamp;

int main(int argc, char** argv) {
  CLI::App app{"bench_path: one path-sampler training step per method and loss, as JSON lines", "bench_path"};
  bench::CommonArgs common;
  bench::add_common(app, common);
  std::string target = "gmm9", methods = "pis,dis,dds,euler-dds", losses = "kl,lv,lv_traj";
  std::int64_t batch = 2048;
  int steps = 200, reps = 3;
  bool float64 = false;
  std::string graph = "both";
  app.add_option("--target", target, "target name (gaussian in d = 2)")
      ->capture_default_str()
      ->check(bench::checked_by([](const std::string& n) { targets::make_target(n, {2}); }));
  app.add_option("--batch", batch, "paths per step")->capture_default_str()->check(bench::positive());
  app.add_option("--steps", steps, "time steps per path")->capture_default_str()->check(bench::positive());
  bench::add_list(app, "--methods", methods, "methods: pis, dis, dds, euler-dds",
                  bench::checked_by([](const std::string& m) { samplers::parse_path_method(m); }));
  bench::add_list(app, "--losses", losses, "losses: kl, lv, lv_traj",
                  bench::checked_by([](const std::string& l) { samplers::parse_path_loss(l); }));
  app.add_option("--graph", graph,
                 "lv, lv_traj: time the step replayed as a CUDA graph (on), eager (off) or both")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off", "both"}));
  bench::add_reps(app, reps, "timed steps per case");
  bench::add_float64(app, float64);
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    const DType dtype = float64 ? DType::F64 : DType::F32;
    Context ctx(parse_device(common.device), 1);
    auto t = targets::make_target(target, {2});
    for (const std::string& m : bench::split(methods))
      for (const std::string& l : bench::split(losses)) {
        samplers::PathConfig c;
        c.method = samplers::parse_path_method(m);
        c.steps = steps;
        c.traj_per_sample = 8;  // lv_traj: 8 paths per start point
        const samplers::PathLoss loss = samplers::parse_path_loss(l);
        std::vector<bool> modes;
        if (graph != "on") modes.push_back(false);
        if (graph != "off") modes.push_back(true);
        for (const bool graphed : modes) {
          samplers::PathSampler ps(*t, c, dtype, ctx);
          const std::uint64_t per = ps.counters_per_batch(batch);
          RngCounter noise(ctx, 0);
          Tensor stats = Tensor::empty(Shape{2}, DType::F64, ctx);
          StepGraph g;
          auto device_step = [&] {  // the step nsamp train replays: gradients zeroed in place, no host read
            for (ag::Var p : ps.parameters()) {
              Tensor gr = p.grad();
              zero(gr, ctx);
            }
            ps.device_loss_and_grad(loss, batch, 1, noise.at(), stats, ctx);
            noise.advance(per, ctx);
          };
          if (graphed)
            for (ag::Var p : ps.parameters())
              p.set_grad(Tensor::zeros(p.shape(), p.dtype(), p.device(), ctx));
          auto one = [&](int k) {
            if (graphed) {
              g.replay();
              return;
            }
            for (ag::Var p : ps.parameters()) p.set_grad(Tensor());
            ps.loss_and_grad(loss, batch, 1, std::uint64_t(k) * per, nullptr, ctx);
          };
          if (graphed) {
            device_step();  // warm-up (allocator, cuBLAS, constants), then the capture
            g.capture(ctx, device_step);
          }
          one(0);  // warm-up
          ctx.synchronize();
          const std::size_t base = ctx.allocator().stats().bytes_in_use;
          ctx.allocator().reset_peak();
          const auto t0 = std::chrono::steady_clock::now();
          for (int r = 0; r < reps; ++r) one(r + 1);
          ctx.synchronize();
          const double s =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
          const int taken = int(ps.path_steps());  // DDS's cosine grid drops its zero-length tail
          // Memory one step needs beyond the parameters and state held between steps (the kl tape's growth;
          // a graph's buffers were all made at its capture).
          const double peak_mib = double(ctx.allocator().stats().peak_bytes_in_use - base) / (1 << 20);
          emit(bench::format(
              "{\"bench\": \"path_step\", \"method\": \"%s\", \"loss\": \"%s\", \"target\": \"%s\", "
              "\"device\": \"%s\", \"dtype\": \"%s\", \"graph\": \"%s\", \"batch\": %lld, \"steps\": %d, "
              "\"ms\": %.3f, \"path_steps_per_s\": %.4g, \"peak_mib\": %.1f}",
              m.c_str(), l.c_str(), t->name().c_str(), ctx.device().str().c_str(), dtype_name(dtype),
              graphed ? "on" : "off", (long long)batch, taken, s * 1e3, double(batch) * taken / s, peak_mib));
        }
      }
  });
}
