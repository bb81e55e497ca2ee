// Path-space diffusion samplers (Richter & Berner, ICLR 2024; ../shared/spec/path_samplers.md): a learned
// control u steers dX = (mu + sigma u)(X, t) dt + sigma(t) dW from a prior to the target, and the log
// Radon-Nikodym derivative R of each path gives its importance log-weight -R.
//
// Methods here: PIS (scaled Brownian motion from delta_0, T = 5), DIS (time reversal of the VP SDE from a
// truncated N(0, I), T = 1) and EulerDDS (the VP SDE with the reference control r = -sigma x, whose terminal
// law is N(0, I)), all Euler-Maruyama on a uniform grid with the drift at the left point; and DDS with the
// exponential integrator on Vargas et al.'s cosine grid (end T = 12.8): X' = a_k X + b_k^2 sigma^2 u +
// sigma b_k xi, b_k = clip(alpha sqrt(dt_k), 0, 1), a_k = sqrt(1 - b_k^2), from a truncated N(0, sigma^2 I).
// The OU reference of that scheme keeps N(0, sigma^2 I) exactly at every step size. sde_sampler implements
// only kl for this integrator; its lv and lv_traj here follow the same Gaussian-transition algebra as the
// Euler methods (running cost b^2 sigma^2 u.(w - u/2), Ito term sigma b u.xi).
// The grid: `steps` + 1 cosine weights whose running sums give `steps` + 1 intervals, the trailing ones with
// no length to speak of (within 1e-6 T of T) dropped as sde_sampler does: 256 steps keep 243 intervals.
//
// Losses:
//  - kl: mean(R) with backpropagation through the whole path (memory O(steps x batch x width): every step's
//    network activations stay on the tape). The target score inside u is detached, as sde_sampler does by
//    default (ScoreCtrl.detach_score), so no second derivatives of the energy are needed; the terminal
//    energy's gradient flows into X_N.
//  - lv: the unbiased variance of R over the batch, paths simulated with the detached control. The gradient
//    sum_b 2 (R_b - mean R) / (B - 1) dR_b/dtheta is accumulated step by step: a first pass computes R, a
//    second pass regenerates the same Philox noise and the same states and backpropagates each step's control
//    alone, so memory does not grow with the number of steps. With w = stopgrad(u) a step's dR has the
//    gradient dW with respect to u (the running cost's h (w - u) vanishes), so the cotangent of u_b is
//    cot_b dW_b. Both passes advance the paths with the fused kernels::sde_step (one kernel per step for the
//    control, cost, Ito term and update after the networks and the energy gradient).
//  - lv_traj: each start point repeated traj_per_sample times; the mean over points of the per-point
//    unbiased variance.
// Paths with a non-finite R (kl) or R >= 1e8 (lv) are dropped, and the loss is divided by the dimension.
//
// Particle systems (DW-4, LJ): the control network is an EGNN (samplers/egnn.h, SiLU, egnn_layers x
// channels, the time as node feature), and the paths live in the mean-free subspace of dimension
// d_eff = (n - 1) D: the prior is projected, the control u (network, score term and all) is projected, and
// the state after every step. Since P u = u and P is symmetric, u.dW = u.(P dW), so the R of the full-space
// noise is exactly that of the projected noise, and the fused step serves unchanged (it receives the
// projected u as its network output, with no score term and no clip). The densities of R (prior, reference,
// DIS's divergence) are those of the subspace, so log Z is the integral of exp(-E) over it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nsamp/autograd/module.h"
#include "nsamp/autograd/tape.h"
#include "nsamp/kernels/sde.h"
#include "nsamp/samplers/egnn.h"
#include "nsamp/samplers/mean_free.h"
#include "nsamp/samplers/networks.h"
#include "nsamp/targets/target.h"

namespace nsamp::samplers {

enum class PathMethod { Pis, Dis, Dds, EulerDds };
enum class PathLoss { Kl, Lv, LvTraj };
const char* path_method_name(PathMethod m);  // pis, dis, dds, euler-dds
const char* path_loss_name(PathLoss l);      // kl, lv, lv_traj
PathMethod parse_path_method(const std::string& name);
PathLoss parse_path_loss(const std::string& name);

struct PathConfig {
  PathMethod method = PathMethod::Pis;
  int steps = 200;
  double T = 0;  // 0: the method's default (PIS 5, DIS and EulerDDS 1, DDS 12.8: the cosine grid's end)
  double pis_sigma = 0.4472135954999579;  // sqrt(0.2)
  double beta_min = 0.1, beta_max = 10.0;
  double dds_alpha = 1.0, dds_sigma = 1.0;
  double prior_quantile = 5e-5;  // DIS/EulerDDS prior truncated at these per-coordinate quantiles
  double clip = 10.0;            // elementwise clip of NN, NN_t and the (interpolated) score
  std::int64_t channels = 64;
  int layers = 2;       // hidden Linear(C, C) blocks of the FourierMLP (NN_t has layers + 1 linear layers)
  int egnn_layers = 3;  // particle systems: the EGNN control network's layers (width `channels`)
  int traj_per_sample = 1;
  double terminal_time() const;
};

// The DDS time grid for `steps` cosine weights ending at `end` (see above): the points t_0 = 0 < ... < t_K.
std::vector<double> dds_cosine_grid(double end, int steps);

// A batch of paths' end points and log-RNDs.
struct PathBatch {
  Tensor x;  // [B, d]
  Tensor R;  // [B]
};

class PathSampler {
 public:
  PathSampler(const targets::Target& target, PathConfig config, DType dtype, Context& ctx);

  // Simulates `batch` paths with the current control (no gradients), noise from Philox (seed, offset); no
  // host transfer, so it may be captured (draw_paths).
  PathBatch simulate(std::int64_t batch, std::uint64_t seed, philox::Offset offset, Context& ctx) const;
  // One loss evaluation with gradients accumulated into the parameters' grad (which the caller zeroes).
  // Returns the loss value (NaN when too few paths are usable, with a zero gradient); `kept` receives the
  // number of paths that entered it.
  double loss_and_grad(PathLoss loss, std::int64_t batch, std::uint64_t seed, std::uint64_t offset,
                       std::int64_t* kept, Context& ctx);
  // The loss and its gradient with no host transfer (kernels::log_variance_loss, kernels::kl_path_loss on the
  // device), the form a training step captured as a CUDA graph uses: stats float64 [2] receives (loss, paths
  // used), and the noise offsets may be read from device memory (philox::Offset). kl backpropagates through
  // the whole path with the cotangent of R; lv / lv_traj run the paths twice (lv_loss_and_grad).
  void device_loss_and_grad(PathLoss loss, std::int64_t batch, std::uint64_t seed, philox::Offset offset,
                            Tensor& stats, Context& ctx);
  void lv_loss_and_grad(PathLoss loss, std::int64_t batch, std::uint64_t seed, philox::Offset offset,
                        Tensor& stats, Context& ctx);

  // R [B] of `batch` paths recorded on the caller's tape with the conventions of `loss` (kl: through the
  // path, DIS without its zero-mean terms; lv/lv_traj: the detached control, every path's own start point
  // for lv, traj_per_sample copies of each for lv_traj). For custom losses and for checking gradients; the
  // memory is that of the kl loss.
  ag::Var log_rnd(PathLoss loss, std::int64_t batch, std::uint64_t seed, std::uint64_t offset, ag::Tape& tape,
                  Context& ctx) const;

  std::vector<ag::Var> parameters() const;
  const PathConfig& config() const { return cfg_; }
  void set_clip(double clip) { cfg_.clip = clip; }  // the training schedule raises it
  TimeNet& time_net() { return nn_t_; }
  const MeanFree& mean_free() const { return mf_; }
  std::int64_t dof() const { return d_eff_; }  // d, or (n - 1) D for particle systems
  // Noise counters one simulation of `batch` paths consumes (offsets of successive batches must differ by
  // at least this much).
  std::uint64_t counters_per_batch(std::int64_t batch) const;
  // Number of SDE steps a path takes (DDS: the trimmed cosine grid's intervals).
  std::size_t path_steps() const { return plan(false).size(); }

 private:
  enum class Pass { Eval, KlTrain, LvForward, LvBackward };
  struct Step {
    double t = 0;  // the time the networks see
    kernels::SdeStepCoef k;
  };
  struct Control {
    ag::Var u;
    Tensor nn, nt;  // the networks' raw outputs
  };
  std::vector<Step> plan(bool eval) const;
  Control control(ag::Tape& tp, const ag::Var& tv, const ag::Var& x, const Tensor& grad_e,
                  const kernels::SdeStepCoef& k, Context& ctx) const;
  ag::Var network(ag::Tape& tp, const ag::Var& tv, const ag::Var& x) const;  // NN(t, x)
  void fused_coef(kernels::SdeStepCoef& coef, Tensor& nt, Context& ctx) const;
  Tensor prior(std::int64_t batch, int repeats, std::uint64_t seed, philox::Offset offset,
               Context& ctx) const;
  ag::Var run(Pass pass, std::int64_t batch, int repeats, std::uint64_t seed, philox::Offset offset,
              const Tensor* cotangent, ag::Tape& tape, Tensor* x_end, Context& ctx) const;

  const targets::Target& target_;
  PathConfig cfg_;
  DType dtype_;
  std::int64_t d_, d_eff_;
  MeanFree mf_;
  std::unique_ptr<FourierMLP> nn_;  // dense targets
  std::unique_ptr<Egnn> egnn_;      // particle systems
  TimeNet nn_t_;
};

}  // namespace nsamp::samplers
