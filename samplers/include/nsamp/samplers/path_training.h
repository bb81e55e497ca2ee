// The training loop of the path samplers (path_samplers.md, "Training defaults"): Adam with L2 weight decay,
// StepLR, optional gradient-norm clipping and EMA, the control-clip schedule (x5 at steps 200 and 400), steps
// with a non-finite loss or gradient skipped and counted, and periodic evaluation on fresh paths.
// Deviation from sde_sampler: a skipped step still advances the lr, EMA and clip schedules (the skip is
// decided on the device, and reading it back each step would cost the captured step its host-free form);
// skips are rare, and each shifts the schedules by one step.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "nsamp/samplers/metrics.h"
#include "nsamp/samplers/path_samplers.h"
#include "nsamp/samplers/train_control.h"

namespace nsamp::samplers {

struct PathTrainOptions {
  PathLoss loss = PathLoss::Lv;
  std::int64_t iterations = 10000;
  std::int64_t batch = 512;
  double lr = 1e-3, weight_decay = 1e-7, clip_grad = 0.0;  // clip_grad 0 = off
  std::int64_t lr_step_every = 100;
  double lr_gamma = 1.0;  // StepLR factor per lr_step_every steps (1 = constant)
  // EMA of the parameters (ag::EmaSchedule, sde_sampler's): on every ema_every-th step after ema_start, with
  // the decay warming up as 1 - (1 + e)^-ema_power, capped at ema_decay; evaluation then uses the average.
  double ema_decay = 0.0;  // the cap; 0 = off
  std::int64_t ema_start = 0, ema_every = 5;
  double ema_power = 0.9;
  bool clip_schedule = true;  // control clip x5 after steps 200 and 400
  std::int64_t log_every = 50, eval_every = 500, eval_paths = 10000;
  std::uint64_t seed = 0;
  // lv / lv_traj: replay the training step as a CUDA graph (core/step_graph.h); on the CPU the same step
  // runs with StepGraph's check that it makes no host transfer. kl steps always run uncaptured.
  bool cuda_graph = true;
};

struct PathTrainLog {
  std::int64_t step = 0;        // iterations done
  double loss = 0;              // of the last iteration
  double seconds_per_step = 0;  // mean over the steps since the previous log
  std::int64_t skipped = 0;     // steps skipped so far (non-finite loss or gradient)
  std::int64_t kept_paths = 0;  // paths that entered the last loss
  double lr = 0;
  std::optional<metrics::WeightStats> eval;  // on eval_paths fresh paths, at eval steps
};

// Runs opt.iterations steps, calling on_log every log_every steps and at every eval. Noise of step k comes
// from Philox (seed, k * counters_per_batch), so a run is reproducible and independent of logging. With a
// control: resumes from its state, checkpoints when asked (live parameters, Adam, StepLR, EMA shadow) and
// stops early on request. A finished run ends with the EMA average (when on) in the parameters.
void train_path_sampler(PathSampler& ps, const PathTrainOptions& opt, Context& ctx,
                        const std::function<void(const PathTrainLog&)>& on_log,
                        TrainControl* control = nullptr);

// n fresh paths simulated in chunks of at most 8192 (chunk k from Philox offset k *
// counters_per_batch(8192)): end points [n * d] and log-weights -R [n], float64 on the host. With
// cuda_graph, the full chunks after the first replay it as a CUDA graph (on the CPU: rerun with StepGraph's
// check); the numbers are the same either way.
struct PathSamples {
  std::vector<double> x, log_w;
};
PathSamples draw_paths(const PathSampler& ps, std::int64_t n, std::uint64_t seed, Context& ctx,
                       bool cuda_graph = true);

// Weight statistics of n fresh paths (draw_paths' log-weights).
metrics::WeightStats evaluate_paths(const PathSampler& ps, std::int64_t n, std::uint64_t seed, Context& ctx,
                                    bool cuda_graph = true);

}  // namespace nsamp::samplers
