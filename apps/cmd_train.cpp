// nsamp train and nsamp sample: the training-run frame. A run directory holds config.json (fully resolved),
// log.jsonl, checkpoint.safetensors (atomic, at every evaluation), samples.npy (with log_weights.npy for the
// path samplers, whose samples carry importance weights), metrics.json (samplers::evaluate) and samples.png.
// Everything is validated before the directory is touched; every file but the log is written through a
// temporary file, fsync and a rename. Checkpoints hold the whole training state: `nsamp train --resume DIR`
// continues a killed or interrupted (Ctrl-C writes a checkpoint) run exactly where its checkpoint left it.
// Methods: the path samplers (configs/path/), DiKL (configs/dikl/), iDEM and IW-SM (configs/idem/).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "eval_plot.h"
#include "interrupt.h"
#include "nsamp/autograd/params.h"
#include "nsamp/autograd/state_dict.h"
#include "nsamp/core/config.h"
#include "nsamp/core/device.h"
#include "nsamp/core/npy.h"
#include "nsamp/samplers/dikl_training.h"
#include "nsamp/samplers/evaluation.h"
#include "nsamp/samplers/idem_training.h"
#include "nsamp/samplers/path_training.h"
#include "progress.h"
#include "run_config.h"

namespace nsamp::apps {

namespace fs = std::filesystem;

namespace {

const char* kMethods = "pis, dis, dds, euler-dds, dikl, idem, iwsm";

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
                      {"egnn_layers", 3},
                      {"ema_every", 5},
                      {"ema_power", 0.9},
                      {"nsamp_version", kVersion}};
  // The training keys take their values from the quick preset file, so the defaults and the file agree.
  for (const char* k : {"iterations", "batch", "path_steps", "lr", "weight_decay", "lr_step_every",
                        "lr_gamma", "clip_grad", "ema_decay", "ema_start", "clip", "clip_schedule",
                        "log_every", "eval_every", "eval_paths", "final_samples", "channels", "layers"})
    j[k] = 0;
  j["clip_schedule"] = true;
  j["cuda_graph"] = true;  // lv, lv_traj: the training step replayed as a CUDA graph
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
  p.egnn_layers = int(c.integer("egnn_layers"));
  return p;
}

DType dtype_of(const RunConfig& c) {
  const std::string d = c.str("dtype");
  NSAMP_CHECK(d == "float32" || d == "float64", "config: dtype must be float32 or float64, got '", d, "'");
  return d == "float32" ? DType::F32 : DType::F64;
}

// [n, d] float32 on the host, as the sample files hold samples.
Tensor host_float32(const Tensor& x, Context& ctx) {
  const std::vector<double> v = x.to_doubles(ctx);
  return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), x.shape(), Device::cpu(), ctx);
}

// n paths as the files hold them: samples [n, d] and log-weights -R [n], float32 on the host.
std::pair<Tensor, Tensor> draw(const samplers::PathSampler& ps, std::int64_t n, std::uint64_t seed,
                               bool cuda_graph, Context& ctx) {
  const samplers::PathSamples p = samplers::draw_paths(ps, n, seed, ctx, cuda_graph);
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

// ---- DiKL
nlohmann::json dikl_defaults() {
  // The spec's MoG-40 settings; configs/dikl/<target>.json holds the other targets' paper values.
  return {{"method", "dikl"},
          {"target", ""},
          {"dim", 0},
          {"seed", 0},
          {"dtype", "float32"},
          {"beta_start", 1e-4},
          {"beta_end", 0.7},
          {"weight_inv_alpha", true},
          {"levels", 30},
          {"gen_width", 400},
          {"gen_layers", 4},
          {"score_width", 400},
          {"score_layers", 4},
          {"freq_std", 30.0},
          {"n_is", 10},
          {"ais_levels", 15},
          {"ais_kernel", "hmc"},
          {"ais_step", 1.0},
          {"mala_steps", 5},
          {"mala_step", 0.01},
          {"adaptive", false},
          {"averaged", 1},
          {"iterations", 100000},
          {"batch", 1024},
          {"score_iter", 50},
          {"gen_lr", 1e-3},
          {"score_lr", 1e-4},
          {"clip_grad", 10.0},
          {"cuda_graph", true},  // each iteration replayed as a CUDA graph after the first
          {"log_every", 50},
          {"eval_every", 1000},
          {"eval_samples", 10000},
          {"final_samples", 10000},
          {"nsamp_version", kVersion}};
}

// ais_kernel: hmc (one leapfrog step of size ais_step, run as MALA with eta = ais_step^2 / 2), mala (eta =
// ais_step) or none (importance sampling through the levels without transitions).
samplers::DiklConfig dikl_config(const RunConfig& c) {
  samplers::DiklConfig k;
  k.beta_start = c.num("beta_start");
  k.beta_end = c.num("beta_end");
  k.weight_inv_alpha = c.flag("weight_inv_alpha");
  k.levels = int(c.integer("levels"));
  k.gen_width = c.integer("gen_width");
  k.gen_layers = int(c.integer("gen_layers"));
  k.score_width = c.integer("score_width");
  k.score_layers = int(c.integer("score_layers"));
  k.freq_std = c.num("freq_std");
  samplers::DiklPosteriorConfig& p = k.posterior;
  p.n_is = int(c.integer("n_is"));
  p.ais_levels = int(c.integer("ais_levels"));
  const std::string kernel = c.str("ais_kernel");
  NSAMP_CHECK(kernel == "hmc" || kernel == "mala" || kernel == "none",
              "config: ais_kernel must be hmc, mala or ", "none, got '", kernel, "'");
  p.ais_transition = kernel != "none";
  p.ais_step = kernel == "hmc" ? 0.5 * c.num("ais_step") * c.num("ais_step") : c.num("ais_step");
  p.mala_steps = int(c.integer("mala_steps"));
  p.mala_step = c.num("mala_step");
  p.adaptive = c.flag("adaptive");
  p.averaged = int(c.integer("averaged"));
  return k;
}

samplers::DiklTrainOptions dikl_options(const RunConfig& c) {
  samplers::DiklTrainOptions o;
  o.iterations = c.integer("iterations");
  o.batch = c.integer("batch");
  o.score_iter = c.integer("score_iter");
  o.gen_lr = c.num("gen_lr");
  o.score_lr = c.num("score_lr");
  o.clip_grad = c.num("clip_grad");
  o.log_every = c.integer("log_every");
  o.eval_every = c.integer("eval_every");
  o.eval_samples = c.integer("eval_samples");
  o.seed = std::uint64_t(c.integer("seed"));
  o.cuda_graph = c.flag("cuda_graph");
  return o;
}

// ---- iDEM and IW-SM
nlohmann::json idem_defaults(const std::string& method) {
  // The spec's GMM-40 settings (idem_iwsm.md) but for the coordinates; configs/idem/gmm40.json adds its
  // normalisation x = 50 y.
  return {{"method", method},
          {"target", ""},
          {"dim", 0},
          {"seed", 0},
          {"dtype", "float32"},
          {"sigma_min", 1e-5},
          {"sigma_max", 1.0},
          {"K", 500},
          {"clip", 70.0},
          {"eta", 1.0},
          {"lambda_eps", 1e-3},
          {"coord_scale", 1.0},
          {"coord_shift", 0.0},
          {"hidden", 128},
          {"blocks", 3},
          {"emb", 128},
          {"egnn_layers", 3},
          {"lambda_h", true},
          {"final_grad_steps", 0},
          {"final_grad_step", 1e-4},
          {"final_grad_clip", 20.0},
          {"init_from_prior", false},
          {"plateau", false},
          {"cuda_graph", true},
          {"epochs", 1000},
          {"inner_steps", 100},
          {"batch", 512},
          {"lr", 5e-4},
          {"clip_grad", 0.5},
          {"buffer_capacity", 10000},
          {"buffer_min", 1000},
          {"init_samples", 1024},
          {"samples_per_epoch", 1000},
          {"sde_steps", 1000},
          {"iw_time_groups", 0},
          {"iw_uniform_mix", 0.0},
          {"log_every", 1},
          {"eval_every", 10},
          {"eval_samples", 1000},
          {"final_samples", 10000},
          {"nsamp_version", kVersion}};
}

bool is_idem(const std::string& method) { return method == "idem" || method == "iwsm"; }

samplers::IdemConfig idem_config(const RunConfig& c) {
  samplers::IdemConfig k;
  k.importance_weighted = c.str("method") == "iwsm";
  k.sigma_min = c.num("sigma_min");
  k.sigma_max = c.num("sigma_max");
  k.K = c.integer("K");
  k.clip = c.num("clip");
  k.eta = c.num("eta");
  k.lambda_eps = c.num("lambda_eps");
  k.coord_scale = c.num("coord_scale");
  k.coord_shift = c.num("coord_shift");
  k.hidden = c.integer("hidden");
  k.blocks = int(c.integer("blocks"));
  k.emb = c.integer("emb");
  k.egnn_layers = int(c.integer("egnn_layers"));
  k.lambda_h = c.flag("lambda_h");
  k.final_grad_steps = int(c.integer("final_grad_steps"));
  k.final_grad_step = c.num("final_grad_step");
  k.final_grad_clip = c.num("final_grad_clip");
  return k;
}

samplers::IdemTrainOptions idem_options(const RunConfig& c) {
  samplers::IdemTrainOptions o;
  o.epochs = c.integer("epochs");
  o.inner_steps = c.integer("inner_steps");
  o.batch = c.integer("batch");
  o.lr = c.num("lr");
  o.clip_grad = c.num("clip_grad");
  o.buffer_capacity = c.integer("buffer_capacity");
  o.buffer_min = c.integer("buffer_min");
  o.init_samples = c.integer("init_samples");
  o.samples_per_epoch = c.integer("samples_per_epoch");
  o.sde_steps = int(c.integer("sde_steps"));
  o.iw_time_groups = c.integer("iw_time_groups");
  o.iw_uniform_mix = c.num("iw_uniform_mix");
  o.init_from_prior = c.flag("init_from_prior");
  o.plateau = c.flag("plateau");
  o.cuda_graph = c.flag("cuda_graph");
  o.log_every = c.integer("log_every");
  o.eval_every = c.integer("eval_every");
  o.eval_samples = c.integer("eval_samples");
  return o;
}

// ---- the frame
// The defaults of a method (every key a config may set).
nlohmann::json method_defaults(const std::string& method) {
  nlohmann::json j = method == "dikl"  ? dikl_defaults()
                     : is_idem(method) ? idem_defaults(method)
                                       : path_defaults();
  // Checkpoints: at every evaluation, every checkpoint_every units (iterations; iDEM / IW-SM: epochs; 0 = no
  // extra ones) and after checkpoint_minutes of wall time (0 = off), so a killed run loses little.
  j["checkpoint_every"] = 0;
  j["checkpoint_minutes"] = 10.0;
  // metrics.json's protocol (samplers/evaluation.h): full (every metric) or a paper's convention; the paper
  // presets of DiKL and iDEM / IW-SM name theirs.
  j["eval_protocol"] = "full";
  return j;
}

// The valid range of every key (RunConfig's notation); a key not listed is checked for its type only.
std::map<std::string, std::string> method_ranges(const std::string& method) {
  const std::string pos = "real (0, inf)", nonneg = "real [0, inf)", count = "int [1, inf)",
                    count0 = "int [0, inf)";
  std::map<std::string, std::string> r = {{"method", std::string("{") + kMethods + "}"},
                                          {"seed", "int [0, 9007199254740992]"},
                                          {"dim", count0},
                                          {"dtype", "{float32, float64}"},
                                          {"eval_protocol", "{full, idem, dikl}"},
                                          {"checkpoint_every", count0},
                                          {"checkpoint_minutes", nonneg},
                                          {"log_every", count},
                                          {"eval_every", count},
                                          {"final_samples", "int [2, inf)"},
                                          {"clip_grad", nonneg}};
  auto add = [&r](std::initializer_list<std::pair<const char*, std::string>> kv) {
    for (const auto& [k, v] : kv) r[k] = v;
  };
  if (method == "dikl") {
    add({{"beta_start", "real (0, 1)"},
         {"beta_end", "real (0, 1)"},
         {"levels", count},
         {"gen_width", count},
         {"gen_layers", count},
         {"score_width", "int [2, inf) even"},
         {"score_layers", count},
         {"freq_std", nonneg},
         {"n_is", count},
         {"ais_levels", count},
         {"ais_kernel", "{hmc, mala, none}"},
         {"ais_step", pos},
         {"mala_steps", count},
         {"mala_step", pos},
         {"averaged", count},
         {"iterations", count},
         {"batch", count},
         {"score_iter", count0},
         {"gen_lr", pos},
         {"score_lr", pos},
         {"eval_samples", count}});
  } else if (is_idem(method)) {
    add({{"sigma_min", pos},
         {"sigma_max", pos},
         {"K", count},
         {"clip", nonneg},
         {"eta", nonneg},
         {"lambda_eps", nonneg},
         {"coord_scale", pos},
         {"coord_shift", "real (-inf, inf)"},
         {"hidden", count},
         {"blocks", count0},
         {"emb", "int [4, inf) even"},
         {"egnn_layers", count},
         {"final_grad_steps", count0},
         {"final_grad_step", pos},
         {"final_grad_clip", pos},
         {"epochs", count},
         {"inner_steps", count},
         {"batch", count},
         {"lr", pos},
         {"buffer_capacity", count},
         {"buffer_min", count},
         {"init_samples", count},
         {"samples_per_epoch", count},
         {"sde_steps", count},
         {"iw_time_groups", count0},
         {"iw_uniform_mix", "real [0, 1]"},
         {"eval_samples", count}});
  } else {
    add({{"loss", "{kl, lv, lv_traj}"},
         {"T", nonneg},
         {"pis_sigma", pos},
         {"beta_min", pos},
         {"beta_max", pos},
         {"prior_quantile", "real (0, 0.5)"},
         {"dds_alpha", pos},
         {"dds_sigma", pos},
         {"traj_per_sample", count},
         {"egnn_layers", count},
         {"iterations", count},
         {"batch", "int [2, inf)"},
         {"path_steps", count},
         {"lr", pos},
         {"weight_decay", nonneg},
         {"lr_step_every", count},
         {"lr_gamma", pos},
         {"ema_decay", "real [0, 1)"},
         {"ema_start", count0},
         {"ema_every", count},
         {"ema_power", pos},
         {"clip", pos},
         {"eval_paths", count},
         {"channels", count},
         {"layers", count}});
  }
  return r;
}

RunConfig method_config(const std::string& method) {
  return RunConfig(method_defaults(method), method_ranges(method));
}

// The run directory's config.json read into its method's defaults.
RunConfig run_config_of(const std::string& run, const std::string& cmd) {
  const std::string path = run + "/config.json";
  std::ifstream in(path);
  NSAMP_CHECK(in.good(), cmd, ": cannot read ", path, " (is ", run, " a run directory of nsamp train?)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(cmd + ": " + path + " is not valid JSON: " + e.what());
  }
  NSAMP_CHECK(j.is_object() && j.contains("method") && j["method"].is_string(), cmd, ": ", path,
              " names no method");
  RunConfig c = method_config(j["method"].get<std::string>());
  c.overlay(j, path);
  return c;
}

struct TrainOpts {
  std::string method, target, loss, preset = "quick", config, out, device = "auto", resume, progress = "auto";
  bool print_config = false;
  bool resuming = false;  // --resume: the directory exists and holds this run's config
  std::vector<std::string> sets;
  std::uint64_t seed = 0;
  std::int64_t dim = 0;
};

// Defaults, then the preset files of the method's folder, then --config, --set and the command line.
// Path samplers: NAME.json, NAME-<method>.json, <method>-<target>.json, NAME-<target>.json. DiKL and iDEM /
// IW-SM (both in configs/idem/): <target>.json (the paper's per-target settings), NAME.json (the budget),
// NAME-<target>.json.
RunConfig resolve_config(const TrainOpts& o, const CLI::App& cmd) {
  NSAMP_CHECK(o.preset == "quick" || o.preset == "paper", "train: unknown preset '", o.preset,
              "' (valid: quick, paper)");
  const bool dikl = o.method == "dikl", idem = is_idem(o.method);
  const bool path_method =
      o.method == "pis" || o.method == "dis" || o.method == "dds" || o.method == "euler-dds";
  NSAMP_CHECK(dikl || idem || path_method, "train: unknown method '", o.method, "' (valid: ", kMethods, ")");
  RunConfig c = method_config(o.method);
  auto overlay_if = [&c](const std::string& path) {
    if (fs::exists(path)) c.overlay_file(path);
  };
  if (dikl || idem) {
    const std::string d = config_dir() + (dikl ? "/dikl/" : "/idem/");
    overlay_if(d + o.target + ".json");
    c.overlay_file(d + o.preset + ".json");
    overlay_if(d + o.preset + "-" + o.target + ".json");
  } else {
    const std::string d = config_dir() + "/path/";
    c.overlay_file(d + o.preset + ".json");
    overlay_if(d + o.preset + "-" + o.method + ".json");
    overlay_if(d + o.method + "-" + o.target + ".json");
    overlay_if(d + o.preset + "-" + o.target + ".json");  // a budget for one target (quick on particles)
  }
  if (!o.config.empty()) c.overlay_file(o.config);
  for (const std::string& s : o.sets) c.set(s);
  c.overlay({{"method", o.method}, {"target", o.target}}, "the command line");
  if (cmd.count("--loss")) {
    NSAMP_CHECK(!dikl && !idem, "train: ", o.method, " has one objective; --loss is for the path samplers");
    c.overlay({{"loss", o.loss}}, "the command line");
  }
  if (cmd.count("--seed")) c.overlay({{"seed", double(o.seed)}}, "the command line");
  if (cmd.count("--dim")) c.overlay({{"dim", double(o.dim)}}, "the command line");
  c.check_ranges("the resolved config");
  return c;
}

// The key of a log line's position: "step" (path samplers, DiKL) or "epoch" (iDEM / IW-SM).
const char* log_unit(const std::string& method) { return is_idem(method) ? "epoch" : "step"; }

// The files of a run directory written during training: the log (one JSON object per line, flushed) and the
// checkpoint (atomic: the whole training state, so that --resume continues exactly).
class RunFiles {
 public:
  // A new run: creates the directory and writes config.json (removing a directory it created if that fails).
  RunFiles(const std::string& out, const RunConfig& c) : dir_(out) {
    NSAMP_CHECK(!fs::exists(dir_ / "config.json"), "train: ", out, " already holds a run (config.json); ",
                "choose another --out or continue it with --resume ", out);
    std::error_code ec;
    const bool created = fs::create_directories(dir_, ec);
    NSAMP_CHECK(!ec && fs::is_directory(dir_), "train: cannot create the run directory ", out, ": ",
                ec ? ec.message() : "not a directory");
    lock();
    try {
      write_file_atomic((dir_ / "config.json").string(), c.json().dump(2) + "\n");
    } catch (const Error&) {
      if (created) fs::remove(dir_, ec);
      throw;
    }
    open_log();
  }
  // A resumed run: the log keeps the lines up to `done` units (those after it are done again).
  RunFiles(const std::string& dir, const std::string& unit, std::int64_t done) : dir_(dir) {
    lock();
    const std::string path = (dir_ / "log.jsonl").string();
    std::ifstream in(path);
    std::string kept, line;
    while (in && std::getline(in, line)) {
      if (line.empty()) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        break;  // a line cut by the kill, and nothing after it
      }
      if (j.is_object() && j.contains(unit) && j[unit].is_number_integer() &&
          j[unit].get<std::int64_t>() > done)
        break;
      kept += line + "\n";
    }
    in.close();
    write_file_atomic(path, kept);
    open_log();
  }
  ~RunFiles() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
  }
  RunFiles(const RunFiles&) = delete;
  RunFiles& operator=(const RunFiles&) = delete;
  void log(const nlohmann::json& j) {
    log_ << j.dump() << "\n";
    log_.flush();
  }
  std::string checkpoint_path() const { return (dir_ / "checkpoint.safetensors").string(); }
  void checkpoint(const ag::StateDict& s) const { s.save(checkpoint_path()); }
  const fs::path& dir() const { return dir_; }

 private:
  // One process trains in a directory at a time (a second --resume of a running run would interleave both).
  void lock() {
    const std::string path = (dir_ / ".lock").string();
    lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    NSAMP_CHECK(lock_fd_ >= 0, "train: cannot open ", path, ": ", std::strerror(errno));
    NSAMP_CHECK(::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0, "train: ", dir_.string(),
                " is in use by another nsamp train (it holds ", path, ")");
  }
  void open_log() {
    log_.open((dir_ / "log.jsonl").string(), std::ios::app);
    NSAMP_CHECK(log_.good(), "train: cannot write ", (dir_ / "log.jsonl").string());
  }
  fs::path dir_;
  std::ofstream log_;
  int lock_fd_ = -1;
};

// Checkpoints, Ctrl-C and progress around one training loop.
class TrainDriver {
 public:
  TrainDriver(RunFiles& run, const RunConfig& c, std::int64_t eval_every, const std::string& unit,
              ProgressMode mode, const ag::StateDict* resume)
      : run_(run), progress_(mode, unit), t0_(std::chrono::steady_clock::now()), last_save_(t0_) {
    const std::int64_t every = c.integer("checkpoint_every");
    const double minutes = c.num("checkpoint_minutes");
    NSAMP_CHECK(every >= 0 && minutes >= 0, "train: checkpoint_every and checkpoint_minutes must be >= 0");
    if (resume) prior_seconds_ = resume->get_double("state/train_seconds");
    control_.resume = resume;
    control_.checkpoint_due = [this, every, minutes, eval_every](std::int64_t done) {
      const double since =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - last_save_).count();
      return done % eval_every == 0 || (every > 0 && done % every == 0) ||
             (minutes > 0 && since >= 60 * minutes);
    };
    control_.save = [this](ag::StateDict& s, std::int64_t) {
      s.set_double("state/train_seconds", train_seconds());
      s.set_int("state/complete", 0);
      run_.checkpoint(s);
      last_save_ = std::chrono::steady_clock::now();
    };
    control_.stop_requested = [] { return InterruptGuard::requested(); };
    control_.progress = [this](std::int64_t done, std::int64_t total) { progress_.update(done, total); };
    if (resume)
      progress_.start(resume->get_int("state/done"));
    else
      progress_.start(0);
  }
  samplers::TrainControl* control() { return &control_; }
  Progress& progress() { return progress_; }
  double train_seconds() const {
    return prior_seconds_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  // After the loop: false (and a message) when it stopped on a request, the checkpoint written.
  bool finished() {
    progress_.finish();
    if (!control_.stopped) return true;
    std::cout << "train: interrupted (signal " << InterruptGuard::signal_number() << "); checkpoint in "
              << run_.checkpoint_path() << "; continue with: nsamp train --resume " << run_.dir().string()
              << "\n";
    return false;
  }
  // The finished run's checkpoint: the final parameters (the EMA average where on) and the completion mark.
  void save_final(const std::vector<ag::Var>& params, const std::string& loop, std::int64_t total,
                  Context& ctx) {
    ag::StateDict s;
    samplers::detail::put_loop_state(s, loop, total, ctx);
    ag::put_parameters(s, params, ctx);
    s.set_double("state/train_seconds", train_seconds());
    s.set_int("state/complete", 1);
    run_.checkpoint(s);
  }

 private:
  RunFiles& run_;
  Progress progress_;
  InterruptGuard interrupts_;
  samplers::TrainControl control_;
  std::chrono::steady_clock::time_point t0_, last_save_;
  double prior_seconds_ = 0;
};

// samples.npy (and log_weights.npy), metrics.json against the target's default reference (exact samples, or
// the test split of its reference files), samples.png.
void finish_run(const targets::Target& target, const RunConfig& c, const fs::path& dir, const Tensor& x,
                const Tensor* lw, double train_s, Context& ctx) {
  const std::uint64_t seed = std::uint64_t(c.integer("seed"));
  write_npy((dir / "samples.npy").string(), x);
  if (lw) write_npy((dir / "log_weights.npy").string(), *lw);
  samplers::EvalOptions eo;
  eo.seed = seed;
  eo.protocol = samplers::parse_protocol(c.str("eval_protocol"));
  std::string source;
  Tensor ref;
  try {
    ref = samplers::reference_for(target, std::max<std::int64_t>(x.rows(), 10000), seed + 3, source, ctx,
                                  targets::ReferenceSplit::Test);
  } catch (const Error& e) {
    // The samples are on disk; without a reference (LJ-55 before `nsamp reference` made one) the metrics
    // wait.
    const nlohmann::json mj = {{"target", target.name()},
                               {"method", c.str("method")},
                               {"train_seconds", train_s},
                               {"skipped", {{"all", std::string("no reference set: ") + e.what()}}}};
    write_file_atomic((dir / "metrics.json").string(), mj.dump(2) + "\n");
    std::cout << "train: done in " << train_s << " s; samples in " << (dir / "samples.npy").string()
              << "; no metrics: " << e.what() << "\n";
    return;
  }
  const samplers::EvalReport r = samplers::evaluate(target, x, ref, lw, source, eo, ctx);
  nlohmann::json mj = {{"target", r.target},
                       {"method", c.str("method")},
                       {"protocol", r.protocol},
                       {"seed", r.seed},
                       {"train_seconds", train_s},
                       {"samples", {{"used", r.samples_used}, {"nonfinite_rows", r.nonfinite_rows}}},
                       {"reference", {{"source", r.reference_source}, {"samples", r.reference_samples}}}};
  if (c.json().contains("loss")) mj["loss"] = c.str("loss");
  for (const samplers::MetricValue& v : r.metrics)
    mj["metrics"][v.name] = {
        {"value", std::isfinite(v.value) ? nlohmann::json(v.value) : nlohmann::json(nullptr)},
        {"samples", v.samples},
        {"convention", v.convention}};
  for (const auto& [name, why] : r.skipped) mj["skipped"][name] = why;
  write_file_atomic((dir / "metrics.json").string(), mj.dump(2) + "\n");
  const std::string png = (dir / "samples.png").string();
  const bool plotted = plots_available();
  if (plotted) write_eval_plot(target, r, png, ctx);
  std::cout << "train: done in " << train_s << " s;";
  for (const samplers::MetricValue& v : r.metrics)
    if (v.name == "log_z_error" || v.name == "ess_fraction" || v.name == "x_w2" ||
        v.name == "modes_covered" || v.name == "energy_tvd")
      std::cout << " " << v.name << " " << v.value;
  std::cout << "\n  metrics: " << (dir / "metrics.json").string() << "\n";
  if (plotted) std::cout << "  plot:    " << png << "\n";
}

// An evaluation's sample summary in a log line.
void log_summary(nlohmann::json& j, const samplers::SampleSummary& e) {
  j["mean_log_p"] = std::isfinite(e.mean_log_p) ? nlohmann::json(e.mean_log_p) : nullptr;
  j["nonfinite_samples"] = e.nonfinite;
  if (e.modes > 0) j["modes_covered"] = e.modes_covered;
}

// A run's start: a new directory or a resumed one (the log cut back to the checkpoint's position).
struct RunStart {
  std::unique_ptr<RunFiles> files;
  const ag::StateDict* resume = nullptr;
  bool complete = false;  // the checkpoint is of a finished training (only the final sampling was lost)
};

RunStart start_run(const TrainOpts& o, const RunConfig& c, const ag::StateDict* resume) {
  RunStart r;
  r.resume = resume;
  if (!o.resuming) {
    r.files = std::make_unique<RunFiles>(o.out, c);
    return r;
  }
  r.complete = resume && resume->get_int("state/complete") == 1;
  r.files = std::make_unique<RunFiles>(o.out, log_unit(c.str("method")),
                                       resume ? resume->get_int("state/done") : 0);
  return r;
}

// The run's device; a validation (--print-config) builds the sampler on the host, so that a config for a GPU
// job can be checked where there is none (the device string is still parsed). The CUDA kernels' own limits
// (mc_score's coordinates per point, the EGNN kernels' width and shared memory) are checked at their first
// launch, so a run past them stops after its directory is written.
Device run_device(const TrainOpts& o, bool validate_only) {
  const Device d = parse_device(o.device);
  return validate_only ? Device::cpu() : d;
}

int train_dikl_run(const TrainOpts& o, const RunConfig& c, const ag::StateDict* resume,
                   bool validate_only = false) {
  auto target = targets::make_target(c.str("target"), {c.integer("dim")});
  const DType dtype = dtype_of(c);
  const samplers::DiklConfig kc = dikl_config(c);
  const samplers::DiklTrainOptions to = dikl_options(c);
  const std::int64_t final_n = c.integer("final_samples");
  NSAMP_CHECK(to.iterations >= 1 && to.batch >= 1 && to.score_iter >= 0 && final_n >= 2,
              "train: iterations and batch must be positive, score_iter >= 0, final_samples >= 2");
  Context ctx(run_device(o, validate_only), to.seed);
  samplers::DiklSampler sampler(*target, kc, dtype, ctx);
  if (validate_only) return 0;
  RunStart rs = start_run(o, c, resume);
  RunFiles& run = *rs.files;
  std::cout << "train: dikl on " << target->name() << " (" << ctx.device().str() << ", " << to.iterations
            << " iterations, batch " << to.batch << ", " << to.score_iter << " score steps each) -> " << o.out
            << "\n";
  std::vector<ag::Var> params = sampler.model_tensors();
  TrainDriver drv(run, c, to.eval_every, "it", parse_progress_mode(o.progress), resume);
  if (rs.complete) {
    ag::get_parameters(*resume, params, ctx, {"state/"});
  } else {
    samplers::train_dikl(
        sampler, to, ctx,
        [&](const samplers::DiklTrainLog& l) {
          nlohmann::json j = {{"step", l.step},           {"generator_loss", l.generator_loss},
                              {"dsm_loss", l.dsm_loss},   {"acceptance", l.acceptance},
                              {"mala_step", l.mala_step}, {"seconds_per_step", l.seconds_per_step},
                              {"skipped", l.skipped},     {"score_skipped", l.score_skipped}};
          for (const char* k : {"generator_loss", "dsm_loss"})
            if (!std::isfinite(j[k].get<double>())) j[k] = nullptr;
          if (l.eval) {
            log_summary(j, *l.eval);
            std::ostringstream s;
            s << "  step " << l.step << "  dsm " << l.dsm_loss << "  mean log p " << l.eval->mean_log_p;
            if (l.eval->modes > 0) s << "  modes " << l.eval->modes_covered << "/" << l.eval->modes;
            s << "  acceptance " << l.acceptance << "  (" << l.seconds_per_step * 1e3 << " ms/it, "
              << l.skipped << " skipped)";
            drv.progress().line(s.str());
          }
          run.log(j);
        },
        drv.control());
    if (!drv.finished()) return 130;
    drv.save_final(params, "dikl", to.iterations, ctx);
  }
  const Tensor x = host_float32(sampler.sample(final_n, to.seed + 2, ctx), ctx);
  finish_run(*target, c, run.dir(), x, nullptr, drv.train_seconds(), ctx);
  return 0;
}

int train_idem_run(const TrainOpts& o, const RunConfig& c, const ag::StateDict* resume,
                   bool validate_only = false) {
  auto target = targets::make_target(c.str("target"), {c.integer("dim")});
  const samplers::IdemConfig kc = idem_config(c);
  const samplers::IdemTrainOptions to = idem_options(c);
  samplers::check_idem_options(to, kc.importance_weighted);
  const std::int64_t final_n = c.integer("final_samples");
  NSAMP_CHECK(final_n >= 2, "train: final_samples must be >= 2");
  Context ctx(run_device(o, validate_only), std::uint64_t(c.integer("seed")));
  samplers::IdemSampler sampler(*target, kc, dtype_of(c), ctx);
  if (validate_only) return 0;
  RunStart rs = start_run(o, c, resume);
  RunFiles& run = *rs.files;
  std::cout << "train: " << c.str("method") << " on " << target->name() << " (" << ctx.device().str() << ", "
            << to.epochs << " epochs of " << to.inner_steps << " steps, batch " << to.batch << ", K " << kc.K
            << ") -> " << o.out << "\n";
  std::vector<ag::Var> params = sampler.parameters();
  TrainDriver drv(run, c, to.eval_every, "epoch", parse_progress_mode(o.progress), resume);
  if (rs.complete) {
    ag::get_parameters(*resume, params, ctx, {"state/"});
    // The final samples come from the context's stream where the finished run left it.
    ctx.set_rng_state(resume->get_u64("state/rng_seed"), resume->get_u64("state/rng_offset"));
  } else {
    samplers::train_idem(
        sampler, to, ctx,
        [&](const samplers::IdemTrainLog& l) {
          nlohmann::json j = {{"epoch", l.epoch},
                              {"loss", std::isfinite(l.loss) ? nlohmann::json(l.loss) : nullptr},
                              {"ess", l.ess},
                              {"seconds_per_epoch", l.seconds_per_epoch},
                              {"skipped", l.skipped},
                              {"buffer", l.buffer_size},
                              {"lr", l.lr}};
          if (l.eval) {
            log_summary(j, *l.eval);
            std::ostringstream s;
            s << "  epoch " << l.epoch << "  loss " << l.loss << "  mean log p " << l.eval->mean_log_p;
            if (l.eval->modes > 0) s << "  modes " << l.eval->modes_covered << "/" << l.eval->modes;
            s << "  ESS " << l.ess << "  (" << l.seconds_per_epoch << " s/epoch, " << l.skipped
              << " skipped)";
            drv.progress().line(s.str());
          }
          run.log(j);
        },
        drv.control());
    if (!drv.finished()) return 130;
    drv.save_final(params, "idem", to.epochs, ctx);
  }
  const Tensor x = host_float32(
      sampler.to_target_units(sampler.final_samples(final_n, to.sde_steps, ctx, to.cuda_graph), ctx), ctx);
  finish_run(*target, c, run.dir(), x, nullptr, drv.train_seconds(), ctx);
  return 0;
}

int train_path_run(const TrainOpts& o, const RunConfig& c, const ag::StateDict* resume,
                   bool validate_only = false) {
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
  to.ema_every = c.integer("ema_every");
  to.ema_power = c.num("ema_power");
  to.clip_schedule = c.flag("clip_schedule");
  to.cuda_graph = c.flag("cuda_graph");
  to.log_every = c.integer("log_every");
  to.eval_every = c.integer("eval_every");
  to.eval_paths = c.integer("eval_paths");
  to.seed = std::uint64_t(c.integer("seed"));
  const std::int64_t final_n = c.integer("final_samples");
  NSAMP_CHECK(to.iterations >= 1 && to.batch >= 2 && to.eval_paths >= 1 && final_n >= 2,
              "train: iterations, batch (>= 2), eval_paths and final_samples (>= 2) must be positive");
  NSAMP_CHECK(
      loss != samplers::PathLoss::LvTraj || (pc.traj_per_sample >= 2 && to.batch % pc.traj_per_sample == 0),
      "train: lv_traj needs traj_per_sample (", pc.traj_per_sample, ") >= 2 dividing the batch (", to.batch,
      ")");
  Context ctx(run_device(o, validate_only), to.seed);
  samplers::PathSampler ps(*target, pc, dtype, ctx);
  if (validate_only) return 0;
  RunStart rs = start_run(o, c, resume);
  RunFiles& run = *rs.files;
  std::cout << "train: " << c.str("method") << " / " << c.str("loss") << " on " << target->name() << " ("
            << ctx.device().str() << ", " << to.iterations << " steps, batch " << to.batch << ", "
            << ps.path_steps() << " steps per path) -> " << o.out << "\n";
  std::vector<ag::Var> params = ps.parameters();
  TrainDriver drv(run, c, to.eval_every, "step", parse_progress_mode(o.progress), resume);
  if (rs.complete) {
    ag::get_parameters(*resume, params, ctx, {"state/"});
    ps.set_clip(final_clip(c));
  } else {
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
            j["var_r"] = l.eval->var_r;  // NaN and inf are written as null
            if (target->log_z()) j["log_z_error"] = std::abs(l.eval->log_z - *target->log_z());
            std::ostringstream s;
            s << "  step " << l.step << "  loss " << l.loss << "  log Z " << l.eval->log_z << "  ESS "
              << l.eval->ess_fraction << "  (" << l.seconds_per_step * 1e3 << " ms/step, " << l.skipped
              << " skipped)";
            drv.progress().line(s.str());
          }
          run.log(j);
        },
        drv.control());
    if (!drv.finished()) return 130;
    drv.save_final(params, "path", to.iterations, ctx);
  }
  auto [x, lw] = draw(ps, final_n, to.seed + 2, to.cuda_graph, ctx);
  finish_run(*target, c, run.dir(), x, &lw, drv.train_seconds(), ctx);
  return 0;
}

// runs/<method>-<target>-YYYYmmdd-HHMMSS (the first free name), when --out is not given.
std::string default_out(const std::string& method, const std::string& target) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  std::string base = "runs/" + method + "-" + target + "-" + stamp, out = base;
  for (int k = 2; fs::exists(out); ++k) out = base + "-" + std::to_string(k);
  return out;
}

int resume_run(TrainOpts o) {
  const std::string dir = o.resume;
  const RunConfig c = run_config_of(dir, "train --resume");
  o.method = c.str("method");
  o.out = dir;
  o.resuming = true;
  const std::string ckpt = dir + "/checkpoint.safetensors";
  auto run = [&](const ag::StateDict* state) {
    if (o.method == "dikl") return train_dikl_run(o, c, state);
    if (is_idem(o.method)) return train_idem_run(o, c, state);
    return train_path_run(o, c, state);
  };
  if (!fs::exists(ckpt)) {
    // Killed before its first checkpoint: the exact continuation is the run from its start.
    std::cout << "train: " << dir << " has no checkpoint yet; starting it from the beginning\n";
    return run(nullptr);
  }
  Context host(Device::cpu());
  const ag::StateDict state = ag::StateDict::load(ckpt, host);
  NSAMP_CHECK(state.has_meta("state/done") && state.has_meta("state/complete"), "train --resume: ", ckpt,
              " holds parameters only (a checkpoint of nsamp ", "before 0.1's resumable runs?); start again");
  if (state.get_int("state/complete") == 1 && fs::exists(fs::path(dir) / "metrics.json")) {
    std::cout << "train: " << dir << " is complete (metrics.json); nothing to resume\n";
    return 0;
  }
  const std::int64_t done = state.get_int("state/done");
  std::cout << "train: resuming " << dir << " after " << done << " " << log_unit(o.method)
            << (done == 1 ? "" : "s") << "\n";
  return run(&state);
}

}  // namespace

Action add_train(CLI::App& app) {
  auto o = std::make_shared<TrainOpts>();
  CLI::App* cmd = app.add_subcommand("train", "Train a sampler on a target; writes a run directory");
  cmd->add_option("--method", o->method, std::string("method: ") + kMethods);
  cmd->add_option("--target", o->target, "target name");
  cmd->add_option("--loss", o->loss, "path samplers: kl | lv | lv_traj (default: the config's, lv)");
  cmd->add_option("--preset", o->preset,
                  "quick | paper (files in configs/path/, configs/dikl/, configs/idem/)")
      ->capture_default_str();
  cmd->add_option("--config", o->config, "JSON file of config keys, applied after the preset");
  cmd->add_option("--set", o->sets, "key=value, applied last (repeatable)");
  cmd->add_option("--seed", o->seed, "seed of the initialisation and of every random draw")
      ->check(non_negative());
  cmd->add_option("--dim", o->dim, "dimension, for the gaussian target");
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--out", o->out,
                  "run directory (created; must not hold a run already; default runs/METHOD-TARGET-TIME)");
  cmd->add_option("--resume", o->resume,
                  "continue the run in this directory from its checkpoint, exactly (its own config; only "
                  "--device and --progress may be given with it)");
  cmd->add_option("--progress", o->progress,
                  "auto (a bar on a terminal, else plain lines) | bar | plain | off")
      ->capture_default_str();
  cmd->add_flag("--print-config", o->print_config,
                "print the resolved, validated config as JSON and exit without training or writing anything");
  return [o, cmd] {
    parse_progress_mode(o->progress);  // a bad mode fails before anything runs
    if (!o->resume.empty()) {
      for (const char* f : {"--method", "--target", "--loss", "--preset", "--config", "--set", "--seed",
                            "--dim", "--out", "--print-config"})
        NSAMP_CHECK(!cmd->count(f), "train: --resume continues a run with its own config; ", f,
                    " cannot be given with it");
      return resume_run(*o);
    }
    NSAMP_CHECK(!o->method.empty() && !o->target.empty(),
                "train: --method and --target are required (or --resume DIR); see nsamp train --help");
    // Resolve and validate everything before touching the output directory.
    const RunConfig c = resolve_config(*o, *cmd);
    auto run = [&](bool validate_only) {
      if (o->method == "dikl") return train_dikl_run(*o, c, nullptr, validate_only);
      if (is_idem(o->method)) return train_idem_run(*o, c, nullptr, validate_only);
      return train_path_run(*o, c, nullptr, validate_only);
    };
    if (o->print_config) {
      // Every check training makes before it creates the run directory: across keys, and the sampler's own.
      run(true);
      std::cout << c.json().dump(2) << "\n";
      return 0;
    }
    if (o->out.empty()) o->out = default_out(o->method, o->target);
    return run(false);
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
  cmd->add_option("-n", o->n, "samples")->required()->check(positive());
  cmd->add_option("--seed", o->seed, "seed of the paths or latents (default: the run's seed + 4)")
      ->check(non_negative());
  cmd->add_option("--out", o->out, "samples, [n, d] float32 .npy")->required();
  cmd->add_option("--log-weights", o->log_weights, "log-weights -R, [n] float32 .npy");
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  return [o, cmd] {
    const RunConfig c = run_config_of(o->run, "sample");
    const std::string method = c.str("method");
    const bool dikl = method == "dikl", idem = is_idem(method);
    auto target = targets::make_target(c.str("target"), {c.integer("dim")});
    const std::uint64_t seed = cmd->count("--seed") ? o->seed : std::uint64_t(c.integer("seed")) + 4;
    NSAMP_CHECK((!dikl && !idem) || o->log_weights.empty(), "sample: ", o->run, " is a ", method,
                " run; its samples carry no importance weights (--log-weights is for the path samplers)");
    Context ctx(parse_device(o->device), seed);
    const std::string ckpt = o->run + "/checkpoint.safetensors";
    if (dikl) {
      samplers::DiklSampler sampler(*target, dikl_config(c), dtype_of(c), ctx);
      std::vector<ag::Var> params = sampler.model_tensors();
      ag::load_parameters(ckpt, params, ctx);
      write_npy(o->out, host_float32(sampler.sample(o->n, seed, ctx), ctx));
    } else if (idem) {
      samplers::IdemSampler sampler(*target, idem_config(c), dtype_of(c), ctx);
      std::vector<ag::Var> params = sampler.parameters();
      ag::load_parameters(ckpt, params, ctx);
      const Tensor y = sampler.final_samples(o->n, int(c.integer("sde_steps")), ctx, c.flag("cuda_graph"));
      write_npy(o->out, host_float32(sampler.to_target_units(y, ctx), ctx));
    } else {
      samplers::PathSampler ps(*target, path_config(c), dtype_of(c), ctx);
      ps.set_clip(final_clip(c));
      std::vector<ag::Var> params = ps.parameters();
      ag::load_parameters(ckpt, params, ctx);
      auto [x, lw] = draw(ps, o->n, seed, c.flag("cuda_graph"), ctx);
      write_npy(o->out, x);
      if (!o->log_weights.empty()) write_npy(o->log_weights, lw);
    }
    std::cout << "sample: " << o->n << " samples of " << target->name() << " from " << o->run << " ("
              << method << ", seed " << seed << ") -> " << o->out << "\n";
    return 0;
  };
}

}  // namespace nsamp::apps
