#include "nsamp/autograd/optim.h"
#include "nsamp/core/fill.h"
#include "nsamp/core/nvtx.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/optim.h"
#include "nsamp/kernels/reduce.h"

namespace nsamp::ag {

double grad_norm(const std::vector<Var>& params, Context& ctx) {
  // One partial sum of squares per gradient into a buffer per dtype, each read back once.
  double total = 0;
  for (DType dt : {DType::F32, DType::F64}) {
    std::vector<const Tensor*> grads;
    for (const Var& p : params)
      if (p.grad().defined() && p.grad().dtype() == dt) grads.push_back(&p.grad());
    if (grads.empty()) continue;
    Tensor parts = Tensor::empty(Shape{static_cast<std::int64_t>(grads.size())}, dt, grads[0]->device(), ctx);
    for (std::size_t i = 0; i < grads.size(); ++i) {
      const auto k = static_cast<std::int64_t>(i);
      Tensor slot = parts.slice_rows(k, k + 1);
      kernels::row_sq_norm(grads[i]->reshape(Shape{1, grads[i]->numel()}), slot, ctx);
    }
    if (dt == DType::F32)
      for (float v : parts.to_vector<float>(ctx)) total += v;
    else
      for (double v : parts.to_vector<double>(ctx)) total += v;
  }
  return std::sqrt(total);
}

double clip_grad_norm(std::vector<Var>& params, double max_norm, Context& ctx) {
  NSAMP_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  const double norm = grad_norm(params, ctx);
  // PyTorch's coefficient: max_norm / (norm + 1e-6), applied only when below 1.
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0 && std::isfinite(norm))
    for (Var& p : params)
      if (p.grad().defined()) {
        Tensor g = p.grad();
        kernels::affine(g, coef, 0.0, g, ctx);
      }
  return norm;
}

Adam::Adam(std::vector<Var> params, const AdamOptions& options, Context& ctx)
    : params_(std::move(params)), opt_(options), ctx_(&ctx) {
  NSAMP_CHECK(opt_.lr >= 0 && opt_.eps >= 0 && opt_.weight_decay >= 0 && opt_.clip_norm >= 0, "Adam: lr ",
              opt_.lr, ", eps ", opt_.eps, ", weight_decay ", opt_.weight_decay, ", clip_norm ",
              opt_.clip_norm, " must be non-negative");
  NSAMP_CHECK(opt_.beta1 >= 0 && opt_.beta1 < 1 && opt_.beta2 >= 0 && opt_.beta2 < 1, "Adam: betas (",
              opt_.beta1, ", ", opt_.beta2, ") must lie in [0, 1)");
  std::int64_t n32 = 0, n64 = 0;
  for (const Var& p : params_) {
    NSAMP_CHECK(p.defined() && p.requires_grad(), "Adam: parameter '", p.defined() ? p.name() : "",
                "' does not require a gradient");
    m_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device(), ctx));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device(), ctx));
    slot_.push_back(p.dtype() == DType::F32 ? n32++ : n64++);
  }
  const Device dev = params_.empty() ? ctx.device() : params_[0].device();
  if (n32) sq32_ = Tensor::empty(Shape{n32, 1}, DType::F32, dev, ctx);
  if (n64) sq64_ = Tensor::empty(Shape{n64, 1}, DType::F64, dev, ctx);
  state_ = Tensor::zeros(Shape{kernels::kAdamStateSize, 1}, DType::F64, dev, ctx);
  write(kernels::kAdamLr, opt_.lr);
}

void Adam::enqueue(const Tensor* loss, double loss_value) {
  NSAMP_RANGE("optim/adam_step");
  // Gradients that are absent count 0 towards the norm, as in grad_norm.
  if (sq32_.defined()) zero(sq32_, *ctx_);
  if (sq64_.defined()) zero(sq64_, *ctx_);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& g = params_[i].grad();
    if (!g.defined()) continue;
    Tensor slot = (g.dtype() == DType::F32 ? sq32_ : sq64_).slice_rows(slot_[i], slot_[i] + 1);
    kernels::row_sq_norm(g.reshape(Shape{1, g.numel()}), slot, *ctx_);
  }
  kernels::AdamHyper h;
  h.beta1 = opt_.beta1;
  h.beta2 = opt_.beta2;
  h.eps = opt_.eps;
  h.weight_decay = opt_.weight_decay;
  h.clip_norm = opt_.clip_norm;
  kernels::adam_prepare(sq32_.defined() ? &sq32_ : nullptr, sq64_.defined() ? &sq64_ : nullptr, loss,
                        loss_value, h, state_, *ctx_);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].grad().defined()) continue;
    kernels::adam_update(params_[i].mutable_value(), params_[i].grad(), m_[i], v_[i], state_, *ctx_);
  }
}

bool Adam::step(double loss) {
  enqueue(nullptr, loss);
  return read(kernels::kAdamApply) != 0;
}

void Adam::enqueue_step(const Tensor& loss) { enqueue(&loss, 0.0); }

double Adam::read(int slot) const { return state_.slice_rows(slot, slot + 1).to_vector<double>(*ctx_)[0]; }

void Adam::write(int slot, double value) {
  Tensor t = state_.slice_rows(slot, slot + 1);
  fill_constant(t, value, *ctx_);
}

void Adam::set_lr(double lr) {
  NSAMP_CHECK(lr >= 0 && std::isfinite(lr), "Adam::set_lr: invalid learning rate ", lr);
  opt_.lr = lr;
  write(kernels::kAdamLr, lr);
}

std::int64_t Adam::steps() const { return std::int64_t(read(kernels::kAdamSteps)); }
std::int64_t Adam::skipped() const { return std::int64_t(read(kernels::kAdamSkipped)); }
double Adam::last_grad_norm() const { return read(kernels::kAdamNorm); }

void Adam::set_counters(std::int64_t steps, std::int64_t skipped) {
  NSAMP_CHECK(steps >= 0 && skipped >= 0, "Adam::set_counters: negative counters ", steps, ", ", skipped);
  write(kernels::kAdamSteps, double(steps));
  write(kernels::kAdamSkipped, double(skipped));
}

void Adam::save_state(StateDict& s, const std::string& prefix) const {
  for (std::size_t i = 0; i < m_.size(); ++i) {
    s.put(prefix + "m." + std::to_string(i), m_[i], *ctx_);
    s.put(prefix + "v." + std::to_string(i), v_[i], *ctx_);
  }
  s.set_int(prefix + "steps", steps());
  s.set_int(prefix + "skipped", skipped());
  s.set_double(prefix + "lr", opt_.lr);
}

void Adam::load_state(const StateDict& s, const std::string& prefix) {
  for (std::size_t i = 0; i < m_.size(); ++i)
    for (const char* k : {"m.", "v."}) {
      const Tensor& t = s.at(prefix + k + std::to_string(i));
      NSAMP_CHECK(t.dtype() == m_[i].dtype() && t.shape() == m_[i].shape(), s.source(), ": Adam moment '",
                  prefix, k, i, "' is ", t.desc(), " but the parameter '", params_[i].name(), "' is ",
                  m_[i].desc());
    }
  NSAMP_CHECK(!s.has(prefix + "m." + std::to_string(m_.size())), s.source(), ": Adam state '", prefix,
              "' holds more moments than the ", m_.size(), " parameters");
  const std::int64_t steps = s.get_int(prefix + "steps"), skipped = s.get_int(prefix + "skipped");
  const double lr = s.get_double(prefix + "lr");
  for (std::size_t i = 0; i < m_.size(); ++i) {
    s.copy_to(prefix + "m." + std::to_string(i), m_[i], *ctx_);
    s.copy_to(prefix + "v." + std::to_string(i), v_[i], *ctx_);
  }
  set_counters(steps, skipped);
  set_lr(lr);
}

void Adam::zero_grad() {
  for (Var& p : params_) p.zero_grad();
}

EMA::EMA(const std::vector<Var>& params, double decay, Context& ctx)
    : params_(params), decay_(decay), ctx_(&ctx) {
  NSAMP_CHECK(decay >= 0 && decay <= 1, "EMA: decay ", decay, " outside [0, 1]");
  for (const Var& p : params_) shadow_.push_back(p.value().clone(ctx));
}

void EMA::update() {
  for (std::size_t i = 0; i < params_.size(); ++i)
    kernels::ema_update(shadow_[i], params_[i].value(), decay_, *ctx_);
}

void EMA::swap() {
  for (std::size_t i = 0; i < params_.size(); ++i) std::swap(params_[i].mutable_value(), shadow_[i]);
}

void EMA::save_state(StateDict& s, const std::string& prefix) const {
  for (std::size_t i = 0; i < shadow_.size(); ++i)
    s.put(prefix + "shadow." + std::to_string(i), shadow_[i], *ctx_);
  s.set_double(prefix + "decay", decay_);
}

void EMA::load_state(const StateDict& s, const std::string& prefix) {
  for (std::size_t i = 0; i < shadow_.size(); ++i) {
    const Tensor& t = s.at(prefix + "shadow." + std::to_string(i));
    NSAMP_CHECK(t.dtype() == shadow_[i].dtype() && t.shape() == shadow_[i].shape(), s.source(),
                ": EMA shadow ", i, " is ", t.desc(), " but ", shadow_[i].desc(), " is expected");
  }
  const double decay = s.get_double(prefix + "decay");
  for (std::size_t i = 0; i < shadow_.size(); ++i)
    s.copy_to(prefix + "shadow." + std::to_string(i), shadow_[i], *ctx_);
  decay_ = decay;
}

void StepLR::save_state(StateDict& s, const std::string& prefix) const {
  s.set_int(prefix + "epoch", epoch_);
}
void StepLR::load_state(const StateDict& s, const std::string& prefix) {
  epoch_ = s.get_int(prefix + "epoch");
}

void ReduceLROnPlateau::save_state(StateDict& s, const std::string& prefix) const {
  s.set_double(prefix + "best", best_);
  s.set_int(prefix + "bad", bad_);
  s.set_int(prefix + "cooldown_left", cooldown_left_);
}

void ReduceLROnPlateau::load_state(const StateDict& s, const std::string& prefix) {
  const double best = s.get_double(prefix + "best");
  const std::int64_t bad = s.get_int(prefix + "bad"), cool = s.get_int(prefix + "cooldown_left");
  best_ = best;
  bad_ = bad;
  cooldown_left_ = cool;
}

StepLR::StepLR(double base_lr, std::int64_t step_size, double gamma)
    : base_(base_lr), gamma_(gamma), step_size_(step_size) {
  NSAMP_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
}

double StepLR::lr_at(std::int64_t epoch) const {
  return base_ * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

double StepLR::step(Adam& opt) {
  ++epoch_;
  const double lr = lr_at(epoch_);
  if (lr != opt.lr()) opt.set_lr(lr);  // a write to the device state: only when the lr changes
  return lr;
}

EmaSchedule::EmaSchedule(double cap_, double power_, std::int64_t start_, std::int64_t every_)
    : cap(cap_), power(power_), start(start_), every(every_) {
  NSAMP_CHECK(cap >= 0 && cap <= 1, "EMA schedule: decay cap ", cap, " outside [0, 1]");
  NSAMP_CHECK(power > 0 && std::isfinite(power), "EMA schedule: power must be positive, got ", power);
  NSAMP_CHECK(start >= 0 && every >= 1, "EMA schedule: start ", start, " must be >= 0 and every ", every,
              " >= 1");
}

double EmaSchedule::decay(std::int64_t n) const {
  const std::int64_t e = n - start - 1;
  if (e <= 0) return 0.0;
  return std::min(cap, std::max(0.0, 1.0 - std::pow(1.0 + double(e), -power)));
}

ReduceLROnPlateau::ReduceLROnPlateau(const Options& o)
    : o_(o), best_(std::numeric_limits<double>::infinity()) {
  NSAMP_CHECK(o.factor > 0 && o.factor < 1, "ReduceLROnPlateau: factor ", o.factor, " must lie in (0, 1)");
  NSAMP_CHECK(o.patience >= 0 && o.cooldown >= 0, "ReduceLROnPlateau: negative patience or cooldown");
}

bool ReduceLROnPlateau::step(double metric, Adam& opt) {
  if (metric < best_ * (1.0 - o_.threshold)) {
    best_ = metric;
    bad_ = 0;
  } else {
    ++bad_;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    bad_ = 0;
  }
  if (bad_ > o_.patience) {
    const double old_lr = opt.lr();
    const double new_lr = std::max(old_lr * o_.factor, o_.min_lr);
    cooldown_left_ = o_.cooldown;
    bad_ = 0;
    if (old_lr - new_lr > o_.eps) {
      opt.set_lr(new_lr);
      return true;
    }
  }
  return false;
}

}  // namespace nsamp::ag
