// nsamp train and nsamp sample: the training-run frame. A run directory holds config.json (fully resolved),
// log.jsonl, checkpoint.safetensors (atomic, at every evaluation), samples.npy with log_weights.npy,
// metrics.json (samplers::evaluate) and samples.png. Everything is validated before the directory is
// touched; every file but the log is written through a temporary file and a rename.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "eval_plot.h"
#include "nsamp/autograd/params.h"
#include "nsamp/core/config.h"
#include "nsamp/core/device.h"
#include "nsamp/core/npy.h"
#include "nsamp/samplers/evaluation.h"
#include "nsamp/samplers/path_training.h"
#include "run_config.h"

namespace nsamp::apps {

namespace fs = std::filesystem;

namespace {

const char* kMethods = "pis, dis, dds, euler-dds (dikl, idem and iwsm are not implemented yet)";

nlohmann::json path_defaults() {
  nlohmann::json j = {{"method", "pis"},
                      {"target", ""},
                      {"dim", 0},
                      {"loss", "lv"},
                      {"seed", 0},
                      {"dtype", "float32"},
                      {"T", 0.0},
                      {"pis_sigma", 0.4472135954999579},
                      {"beta_min", 0.1},
                      {"beta_max", 10.0},
                      {"prior_quantile", 5e-5},
                      {"dds_alpha", 1.0},
                      {"dds_sigma", 1.0},
                      {"traj_per_sample", 8},
                      {"nsamp_version", kVersion}};
  // The training keys take their values from the quick preset file, so the defaults and the file agree.
  for (const char* k : {"iterations", "batch", "path_steps", "lr", "weight_decay", "lr_step_every",
                        "lr_gamma", "clip_grad", "ema_decay", "ema_start", "clip", "clip_schedule",
                        "log_every", "eval_every", "eval_paths", "final_samples", "channels", "layers"})
    j[k] = 0;
  j["clip_schedule"] = true;
  return j;
}

samplers::PathConfig path_config(const RunConfig& c) {
  samplers::PathConfig p;
  p.method = samplers::parse_path_method(c.str("method"));
  p.steps = int(c.integer("path_steps"));
  p.T = c.num("T");
  p.pis_sigma = c.num("pis_sigma");
  p.beta_min = c.num("beta_min");
  p.beta_max = c.num("beta_max");
  p.prior_quantile = c.num("prior_quantile");
  p.dds_alpha = c.num("dds_alpha");
  p.dds_sigma = c.num("dds_sigma");
  p.clip = c.num("clip");
  p.channels = c.integer("channels");
  p.layers = int(c.integer("layers"));
  p.traj_per_sample = int(c.integer("traj_per_sample"));
  return p;
}

DType dtype_of(const RunConfig& c) {
  const std::string d = c.str("dtype");
  NSAMP_CHECK(d == "float32" || d == "float64", "config: dtype must be float32 or float64, got '", d, "'");
  return d == "float32" ? DType::F32 : DType::F64;
}

// n paths as the files hold them: samples [n, d] and log-weights -R [n], float32 on the host.
std::pair<Tensor, Tensor> draw(const samplers::PathSampler& ps, std::int64_t n, std::uint64_t seed,
                               Context& ctx) {
  const samplers::PathSamples p = samplers::draw_paths(ps, n, seed, ctx);
  return {
      Tensor::from_vector(std::vector<float>(p.x.begin(), p.x.end()), Shape{n, std::int64_t(p.x.size()) / n},
                          Device::cpu(), ctx),
      Tensor::from_vector(std::vector<float>(p.log_w.begin(), p.log_w.end()), Shape{n}, Device::cpu(), ctx)};
}

// The control clip the run ended with (the schedule multiplies it by 5 after step 200 and again after 400).
double final_clip(const RunConfig& c) {
  const std::int64_t it = c.integer("iterations");
  if (!c.flag("clip_schedule")) return c.num("clip");
  return c.num("clip") * (it > 400 ? 25.0 : it > 200 ? 5.0 : 1.0);
}

}  // namespace

Action add_train(CLI::App& app) {
  struct Opts {
    std::string method, target, loss, preset = "quick", config, out, device = "auto";
    std::vector<std::string> sets;
    std::uint64_t seed = 0;
    std::int64_t dim = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("train", "Train a sampler on a target; writes a run directory");
  cmd->add_option("--method", o->method, std::string("method: ") + kMethods)->required();
  cmd->add_option("--target", o->target, "target name")->required();
  cmd->add_option("--loss", o->loss, "kl | lv | lv_traj (default: the config's, lv)");
  cmd->add_option("--preset", o->preset, "quick | paper (files in configs/path/)")->capture_default_str();
  cmd->add_option("--config", o->config, "JSON file of config keys, applied after the preset");
  cmd->add_option("--set", o->sets, "key=value, applied last (repeatable)");
  cmd->add_option("--seed", o->seed, "seed of the initialisation and of every path");
  cmd->add_option("--dim", o->dim, "dimension, for the gaussian target");
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--out", o->out, "run directory (created; must not hold a run already)")->required();
  return [o, cmd] {
    // Resolve and validate everything before touching the output directory.
    samplers::parse_path_method(o->method);
    NSAMP_CHECK(o->preset == "quick" || o->preset == "paper", "train: unknown preset '", o->preset,
                "' (valid: quick, paper)");
    RunConfig c(path_defaults());
    c.overlay_file(config_dir() + "/path/" + o->preset + ".json");
    const std::string per_method = config_dir() + "/path/" + o->preset + "-" + o->method + ".json";
    if (fs::exists(per_method)) c.overlay_file(per_method);
    const std::string pair = config_dir() + "/path/" + o->method + "-" + o->target + ".json";
    if (fs::exists(pair)) c.overlay_file(pair);
    if (!o->config.empty()) c.overlay_file(o->config);
    for (const std::string& s : o->sets) c.set(s);
    c.overlay({{"method", o->method}, {"target", o->target}}, "the command line");
    if (cmd->count("--loss")) c.overlay({{"loss", o->loss}}, "the command line");
    if (cmd->count("--seed")) c.overlay({{"seed", double(o->seed)}}, "the command line");
    if (cmd->count("--dim")) c.overlay({{"dim", double(o->dim)}}, "the command line");
    auto target = targets::make_target(c.str("target"), {c.integer("dim")});
    const samplers::PathLoss loss = samplers::parse_path_loss(c.str("loss"));
    const DType dtype = dtype_of(c);
    const samplers::PathConfig pc = path_config(c);
    samplers::PathTrainOptions to;
    to.loss = loss;
    to.iterations = c.integer("iterations");
    to.batch = c.integer("batch");
    to.lr = c.num("lr");
    to.weight_decay = c.num("weight_decay");
    to.clip_grad = c.num("clip_grad");
    to.lr_step_every = c.integer("lr_step_every");
    to.lr_gamma = c.num("lr_gamma");
    to.ema_decay = c.num("ema_decay");
    to.ema_start = c.integer("ema_start");
    to.clip_schedule = c.flag("clip_schedule");
    to.log_every = c.integer("log_every");
    to.eval_every = c.integer("eval_every");
    to.eval_paths = c.integer("eval_paths");
    to.seed = std::uint64_t(c.integer("seed"));
    const std::int64_t final_n = c.integer("final_samples");
    NSAMP_CHECK(to.iterations >= 1 && to.batch >= 2 && to.eval_paths >= 1 && final_n >= 2,
                "train: iterations, batch (>= 2), eval_paths and final_samples (>= 2) must be positive");
    NSAMP_CHECK(loss != samplers::PathLoss::LvTraj || to.batch % pc.traj_per_sample == 0,
                "train: lv_traj needs traj_per_sample (", pc.traj_per_sample, ") to divide the batch (",
                to.batch, ")");
    Context ctx(parse_device(o->device), to.seed);
    samplers::PathSampler ps(*target, pc, dtype, ctx);

    const fs::path dir(o->out);
    NSAMP_CHECK(!fs::exists(dir / "config.json"), "train: ", o->out, " already holds a run (config.json); ",
                "choose another --out");
    std::error_code ec;
    const bool created = fs::create_directories(dir, ec);
    NSAMP_CHECK(!ec && fs::is_directory(dir), "train: cannot create the run directory ", o->out, ": ",
                ec ? ec.message() : "not a directory");
    try {
      write_file_atomic((dir / "config.json").string(), c.json().dump(2) + "\n");
    } catch (const Error&) {
      if (created) fs::remove(dir, ec);
      throw;
    }
    std::ofstream log((dir / "log.jsonl").string(), std::ios::app);
    NSAMP_CHECK(log.good(), "train: cannot write ", (dir / "log.jsonl").string());
    std::cout << "train: " << c.str("method") << " / " << c.str("loss") << " on " << target->name() << " ("
              << ctx.device().str() << ", " << to.iterations << " steps, batch " << to.batch << ", "
              << ps.path_steps() << " steps per path) -> " << o->out << "\n";
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<ag::Var> params = ps.parameters();
    samplers::train_path_sampler(
        ps, to, ctx,
        [&](const samplers::PathTrainLog& l) {
          nlohmann::json j = {{"step", l.step},
                              {"loss", l.loss},
                              {"seconds_per_step", l.seconds_per_step},
                              {"skipped", l.skipped},
                              {"kept_paths", l.kept_paths},
                              {"lr", l.lr}};
          if (!std::isfinite(l.loss)) j["loss"] = nullptr;
          if (l.eval) {
            j["log_z"] = l.eval->log_z;
            j["elbo"] = l.eval->elbo;
            j["ess"] = l.eval->ess_fraction;
            if (target->log_z()) j["log_z_error"] = std::abs(l.eval->log_z - *target->log_z());
            std::cout << "  step " << l.step << "  loss " << l.loss << "  log Z " << l.eval->log_z << "  ESS "
                      << l.eval->ess_fraction << "  (" << l.seconds_per_step * 1e3 << " ms/step, "
                      << l.skipped << " skipped)\n";
          }
          log << j.dump() << "\n";
          log.flush();
        },
        [&](std::int64_t) { ag::save_parameters((dir / "checkpoint.safetensors").string(), params, ctx); });
    ag::save_parameters((dir / "checkpoint.safetensors").string(), params, ctx);
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    auto [x, lw] = draw(ps, final_n, to.seed + 2, ctx);
    write_npy((dir / "samples.npy").string(), x);
    write_npy((dir / "log_weights.npy").string(), lw);
    samplers::EvalOptions eo;
    eo.seed = to.seed;
    std::string source;
    const Tensor ref =
        samplers::reference_for(*target, std::max<std::int64_t>(final_n, 10000), to.seed + 3, source, ctx);
    const samplers::EvalReport r = samplers::evaluate(*target, x, ref, &lw, source, eo, ctx);
    nlohmann::json mj = {{"target", r.target},
                         {"method", c.str("method")},
                         {"loss", c.str("loss")},
                         {"protocol", r.protocol},
                         {"seed", r.seed},
                         {"train_seconds", train_s},
                         {"samples", {{"used", r.samples_used}, {"nonfinite_rows", r.nonfinite_rows}}},
                         {"reference", {{"source", r.reference_source}, {"samples", r.reference_samples}}}};
    for (const samplers::MetricValue& v : r.metrics)
      mj["metrics"][v.name] = {
          {"value", std::isfinite(v.value) ? nlohmann::json(v.value) : nlohmann::json(nullptr)},
          {"samples", v.samples},
          {"convention", v.convention}};
    for (const auto& [name, why] : r.skipped) mj["skipped"][name] = why;
    write_file_atomic((dir / "metrics.json").string(), mj.dump(2) + "\n");
    if (plots_available()) write_eval_plot(*target, r, (dir / "samples.png").string(), ctx);
    std::cout << "train: done in " << train_s << " s;";
    for (const samplers::MetricValue& v : r.metrics)
      if (v.name == "log_z_error" || v.name == "ess_fraction" || v.name == "x_w2")
        std::cout << " " << v.name << " " << v.value;
    std::cout << " (metrics.json)\n";
    return 0;
  };
}

Action add_sample(CLI::App& app) {
  struct Opts {
    std::string run, out, log_weights, device = "auto";
    std::int64_t n = 0;
    std::uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("sample", "Draw samples (and log-weights) from a trained run");
  cmd->add_option("--run", o->run, "run directory written by nsamp train")->required();
  cmd->add_option("-n", o->n, "samples")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", o->seed, "seed of the paths (default: the run's seed + 4)");
  cmd->add_option("--out", o->out, "samples, [n, d] float32 .npy")->required();
  cmd->add_option("--log-weights", o->log_weights, "log-weights -R, [n] float32 .npy");
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  return [o, cmd] {
    RunConfig c(path_defaults());
    c.overlay_file(o->run + "/config.json");
    auto target = targets::make_target(c.str("target"), {c.integer("dim")});
    const std::uint64_t seed = cmd->count("--seed") ? o->seed : std::uint64_t(c.integer("seed")) + 4;
    Context ctx(parse_device(o->device), seed);
    samplers::PathSampler ps(*target, path_config(c), dtype_of(c), ctx);
    ps.set_clip(final_clip(c));
    std::vector<ag::Var> params = ps.parameters();
    ag::load_parameters(o->run + "/checkpoint.safetensors", params, ctx);
    auto [x, lw] = draw(ps, o->n, seed, ctx);
    write_npy(o->out, x);
    if (!o->log_weights.empty()) write_npy(o->log_weights, lw);
    std::cout << "sample: " << o->n << " samples of " << target->name() << " from " << o->run << " (seed "
              << seed << ") -> " << o->out << "\n";
    return 0;
  };
}

}  // namespace nsamp::apps
