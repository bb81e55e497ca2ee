// DiKL's sampler and its training loop (dikl.md, "Networks" and "Training loop"): a one-step generator
// g_theta (z ~ N(0, I_d) -> x, an MLP with SiLU), a conditional-linear score network s_phi trained by
// denoising score matching on stop-gradient generator samples (score_iter Adam steps per generator step),
// the posterior estimator of the target's noisy score s_d, and the generator step: the surrogate loss
// mean_b w <stopgrad(s_phi - s_d), x_t> whose gradient is the vector-Jacobian product through g, clipped to
// norm 10, skipped (and counted) when not finite.
//
// An iteration makes no host transfer (noise levels, the posterior and its adaptive step, the losses, Adam's
// decisions and the log's numbers stay on the device; its draws come from a device counter), so after the
// first it is replayed as one CUDA graph (DiklTrainOptions::cuda_graph).
//
// Sampling after training is one generator call per chunk.
//
// Particle systems (DW-4, LJ-13): both networks are EGNNs with ReLU (samplers/egnn.h; gen_layers x gen_width
// and score_layers x score_width): the generator maps a mean-free Gaussian latent with node features all ones
// to its output positions x_L (mean removed), the score network takes the noise index as its node feature and
// returns x_L - x_0. The DSM noise, the diffusion noise and s_d are mean-free. The posterior runs in the full
// space: the tilted density factorises into a centre-of-mass part (a Gaussian, as the energy is
// translation-invariant) and the mean-free part, so the mean-free marginal it samples is the subspace
// posterior; its estimate s_d is then projected.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "nsamp/autograd/module.h"
#include "nsamp/samplers/dikl.h"
#include "nsamp/samplers/dikl_posterior.h"
#include "nsamp/samplers/egnn.h"
#include "nsamp/samplers/evaluation.h"
#include "nsamp/samplers/mean_free.h"
#include "nsamp/samplers/networks.h"
#include "nsamp/samplers/train_control.h"

namespace nsamp::samplers {

struct DiklConfig {
  // Noise schedule: beta = linspace(beta_start, beta_end, levels); weight 1 / alpha_t or 1.
  double beta_start = 1e-4, beta_end = 0.7;
  bool weight_inv_alpha = true;
  int levels = 30;
  // Generator: gen_layers x (Linear + SiLU) of width gen_width, then a linear output; latent N(0, I_d).
  std::int64_t gen_width = 400;
  int gen_layers = 4;
  // Score network: score_layers conditional-linear layers of width score_width, frequencies ~ N(0,
  // freq_std^2).
  std::int64_t score_width = 400;
  int score_layers = 4;
  double freq_std = 30;
  DiklPosteriorConfig posterior;
};

class DiklSampler {
 public:
  // Initialises both networks from the context's Philox stream (generator first).
  DiklSampler(const targets::Target& target, const DiklConfig& config, DType dtype, Context& ctx);

  const targets::Target& target() const { return target_; }
  const DiklConfig& config() const { return cfg_; }
  const DiklSchedule& schedule() const { return sch_; }
  DiklPosterior& posterior() { return post_; }
  DType dtype() const { return dtype_; }

  ag::Var generate(ag::Tape& tp, const Tensor& z) const;                   // z [B, d] -> x [B, d]
  ag::Var score(ag::Tape& tp, const ag::Var& t, const ag::Var& xt) const;  // t [B, 1] (index as a float)
  // n samples: latents from Philox(seed) in chunks of at most 8192 rows (chunk k at offset
  // k * rng_counters(8192 * d)), one generator call each. Returns [n, d] on the context's device.
  Tensor sample(std::int64_t n, std::uint64_t seed, Context& ctx) const;

  std::vector<ag::Var> generator_parameters() const;
  std::vector<ag::Var> score_parameters() const;
  const MeanFree& mean_free() const { return mf_; }
  std::vector<ag::Var> parameters() const;     // generator, then score network (the checkpoint's order)
  std::vector<ag::Var> buffers() const;        // fixed, untrained tensors (the score network's frequencies)
  std::vector<ag::Var> model_tensors() const;  // parameters, then buffers: what a checkpoint holds

 private:
  const targets::Target& target_;
  DiklConfig cfg_;
  DType dtype_;
  DiklSchedule sch_;
  MeanFree mf_;
  std::unique_ptr<ag::MLP> gen_;  // dense targets
  std::unique_ptr<ConditionalMLP> score_;
  std::unique_ptr<Egnn> gen_egnn_, score_egnn_;  // particle systems
  DiklPosterior post_;
};

struct DiklTrainOptions {
  std::int64_t iterations = 100000, batch = 1024, score_iter = 50;
  double gen_lr = 1e-3, score_lr = 1e-4;
  double clip_grad = 10;  // generator gradient norm; 0 = off
  std::int64_t log_every = 50, eval_every = 1000, eval_samples = 10000;
  std::uint64_t seed = 0;  // of the evaluation samples (training draws from the context's stream)
  // Synchronise the device at the ends of the three phases so that the log's phase times are exact (costs a
  // little on CUDA; the phase times are zero without it).
  bool time_phases = false;
  // Replay each iteration (the score_iter DSM steps and the generator step) as one CUDA graph after the first
  // (core/step_graph.h); same numbers either way. Runs with time_phases stay eager.
  bool cuda_graph = true;
};

using DiklEval = SampleSummary;

struct DiklTrainLog {
  std::int64_t step = 0;        // generator steps done
  double generator_loss = 0;    // the surrogate of the last step (its value, not the KL)
  double dsm_loss = 0;          // mean DSM loss of the last step's score_iter updates
  double acceptance = 0;        // the last posterior's stage-B acceptance
  double mala_step = 0;         // its (adaptive) MALA step
  double seconds_per_step = 0;  // mean over the iterations since the previous log
  // With time_phases: the score_iter DSM steps, the posterior estimate, and the rest of the generator step
  // (forward, surrogate, backward, Adam), seconds per iteration since the previous log.
  double score_seconds = 0, posterior_seconds = 0, generator_seconds = 0;
  std::int64_t skipped = 0;        // generator steps skipped (non-finite loss or gradient)
  std::int64_t score_skipped = 0;  // score-network steps skipped
  std::optional<DiklEval> eval;    // at eval steps, on eval_samples fresh samples
};

// Evaluation during training: n samples from Philox(seed), their mean log p and mode coverage.
DiklEval evaluate_dikl(const DiklSampler& s, std::int64_t n, std::uint64_t seed, Context& ctx);

// Runs opt.iterations DiKL iterations, calling on_log every log_every and at every evaluation. With a
// control: resumes from its state, checkpoints when asked (both networks, both Adams, the posterior's
// adaptive MALA step, the context's Philox offset) and stops early on request.
void train_dikl(DiklSampler& s, const DiklTrainOptions& opt, Context& ctx,
                const std::function<void(const DiklTrainLog&)>& on_log, TrainControl* control = nullptr);

}  // namespace nsamp::samplers
