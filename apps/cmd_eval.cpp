// nsamp eval: every metric of ../shared/spec/metrics.md for a sample file against a reference, under a named
// protocol, as JSON (and optionally a PNG figure). The work is samplers::evaluate; this file reads the
// inputs, picks the reference and writes the outputs.
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "eval_plot.h"
#include "nsamp/core/config.h"
#include "nsamp/core/device.h"
#include "nsamp/core/npy.h"
#include "nsamp/samplers/evaluation.h"

namespace nsamp::apps {

namespace {

// [N, n, spatial] particle files (the layout of several papers' data) are flattened to [N, n * spatial].
Tensor read_rows(const std::string& path, std::int64_t dim, const char* what, Context& ctx) {
  Tensor t = read_npy(path, ctx, DType::F64);
  if (t.rank() == 3 && t.shape()[1] * t.shape()[2] == dim) t = t.reshape(Shape{t.shape()[0], dim});
  NSAMP_CHECK(t.rank() == 2 && t.cols() == dim, "eval: ", what, " ", path, " holds ", t.shape().str(),
              " but the target needs [N, ", dim, "]");
  NSAMP_CHECK(t.rows() > 0, "eval: ", what, " ", path, " holds no samples");
  return t;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

Action add_eval(CLI::App& app) {
  struct Opts {
    std::string target, samples, reference, log_weights, protocol = "full", out, plot, device = "auto",
                                                         metrics, split = "test";
    std::int64_t dim = 0, max_pairs = 2000, reference_n = 0;
    std::uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("eval", "The field's metrics for a sample set against a reference");
  cmd->add_option("--target", o->target, "target name")->required();
  cmd->add_option("--samples", o->samples, "model samples, [N, d] (or [N, n, D]) .npy")->required();
  CLI::Option* reference = cmd->add_option(
      "--reference", o->reference,
      "reference samples .npy (default: exact samples of the target, or its reference file, see --split)");
  cmd->add_option(
         "--split", o->split,
         "without --reference, the reference file of a target with two splits (dw4, lj13): test (the "
         "papers' numbers) | val; targets with an exact sampler draw from it instead")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "val"}))
      ->excludes(reference);
  cmd->add_option("--log-weights", o->log_weights, "per-sample log-weights [N] .npy (log Z, ELBO, ESS)");
  cmd->add_option("--protocol", o->protocol, "full | idem | dikl")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the subsets and of the exact reference draw")
      ->capture_default_str()
      ->check(non_negative());
  cmd->add_option("--out", o->out, "metrics JSON (default: print only)");
  cmd->add_option("--plot", o->plot, "PNG figure: samples over density contours (2-D), else histograms");
  cmd->add_option("--metrics", o->metrics,
                  "comma-separated subset: x_w2, sinkhorn, sinkhorn_divergence, mmd, energy_tvd, energy_w2, "
                  "distance_tvd, distance_w2, modes, weights (default: all of the protocol's)");
  cmd->add_option("--max-pairs", o->max_pairs, "full protocol: samples per side for the pairwise metrics")
      ->capture_default_str()
      ->check(positive());
  cmd->add_option("--reference-n", o->reference_n, "exact reference samples to draw (default: max(N, 10000))")
      ->check(non_negative());
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--dim", o->dim, "dimension, for the gaussian target");
  return [o] {
    auto target = targets::make_target(o->target, {o->dim});
    samplers::EvalOptions opt;
    opt.protocol = samplers::parse_protocol(o->protocol);
    opt.seed = o->seed;
    opt.max_pairs = o->max_pairs;
    opt.metrics = split_list(o->metrics);
    if (!o->plot.empty())
      NSAMP_CHECK(plots_available(), "eval: --plot needs a build with Cairo (libcairo2-dev)");
    Context ctx(parse_device(o->device), o->seed);
    const Tensor x = read_rows(o->samples, target->dim(), "samples", ctx);
    std::string source;
    Tensor ref;
    if (!o->reference.empty()) {
      ref = read_rows(o->reference, target->dim(), "reference", ctx);
      source = "file " + o->reference;
    } else {
      const std::int64_t n = o->reference_n > 0 ? o->reference_n : std::max<std::int64_t>(x.rows(), 10000);
      ref = samplers::reference_for(
          *target, n, o->seed, source, ctx,
          o->split == "val" ? targets::ReferenceSplit::Validation : targets::ReferenceSplit::Test);
    }
    Tensor lw;
    if (!o->log_weights.empty()) {
      lw = read_npy(o->log_weights, ctx, DType::F64);
      NSAMP_CHECK(lw.numel() == x.rows() && (lw.rank() == 1 || (lw.rank() == 2 && lw.cols() == 1)),
                  "eval: ", o->log_weights, " holds ", lw.shape().str(), "; expected [", x.rows(),
                  "] log-weights");
    }
    const samplers::EvalReport r =
        samplers::evaluate(*target, x, ref, lw.defined() ? &lw : nullptr, source, opt, ctx);

    nlohmann::json j;
    j["nsamp_version"] = kVersion;
    j["target"] = r.target;
    j["protocol"] = r.protocol;
    j["seed"] = r.seed;
    j["device"] = ctx.device().str();
    j["samples"] = {{"file", o->samples},
                    {"in", r.samples_in},
                    {"used", r.samples_used},
                    {"nonfinite_rows", r.nonfinite_rows},
                    {"nonfinite_energies", r.nonfinite_energies}};
    if (lw.defined()) j["samples"]["nonfinite_log_weights"] = r.nonfinite_log_weights;
    j["reference"] = {{"source", r.reference_source}, {"samples", r.reference_samples}};
    nlohmann::json m = nlohmann::json::object();
    for (const samplers::MetricValue& v : r.metrics) {
      nlohmann::json e = {{"value", number(v.value)},
                          {"samples", v.samples},
                          {"convention", v.convention},
                          {"seconds", v.seconds}};
      if (v.repeats > 1) {
        e["std"] = number(v.std);
        e["repeats"] = v.repeats;
      }
      if (!v.converged) e["converged"] = false;
      m[v.name] = e;
    }
    j["metrics"] = m;
    for (const auto& [name, why] : r.skipped) j["skipped"][name] = why;
    if (!r.mode_counts.empty()) j["mode_counts"] = r.mode_counts;

    std::cout << "eval: " << r.target << ", protocol " << r.protocol << ", " << r.samples_used << " of "
              << r.samples_in << " samples (" << r.nonfinite_rows << " with NaN/Inf excluded) vs "
              << r.reference_samples << " reference samples (" << r.reference_source << ")\n";
    for (const samplers::MetricValue& v : r.metrics) {
      std::cout << "  " << std::left << std::setw(24) << v.name << std::setprecision(6) << v.value;
      if (v.repeats > 1) std::cout << " +- " << v.std << " (" << v.repeats << " repeats)";
      if (!v.converged) std::cout << " (not converged)";
      std::cout << "\n";
    }
    for (const auto& [name, why] : r.skipped) std::cout << "  " << name << " skipped: " << why << "\n";
    if (!o->out.empty()) {
      const std::string tmp = o->out + ".tmp";
      {
        std::ofstream f(tmp);
        NSAMP_CHECK(f.good(), "eval: cannot write ", tmp);
        f << j.dump(2) << "\n";
        NSAMP_CHECK(f.good(), "eval: writing ", tmp, " failed");
      }
      NSAMP_CHECK(std::rename(tmp.c_str(), o->out.c_str()) == 0, "eval: cannot move ", tmp, " to ", o->out);
      std::cout << "  metrics -> " << o->out << "\n";
    }
    if (!o->plot.empty()) {
      write_eval_plot(*target, r, o->plot, ctx);
      std::cout << "  figure -> " << o->plot << "\n";
    }
    return 0;
  };
}

}  // namespace nsamp::apps
