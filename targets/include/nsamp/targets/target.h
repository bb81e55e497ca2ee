// Targets: unnormalised densities p(x) ∝ exp(-E(x)) with their energies and analytic gradients, evaluated for
// a batch x [B, d] in one fused pass on either backend, plus what is known about each: log Z, an exact
// sampler, the particle structure, the modes and a reference sample file. Definitions:
// ../shared/spec/targets.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nsamp/core/tensor.h"
#include "nsamp/kernels/mc_score.h"
#include "nsamp/kernels/mcmc.h"

namespace nsamp::targets {

// n particles in `spatial` dimensions, stored particle-major: x[b, i * spatial + k]. n == 0: not a particle
// system.
struct Particles {
  int n = 0;
  int spatial = 0;
};

// A particle structure must tile the dimension exactly (n particles of `spatial` coordinates), or be absent.
void check_particles(const std::string& who, std::int64_t dim, Particles p);

// One MALA step of B chains, for the fused path: the state (x [B, dim], the untilted E [B] and grad E
// [B, dim]), scratch (y, gy [B, dim]), per-chain accept counts [B], the tilt, the step and the counters of
// the draws (kernels/mcmc.h). All on the context's device, in x's dtype.
// iDEM's Monte Carlo noisy score for the fused path (kernels/mc_score.h): points x [B, dim] with their
// sigma [B], K samples each, the clip, the outputs score [B, dim] and log_p [B] (may be undefined) and the
// counter of the draws.
struct McScoreArgs {
  Tensor x, sigma;
  std::int64_t K = 0;
  double clip_max = 0;
  int particle_dim = 0;
  Tensor score, log_p;
  kernels::McDraws draws;
};

struct MalaStepArgs {
  Tensor x, e, grad, y, gy, accepted;
  kernels::GaussianTilt tilt;
  kernels::StepSize step;
  kernels::MalaDraws draws;
};

// Which split of a target's reference files to read (see Target::reference_file).
enum class ReferenceSplit { Validation, Test };

class Target {
 public:
  virtual ~Target() = default;

  virtual std::string name() const = 0;
  virtual std::int64_t dim() const = 0;

  // e[B] = E(x) for x [B, dim] (float32 or float64, on the context's device or the host).
  void energy(const Tensor& x, Tensor& e, Context& ctx) const;
  // e[B] = E(x) and grad[B, dim] = dE/dx, in one pass.
  void energy_and_grad(const Tensor& x, Tensor& e, Tensor& grad, Context& ctx) const;

  // log of the normalising constant Z = ∫ exp(-E(x)) dx, where it is known.
  virtual std::optional<double> log_z() const { return std::nullopt; }
  // Exact samples into out [N, dim] (host or device; drawn from the context's Philox stream).
  virtual bool has_sampler() const { return false; }
  void sample(Tensor& out, Context& ctx) const;
  virtual Particles particles() const { return {}; }
  // Centres [K][dim] of equal-weight modes (mixtures, multiwell: mode coverage metrics); empty where not
  // applicable (manywell32's 2^16 unequal modes).
  virtual std::vector<std::vector<double>> modes() const { return {}; }
  // The reference sample file (shared/data) for targets without an exact sampler; empty if none. Where a
  // target has two splits this is the validation split (checks during development), and test_reference_file
  // the test split the papers report against (iDEM and DiKL evaluate on test_split_*.npy).
  virtual std::string reference_file() const { return {}; }
  virtual std::string test_reference_file() const { return reference_file(); }

  // One MALA step as a single pass per chain (proposal, energy and gradient, decision: kernels::
  // mala_fused_row), for the built-in targets on both backends (on CUDA one thread per chain, one warp per
  // chain for particle systems). Returns false, touching nothing, where there is none (user targets); the
  // caller then runs the unfused sequence, which draws the same numbers.
  bool mala_step_fused(const MalaStepArgs& m, Context& ctx) const;

  // iDEM's Monte Carlo estimate of the noisy score for each row of x [B, dim] with its own sigma [B]
  // (kernels/mc_score.h): score [B, dim] = S_K clipped to clip_max (<= 0: no clip; the norm per particle for
  // particle systems, else over the whole vector), log_p [B] (optional) = log of the unbiased estimate of
  // Z p_sigma(x). Draws B K dim normals from the context's stream. One fused pass per point, storing no
  // K x dim gradients, for the built-in and functor targets (CPU: a thread per point; CUDA: a block per
  // point, its threads over the samples); host callbacks evaluate chunks of samples instead.
  // With `noise` given, the B K dim normals come from those counters instead (rng_counters(B K dim) of them;
  // the offset may be read on the device: a step captured as a CUDA graph).
  void mc_score(const Tensor& x, const Tensor& sigma, std::int64_t K, double clip_max, Tensor& score,
                Tensor* log_p, Context& ctx, const philox::Offset* noise = nullptr) const;

 protected:
  // Backend work behind the checks in energy() / energy_and_grad() / sample(): x is [B, dim], e [B],
  // grad [B, dim] or undefined (energy only).
  virtual void evaluate(const Tensor& x, Tensor& e, Tensor* grad, Context& ctx) const = 0;
  virtual void draw(Tensor& out, Context& ctx) const;
  virtual bool fused_mala(const MalaStepArgs&, Context&) const { return false; }
  virtual bool fused_mc_score(const McScoreArgs&, Context&) const { return false; }
};

struct TargetOptions {
  std::int64_t dim = 0;  // for "gaussian" (any d); ignored by targets of fixed dimension
};

// The command-line names: gmm40, gmm120, mog40-50d, manywell32, gmm9, multiwell5, multiwell50, funnel10, dw4,
// lj13, lj55, gaussian. An unknown name throws, listing the valid ones.
std::unique_ptr<Target> make_target(const std::string& name, const TargetOptions& options = {});
std::vector<std::string> target_names();

}  // namespace nsamp::targets
