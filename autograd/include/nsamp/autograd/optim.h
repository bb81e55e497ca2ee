// Optimisers and training utilities: Adam (L2 weight decay), gradient-norm clipping, skipping of non-finite
// steps, an exponential moving average of parameters, and the StepLR / ReduceLROnPlateau schedules (PyTorch's
// semantics).
#pragma once

#include <cstdint>
#include <vector>

#include "nsamp/autograd/state_dict.h"
#include "nsamp/autograd/tape.h"

namespace nsamp::ag {

// sqrt of the sum of squares of every defined gradient (one device-to-host read).
double grad_norm(const std::vector<Var>& params, Context& ctx);
// Scales the gradients in place so that their global norm is at most max_norm; returns the norm before.
double clip_grad_norm(std::vector<Var>& params, double max_norm, Context& ctx);

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;  // L2 penalty added to the gradient (torch.optim.Adam)
  double clip_norm = 0.0;     // clip the global gradient norm to this before the update; 0 = off
};

// The step count, learning rate, last gradient norm and the skip decision live in a float64 state vector on
// the parameters' device (kernels::adam_prepare), so a step needs no host round trip and can be captured in
// a CUDA graph (enqueue_step); the accessors below read that state back.
class Adam {
 public:
  Adam(std::vector<Var> params, const AdamOptions& options, Context& ctx);

  // One update from the parameters' gradients (parameters without a gradient are left alone). When the loss
  // or the gradient norm is not finite the step is skipped: nothing changes and skipped() counts it.
  // Returns whether the step was applied (one read of the device state).
  bool step(double loss = 0.0);
  // The same without any host transfer, the loss read on the device from a one-element float tensor:
  // the form a captured training step uses.
  void enqueue_step(const Tensor& loss);
  void zero_grad();

  double lr() const { return opt_.lr; }
  void set_lr(double lr);  // takes effect from the next step, captured steps included
  const AdamOptions& options() const { return opt_; }
  std::int64_t steps() const;    // applied updates
  std::int64_t skipped() const;  // skipped for non-finite loss or gradient
  double last_grad_norm() const;
  std::vector<Var>& params() { return params_; }
  // Moment estimates, one per parameter (for checkpoints).
  std::vector<Tensor>& first_moments() { return m_; }
  std::vector<Tensor>& second_moments() { return v_; }
  void set_counters(std::int64_t steps, std::int64_t skipped);
  // Moments, counters and learning rate under `prefix` (checkpoints); load checks shapes first.
  void save_state(StateDict& s, const std::string& prefix) const;
  void load_state(const StateDict& s, const std::string& prefix);

 private:
  void enqueue(const Tensor* loss, double loss_value);
  double read(int slot) const;
  void write(int slot, double value);

  std::vector<Var> params_;
  AdamOptions opt_;
  Context* ctx_;
  std::vector<Tensor> m_, v_;
  Tensor state_;                    // float64 [kernels::kAdamStateSize, 1]
  Tensor sq32_, sq64_;              // per-gradient sums of squares, by dtype
  std::vector<std::int64_t> slot_;  // each parameter's row in its dtype's buffer
};

// shadow = decay * shadow + (1 - decay) * param after every update.
class EMA {
 public:
  EMA(const std::vector<Var>& params, double decay, Context& ctx);
  void update();
  // Swaps shadow and live values (evaluate with the average, then swap back).
  void swap();
  const std::vector<Tensor>& shadow() const { return shadow_; }
  double decay() const { return decay_; }
  void set_decay(double d) { decay_ = d; }
  void save_state(StateDict& s, const std::string& prefix) const;
  void load_state(const StateDict& s, const std::string& prefix);

 private:
  std::vector<Var> params_;
  std::vector<Tensor> shadow_;
  double decay_;
  Context* ctx_;
};

// When and with which decay an EMA acts over steps n = 1, 2, ... (sde_sampler's EMA, after ema-pytorch): it
// acts on every `every`-th step; up to step `start` the average is the parameters themselves (shadow reset to
// them); after it the decay warms up as min(cap, 1 - (1 + e)^-power) with e = n - start - 1 (0 for e <= 0),
// so the average covers the steps after `start` instead of being dominated by the weights at `start`.
struct EmaSchedule {
  double cap = 0.9999, power = 0.9;
  std::int64_t start = 0, every = 1;
  EmaSchedule() = default;
  EmaSchedule(double cap, double power, std::int64_t start, std::int64_t every);  // checks the values
  bool acts(std::int64_t n) const { return n > 0 && n % every == 0; }
  // The last step at which the shadow is reset to the parameters (0: before the first step).
  std::int64_t reset_step() const { return start / every * every; }
  double decay(std::int64_t n) const;  // for an acting step n > start
};

// lr = base_lr * gamma^floor(epoch / step_size), epoch counted by step().
class StepLR {
 public:
  StepLR(double base_lr, std::int64_t step_size, double gamma);
  double step(Adam& opt);  // advances one epoch; sets (when it changed) and returns the new learning rate
  double lr_at(std::int64_t epoch) const;
  std::int64_t epoch() const { return epoch_; }
  void set_epoch(std::int64_t e) { epoch_ = e; }
  void save_state(StateDict& s, const std::string& prefix) const;
  void load_state(const StateDict& s, const std::string& prefix);

 private:
  double base_, gamma_;
  std::int64_t step_size_, epoch_ = 0;
};

// PyTorch's ReduceLROnPlateau in mode "min" with relative threshold: after more than `patience` epochs
// without a metric below best * (1 - threshold), lr = max(lr * factor, min_lr), then `cooldown` epochs of
// rest.
class ReduceLROnPlateau {
 public:
  struct Options {
    double factor = 0.1;
    std::int64_t patience = 10;
    double threshold = 1e-4;
    std::int64_t cooldown = 0;
    double min_lr = 0.0;
    double eps = 1e-8;
  };
  ReduceLROnPlateau() : ReduceLROnPlateau(Options{}) {}
  explicit ReduceLROnPlateau(const Options& o);
  bool step(double metric, Adam& opt);  // returns whether the learning rate was reduced
  double best() const { return best_; }
  std::int64_t bad_epochs() const { return bad_; }
  void save_state(StateDict& s, const std::string& prefix) const;
  void load_state(const StateDict& s, const std::string& prefix);

 private:
  Options o_;
  double best_;
  std::int64_t bad_ = 0, cooldown_left_ = 0;
};

}  // namespace nsamp::ag
