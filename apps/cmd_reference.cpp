// nsamp reference: a reference sample set from long MALA runs on the target's own gradient, for targets
// without an exact sampler or a public reference file (LJ-55). The procedure, and what the report records:
//   1. `chains` independent chains start from N(0, init_std^2) per coordinate; particle systems instead start
//      from a cubic (or square) lattice of spacing `lattice` around the origin with N(0, 0.05^2) jitter, so
//      that no two particles overlap (an overlapping LJ pair has an energy of order 1e15 and freezes MALA).
//   2. Burn-in: `burn_in` MALA steps; every 100 steps the step size is multiplied by 1.5 when that window's
//      acceptance exceeded 0.65 and divided by 1.5 below 0.45 (the usual MALA optimum is near 0.57). The step
//      is then frozen, so that the sampling phase is an exact MALA chain.
//   3. Sampling: one snapshot of every chain every `thin` steps until n samples are collected.
//   4. Convergence: split R-hat of the energy over the chains' snapshot traces, the first and second halves'
//      mean energies, and the acceptance of the sampling phase, with the wall time, go to the JSON report.
// Samples are written mean-free for particle systems.
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"
#include "nsamp/core/npy.h"
#include "nsamp/samplers/diagnostics.h"
#include "nsamp/samplers/mala.h"
#include "nsamp/targets/reference.h"

namespace nsamp::apps {

Action add_reference(CLI::App& app) {
  struct Opts {
    std::string target, out, report, device = "auto";
    std::int64_t n = 10000, chains = 1000, burn_in = 20000, thin = 100, dim = 0;
    double step = 1e-4, init_std = 1.0, lattice = 1.12;
    std::uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("reference", "A reference sample set from long, checked MALA runs");
  cmd->add_option("--target", o->target, "target name")->required();
  cmd->add_option("-n", o->n, "samples to write")->capture_default_str()->check(positive());
  cmd->add_option("--out", o->out, "samples, [n, d] float32 .npy")->required();
  cmd->add_option("--report", o->report, "JSON report (default: <out>.json)");
  cmd->add_option("--chains", o->chains, "independent chains")->capture_default_str()->check(positive());
  cmd->add_option("--burn-in", o->burn_in, "burn-in steps (step size adapted)")
      ->capture_default_str()
      ->check(non_negative());
  cmd->add_option("--thin", o->thin, "steps between snapshots")->capture_default_str()->check(positive());
  cmd->add_option("--step", o->step, "initial MALA step size")->capture_default_str()->check(positive_real());
  cmd->add_option("--init-std", o->init_std, "standard deviation of the starting points")
      ->capture_default_str();
  cmd->add_option("--lattice", o->lattice, "lattice spacing of particle systems' starting points")
      ->capture_default_str()
      ->check(positive_real());
  cmd->add_option("--seed", o->seed, "Philox seed")->capture_default_str()->check(non_negative());
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--dim", o->dim, "dimension, for the gaussian target");
  return [o] {
    const auto t0 = std::chrono::steady_clock::now();
    auto target = targets::make_target(o->target, {o->dim});
    Context ctx(parse_device(o->device), o->seed);
    const std::int64_t C = o->chains, d = target->dim();
    const std::int64_t snaps = (o->n + C - 1) / C;
    NSAMP_CHECK(snaps >= 4, "reference: ", snaps, " snapshots per chain (n / chains) are too few for R-hat; ",
                "use fewer chains or more samples");
    Tensor x0 = Tensor::empty(Shape{C, d}, DType::F32, ctx);
    const targets::Particles p = target->particles();
    if (p.n > 0) {
      // Particles on the first n sites of a lattice, side = ceil(n^(1/D)), centred, plus a small jitter.
      const int side = static_cast<int>(std::ceil(std::pow(double(p.n), 1.0 / p.spatial) - 1e-9));
      std::vector<float> site(static_cast<std::size_t>(d));
      for (int i = 0; i < p.n; ++i) {
        int rest = i;
        for (int k = 0; k < p.spatial; ++k) {
          site[static_cast<std::size_t>(i * p.spatial + k)] =
              static_cast<float>(o->lattice * (rest % side - 0.5 * (side - 1)));
          rest /= side;
        }
      }
      Tensor jitter = Tensor::empty(Shape{C, d}, DType::F32, ctx);
      fill_normal(jitter, ctx, 0.0, 0.05);
      std::vector<float> all(static_cast<std::size_t>(C * d));
      const std::vector<float> jv = jitter.to_vector<float>(ctx);
      for (std::size_t i = 0; i < all.size(); ++i) all[i] = site[i % static_cast<std::size_t>(d)] + jv[i];
      x0 = Tensor::from_vector(all, Shape{C, d}, ctx.device(), ctx);
    } else {
      fill_normal(x0, ctx, 0.0, o->init_std);
    }
    samplers::MalaChains chains(*target, x0, o->step, ctx);
    // Burn-in with step adaptation on 100-step windows.
    double accepted_before = 0;
    for (std::int64_t done = 0; done < o->burn_in;) {
      const std::int64_t w = std::min<std::int64_t>(100, o->burn_in - done);
      chains.run(w);
      done += w;
      const double total = chains.acceptance_rate() * double(chains.steps_done()) * double(C);
      const double rate = (total - accepted_before) / (double(w) * double(C));
      accepted_before = total;
      if (rate > 0.65) chains.set_step(chains.step() * 1.5);
      if (rate < 0.45) chains.set_step(chains.step() / 1.5);
    }
    const double accepted_at_burn_in = chains.acceptance_rate() * double(chains.steps_done()) * double(C);
    const std::int64_t burn_steps = chains.steps_done();
    // Sampling.
    std::vector<float> samples;
    samples.reserve(static_cast<std::size_t>(snaps * C * d));
    std::vector<std::vector<double>> traces(static_cast<std::size_t>(C));
    for (std::int64_t s = 0; s < snaps; ++s) {
      chains.run(o->thin);
      const Tensor xs = chains.x().to(Device::cpu(), ctx);
      const std::vector<float> v = xs.to_vector<float>(ctx);
      samples.insert(samples.end(), v.begin(), v.end());
      const std::vector<float> e = chains.energy().to(Device::cpu(), ctx).to_vector<float>(ctx);
      for (std::int64_t c = 0; c < C; ++c)
        traces[static_cast<std::size_t>(c)].push_back(e[static_cast<std::size_t>(c)]);
    }
    const double sample_acc =
        (chains.acceptance_rate() * double(chains.steps_done()) * double(C) - accepted_at_burn_in) /
        (double(chains.steps_done() - burn_steps) * double(C));
    const double rhat = samplers::split_rhat(traces);
    double first = 0, second = 0, mean = 0, sq = 0;
    const std::size_t half = static_cast<std::size_t>(snaps / 2);
    for (const auto& tr : traces)
      for (std::size_t i = 0; i < tr.size(); ++i) {
        (i < half ? first : second) += tr[i];
        mean += tr[i];
        sq += tr[i] * tr[i];
      }
    const double count = double(C) * double(snaps);
    first /= double(C) * double(half);
    second /= double(C) * double(snaps - std::int64_t(half));
    mean /= count;
    const double stddev = std::sqrt(std::max(0.0, sq / count - mean * mean));

    Tensor out = Tensor::from_vector(std::vector<float>(samples.begin(), samples.begin() + o->n * d),
                                     Shape{o->n, d}, Device::cpu(), ctx);
    if (target->particles().n > 0) targets::remove_centre_of_mass(out, target->particles());
    write_npy(o->out, out);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json rep = {{"target", target->name()},
                          {"device", ctx.device().str()},
                          {"seed", o->seed},
                          {"samples", o->n},
                          {"chains", C},
                          {"burn_in_steps", o->burn_in},
                          {"thin", o->thin},
                          {"sampling_steps_per_chain", snaps * o->thin},
                          {"final_step_size", chains.step()},
                          {"sampling_acceptance", sample_acc},
                          {"energy_mean", mean},
                          {"energy_std", stddev},
                          {"energy_mean_first_half", first},
                          {"energy_mean_second_half", second},
                          {"energy_split_rhat", rhat},
                          {"wall_seconds", seconds},
                          {"mean_free", target->particles().n > 0}};
    const std::string report = o->report.empty() ? o->out + ".json" : o->report;
    std::ofstream(report) << rep.dump(2) << "\n";
    std::cerr << "reference: " << o->n << " samples of " << target->name() << " -> " << o->out << "; energy "
              << mean << " +- " << stddev << ", split R-hat " << rhat << ", acceptance " << sample_acc
              << ", step " << chains.step() << ", " << seconds << " s; report " << report << "\n";
    if (!(rhat < 1.05))
      std::cerr << "reference: WARNING: R-hat " << rhat << " >= 1.05: the chains have not mixed\n";
    return 0;
  };
}

}  // namespace nsamp::apps
