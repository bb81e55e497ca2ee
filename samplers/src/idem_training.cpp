#include "nsamp/samplers/idem_training.h"
#include "nsamp/core/nvtx.h"

#include <chrono>
#include <cmath>

#include "device_values.h"
#include "nsamp/autograd/optim.h"
#include "nsamp/core/fill.h"
#include "nsamp/core/rng_counter.h"
#include "nsamp/core/step_graph.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/idem.h"
#include "nsamp/kernels/transport.h"

namespace nsamp::samplers {

IdemSampler::IdemSampler(const targets::Target& target, const IdemConfig& config, DType dtype, Context& ctx)
    : target_(target),
      cfg_(config),
      dtype_(dtype),
      sch_(config.sigma_min, config.sigma_max),
      mf_(target.particles(), dtype, ctx) {
  if (mf_.active()) {
    egnn_ = std::make_unique<Egnn>(target.particles(),
                                   egnn_config(config.hidden, config.egnn_layers, ag::Activation::SiLU),
                                   dtype, ctx, "score");
  } else {
    mlp_ = std::make_unique<ResidualMLP>(target.dim(), config.hidden, config.blocks, config.emb, dtype, ctx,
                                         "score");
  }
  NSAMP_CHECK(cfg_.final_grad_steps >= 0 && cfg_.final_grad_step >= 0 && cfg_.final_grad_clip >= 0,
              "iDEM: bad final gradient steps (", cfg_.final_grad_steps, " of ", cfg_.final_grad_step,
              ", clip ", cfg_.final_grad_clip, ")");
  NSAMP_CHECK(cfg_.K >= 1 && cfg_.coord_scale > 0 && cfg_.eta >= 0 && cfg_.clip >= 0 && cfg_.lambda_eps >= 0,
              "iDEM: bad settings (K ", cfg_.K, ", coord_scale ", cfg_.coord_scale, ", eta ", cfg_.eta,
              ", clip ", cfg_.clip, ", lambda_eps ", cfg_.lambda_eps, ")");
}

std::vector<ag::Var> IdemSampler::parameters() const {
  return egnn_ ? egnn_->parameters() : mlp_->parameters();
}

ag::Var IdemSampler::score(ag::Tape& tp, const ag::Var& t, const ag::Var& y) const {
  return egnn_ ? egnn_->forward(tp, t, y) : mlp_->forward(tp, t, y);
}

Tensor IdemSampler::prior(std::int64_t n, Context& ctx) const {
  Tensor y = Tensor::empty(Shape{n, target_.dim()}, dtype_, ctx);
  mf_.fill_normal(y, ctx, sch_.sigma(1.0));
  return y;
}

void IdemSampler::final_gradient_steps(Tensor& y, Context& ctx) const {
  if (cfg_.final_grad_steps == 0 || y.rows() == 0) return;
  const double a = cfg_.coord_scale;
  Tensor e = Tensor::empty(Shape{y.rows()}, dtype_, ctx), g = Tensor::empty(y.shape(), dtype_, ctx);
  const std::int64_t B = y.rows(), d = y.cols();
  for (int k = 0; k < cfg_.final_grad_steps; ++k) {
    target_.energy_and_grad(to_target_units(y, ctx), e, g, ctx);
    // y -= step / a * clip(grad E) per row (norm final_grad_clip, target units); a row whose gradient is not
    // finite (overlapping particles) keeps its position. On the host: ten small steps at the end of sampling.
    std::vector<double> gv = g.to_doubles(ctx);
    for (std::int64_t b = 0; b < B; ++b) {
      double* row = gv.data() + b * d;
      double sq = 0;
      for (std::int64_t j = 0; j < d; ++j) sq += row[j] * row[j];
      const double c = std::isfinite(sq) ? -cfg_.final_grad_step / a *
                                               std::min(1.0, cfg_.final_grad_clip / (std::sqrt(sq) + 1e-6))
                                         : 0.0;
      for (std::int64_t j = 0; j < d; ++j) row[j] = c == 0.0 ? 0.0 : c * row[j];
    }
    kernels::add(y, detail::device_values(gv, y.shape(), dtype_, ctx), y, ctx);
    mf_.apply(y, ctx);
  }
}

Tensor IdemSampler::to_target_units(const Tensor& y, Context& ctx) const {
  Tensor x = Tensor::empty(y.shape(), y.dtype(), ctx);
  kernels::affine(y, cfg_.coord_scale, cfg_.coord_shift, x, ctx);
  return x;
}

Tensor IdemSampler::mc_score(const Tensor& y, const std::vector<double>& sigma, Context& ctx,
                             Tensor* log_p) const {
  const double a = cfg_.coord_scale;
  std::vector<double> sx(sigma.size());
  for (std::size_t i = 0; i < sigma.size(); ++i) sx[i] = a * sigma[i];
  return mc_score(y, detail::device_values(sx, Shape{y.rows()}, y.dtype(), ctx), ctx, log_p);
}

Tensor IdemSampler::mc_score(const Tensor& y, const Tensor& sigma_x, Context& ctx, Tensor* log_p,
                             const philox::Offset* noise) const {
  const double a = cfg_.coord_scale;
  Tensor score = Tensor::empty(y.shape(), y.dtype(), ctx);
  target_.mc_score(to_target_units(y, ctx), sigma_x, cfg_.K, cfg_.clip / a, score, log_p, ctx, noise);
  kernels::affine(score, a, 0.0, score, ctx);
  mf_.apply(score, ctx);
  return score;
}

Tensor IdemSampler::reverse_sde(std::int64_t n, int steps, bool use_mc, Context& ctx, bool graph) const {
  NSAMP_CHECK(n >= 1 && steps >= 1, "iDEM reverse SDE: need n >= 1 and steps >= 1, got ", n, " and ", steps);
  Tensor y;
  if (use_mc || !graph) {  // S_K's noise levels come from the host
    y = sde_steps(n, steps, use_mc, ctx);
  } else {
    std::unique_ptr<SdeRun>& r = sde_runs_[{&ctx, n, steps}];
    if (!r) {
      r = std::make_unique<SdeRun>();
      SdeRun* run = r.get();
      run->step = std::make_unique<DrawingStep>(
          ctx, [this, run, n, steps, &ctx] { run->y = sde_steps(n, steps, false, ctx); }, true);
    }
    r->step->run();
    y = r->y.clone(ctx);  // the graph's output buffer is rewritten by its next replay
  }
  return y;
}

Tensor IdemSampler::final_samples(std::int64_t n, int steps, Context& ctx, bool graph) const {
  Tensor y = reverse_sde(n, steps, false, ctx, graph);
  final_gradient_steps(y, ctx);
  return y;
}

Tensor IdemSampler::sde_steps(std::int64_t n, int steps, bool use_mc, Context& ctx) const {
  const std::int64_t d = target_.dim();
  Tensor y = Tensor::empty(Shape{n, d}, dtype_, ctx), z = Tensor::empty(Shape{n, d}, dtype_, ctx),
         time = Tensor::empty(Shape{n, 1}, dtype_, ctx);
  mf_.fill_normal(y, ctx, sch_.sigma(1.0));
  const double dt = 1.0 / steps;
  ag::Tape tp(ctx);
  ag::NoGrad ng(tp);
  for (int k = 0; k < steps; ++k) {
    const double t = 1.0 - k * dt, g = sch_.g(t);
    Tensor s;
    if (use_mc)
      s = mc_score(y, std::vector<double>(std::size_t(n), sch_.sigma(t)), ctx);
    else {
      fill_constant(time, t, ctx);
      s = score(tp, ag::Var::leaf(time), ag::Var::leaf(y)).value();
    }
    mf_.fill_normal(z, ctx, cfg_.eta * g * std::sqrt(dt));
    kernels::affine(s, g * g * dt, 0.0, s, ctx);
    kernels::add(y, s, y, ctx);
    kernels::add(y, z, y, ctx);
    tp.clear();
  }
  return y;
}

IdemEval evaluate_idem(const IdemSampler& s, std::int64_t n, int sde_steps, Context& ctx, bool graph) {
  return summarize_samples(s.target(), s.to_target_units(s.reverse_sde(n, sde_steps, false, ctx, graph), ctx),
                           ctx);
}

void check_idem_options(const IdemTrainOptions& opt, bool importance_weighted) {
  NSAMP_CHECK(opt.epochs >= 0 && opt.inner_steps >= 1 && opt.batch >= 1 &&
                  opt.buffer_capacity >= opt.buffer_min && opt.init_samples >= 1 &&
                  opt.samples_per_epoch >= 1 && opt.log_every >= 1 && opt.eval_every >= 1 &&
                  opt.eval_samples >= 1,
              "iDEM train: bad options (epochs ", opt.epochs, ", inner_steps ", opt.inner_steps, ", batch ",
              opt.batch, ", buffer ", opt.buffer_min, " .. ", opt.buffer_capacity, ")");
  NSAMP_CHECK(!importance_weighted || (opt.iw_time_groups >= 0 && opt.iw_time_groups <= opt.batch),
              "IW-SM train: iw_time_groups ", opt.iw_time_groups, " must be in [0, batch ", opt.batch,
              "] (the gmm40, gmm120 and dw4 presets set 8; --set iw_time_groups=0 draws a time per point)");
  NSAMP_CHECK(!importance_weighted || (opt.iw_uniform_mix >= 0 && opt.iw_uniform_mix <= 1),
              "IW-SM train: iw_uniform_mix ", opt.iw_uniform_mix, " must be in [0, 1]");
}

void train_idem(IdemSampler& s, const IdemTrainOptions& opt, Context& ctx,
                const std::function<void(const IdemTrainLog&)>& on_log, TrainControl* control) {
  check_idem_options(opt, s.config().importance_weighted);
  const IdemConfig& c = s.config();
  const VeSchedule& sch = s.schedule();
  const std::int64_t B = opt.batch, d = s.target().dim();
  const DType dt = s.dtype();
  std::vector<ag::Var> params = s.parameters();
  ag::AdamOptions ao;
  ao.lr = opt.lr;
  ao.clip_norm = opt.clip_grad;
  ag::Adam adam(params, ao, ctx);
  ag::ReduceLROnPlateau::Options po;
  po.factor = opt.lr_factor;
  po.patience = opt.lr_patience;
  ag::ReduceLROnPlateau plateau(po);
  ReplayBuffer buf(opt.buffer_capacity, d, dt, ctx);
  const MeanFree& mf = s.mean_free();
  ag::Tape tp(ctx);
  Tensor z = Tensor::empty(Shape{B, d}, dt, ctx);
  // Running sums on the device (kernels::idem_accumulate): since the last log (loss, ESS) and of the epoch
  // (the finite losses and their count: the plateau's metric).
  enum { kLossSum = 0, kEssSum = 1, kEpochLoss = 2, kEpochSteps = 3 };
  Tensor acc = Tensor::zeros(Shape{4}, DType::F64, ctx);
  auto acc_set = [&](int slot, double v) {
    Tensor e = acc.slice_rows(slot, slot + 1);
    fill_constant(e, v, ctx);
  };
  auto acc_get = [&] { return acc.to_vector<double>(ctx); };
  std::int64_t epochs_since = 0, steps_since = 0;
  // Position: epochs completed, inner steps done in the next one.
  std::int64_t first_epoch = 1, first_inner = 0;
  if (control && control->resume) {
    const ag::StateDict& st = *control->resume;
    first_epoch = detail::get_loop_state(st, "idem", opt.epochs, ctx) + 1;
    first_inner = st.get_int("state/inner");
    NSAMP_CHECK(first_inner >= 0 && first_inner <= opt.inner_steps, st.source(), ": inner step ", first_inner,
                " outside [0, ", opt.inner_steps, "]");
    ag::get_parameters(st, params, ctx, {"state/"});
    adam.load_state(st, "state/adam/");
    plateau.load_state(st, "state/plateau/");
    buf.load_state(st, "state/buffer/");
    acc_set(kLossSum, st.get_double("state/loss_sum"));
    acc_set(kEssSum, st.get_double("state/ess_sum"));
    acc_set(kEpochLoss, st.get_double("state/epoch_loss"));
    acc_set(kEpochSteps, double(st.get_int("state/epoch_steps")));
    steps_since = st.get_int("state/steps_since");
    epochs_since = st.get_int("state/epochs_since");
  } else {
    buf.push(opt.init_from_prior
                 ? s.prior(opt.init_samples, ctx)
                 : s.reverse_sde(opt.init_samples, opt.sde_steps, true, ctx));  // by S_K itself
  }
  // `epochs_done` complete epochs and `inner` steps of the next.
  auto save = [&](std::int64_t epochs_done, std::int64_t inner) {
    NSAMP_RANGE("train/checkpoint");
    ag::StateDict st;
    detail::put_loop_state(st, "idem", epochs_done, ctx);
    st.set_int("state/inner", inner);
    ag::put_parameters(st, params, ctx);
    adam.save_state(st, "state/adam/");
    plateau.save_state(st, "state/plateau/");
    buf.save_state(st, "state/buffer/");
    const std::vector<double> a = acc_get();
    st.set_double("state/loss_sum", a[kLossSum]);
    st.set_double("state/ess_sum", a[kEssSum]);
    st.set_double("state/epoch_loss", a[kEpochLoss]);
    st.set_int("state/epoch_steps", std::int64_t(a[kEpochSteps]));
    st.set_int("state/steps_since", steps_since);
    st.set_int("state/epochs_since", epochs_since);
    control->save(st, epochs_done);
  };
  // One inner step with no host transfer: buffer rows, times, noise levels, IW-SM weights, the loss and
  // Adam's decisions stay on the device, the Philox counters come from a device counter set before the step
  // (the same counters the context hands out), gradients are zeroed in place after the first step made them.
  // So it is replayed as a CUDA graph, captured again whenever the buffer has grown (its size is baked into
  // the sampling and the buffer density); its first run is eager.
  const std::uint64_t n_idx = rng_counters(B, DType::F64), n_t = n_idx, n_z = rng_counters(B * d, dt),
                      n_mc = rng_counters(B * c.K * d, dt);
  RngCounter rng(ctx);
  Tensor u = Tensor::empty(Shape{B}, DType::F64, ctx), idx = Tensor::empty(Shape{B}, DType::I32, ctx),
         y0 = Tensor::empty(Shape{B, d}, dt, ctx), times = Tensor::empty(Shape{B}, DType::F64, ctx),
         t_col = Tensor::empty(Shape{B, 1}, dt, ctx), sigma = Tensor::empty(Shape{B, 1}, dt, ctx),
         sigma_x = Tensor::empty(Shape{B}, dt, ctx), scale = Tensor::empty(Shape{B}, dt, ctx),
         shift = Tensor::empty(Shape{B}, DType::F64, ctx), lambda = Tensor::empty(Shape{B}, DType::F64, ctx),
         coef = Tensor::empty(Shape{B}, dt, ctx), ess = Tensor::empty(Shape{1}, DType::F64, ctx);
  const std::int64_t groups = c.importance_weighted ? opt.iw_time_groups : 0;  // iDEM: times per point
  const double mix = c.importance_weighted ? opt.iw_uniform_mix : 0;
  auto inner_step = [&] {
    const std::uint64_t seed = ctx.seed();
    buf.sample_at(seed, rng.at(0), u, idx, y0);
    fill_uniform_at(times, seed, rng.at(n_idx), ctx);
    kernels::VeLevels v;
    v.sigma_min = sch.sigma_min;
    v.sigma_max = sch.sigma_max;
    v.coord_scale = c.coord_scale;
    v.d_eff = double(mf.dof(d));
    v.buffer_rows = buf.size();
    v.lambda_h = c.lambda_h;
    v.lambda_eps = c.lambda_eps;
    v.time_groups = groups;
    kernels::idem_noise_levels(times, v, t_col, sigma, sigma_x, scale, shift, lambda, ctx);
    mf.fill_normal_at(z, seed, rng.at(n_idx + n_t), ctx);
    Tensor yt = Tensor::empty(Shape{B, d}, dt, ctx);
    kernels::mul(z, sigma, yt, ctx);
    kernels::add(yt, y0, yt, ctx);
    const bool iw = c.importance_weighted;
    Tensor log_p = Tensor::empty(Shape{B}, dt, ctx), kernel_sum;
    const Tensor target = [&] {
      NSAMP_RANGE("idem/mc_score");
      const philox::Offset mc = rng.at(n_idx + n_t + n_z);
      return s.mc_score(yt, sigma_x, ctx, iw ? &log_p : nullptr, &mc);
    }();
    if (iw) {
      kernel_sum = Tensor::empty(Shape{B}, dt, ctx);
      kernels::log_kernel_sum(yt, buf.rows(), scale, kernel_sum, ctx);
    }
    kernels::idem_loss_weights(iw ? &log_p : nullptr, iw ? &kernel_sum : nullptr, shift, lambda, double(d),
                               coef, ess, ctx, groups, mix);
    for (ag::Var& p : params)
      if (p.grad().defined()) {
        Tensor g = p.grad();
        zero(g, ctx);
      }
    const ag::Var pred = s.score(tp, ag::Var::leaf(t_col), ag::Var::leaf(yt));
    const ag::Var r = ag::sub(tp, pred, ag::Var::leaf(target));
    const ag::Var loss = ag::sum(tp, ag::mul(tp, ag::sq_norm_rows(tp, r), ag::Var::leaf(coef)));
    tp.backward(loss);                // a non-finite loss makes non-finite gradients:
    adam.enqueue_step(loss.value());  // Adam skips (and counts) the step
    kernels::idem_accumulate(loss.value(), ess, acc, ctx);
  };
  StepGraph graph;
  std::int64_t graph_rows = -1;
  bool stepped = false;
  auto stop_now = [&] { return control && control->stop_requested && control->stop_requested(); };
  auto t_log = std::chrono::steady_clock::now();
  for (std::int64_t epoch = first_epoch; epoch <= opt.epochs; ++epoch) {
    const std::int64_t it0 = epoch == first_epoch ? first_inner : 0;
    if (it0 == 0) {
      acc_set(kEpochLoss, 0);
      acc_set(kEpochSteps, 0);
    }
    for (std::int64_t it = it0; it < opt.inner_steps && buf.size() >= opt.buffer_min; ++it) {
      NSAMP_RANGE("idem/inner_step");
      // The counters the step draws from, reserved in the order the step uses them.
      const std::uint64_t base = ctx.reserve_rng(n_idx);
      ctx.reserve_rng(n_t);
      ctx.reserve_rng(n_z);
      ctx.reserve_rng(n_mc);
      rng.set(base, ctx);
      if (opt.cuda_graph && stepped) {
        if (!graph.captured() || graph_rows != buf.size()) {
          graph.capture(ctx, inner_step);
          graph_rows = buf.size();
        }
        graph.replay();
      } else {
        inner_step();
        stepped = true;
      }
      ++steps_since;
      if (it + 1 < opt.inner_steps && stop_now()) {
        if (control->save) save(epoch - 1, it + 1);
        control->stopped = true;
        return;
      }
    }
    if (opt.plateau) {
      const std::vector<double> a = acc_get();
      if (a[kEpochSteps] > 0) plateau.step(a[kEpochLoss] / a[kEpochSteps], adam);
    }
    {
      NSAMP_RANGE("idem/buffer_refill");
      buf.push(s.reverse_sde(opt.samples_per_epoch, opt.sde_steps, false, ctx, opt.cuda_graph));
    }
    ++epochs_since;
    const bool eval_now = epoch % opt.eval_every == 0 || epoch == opt.epochs;
    if (epoch % opt.log_every == 0 || eval_now) {
      IdemTrainLog log;
      log.epoch = epoch;
      const std::vector<double> a = acc_get();
      log.loss = steps_since > 0 ? a[kLossSum] / double(steps_since) : NAN;
      log.ess = steps_since > 0 ? a[kEssSum] / double(steps_since) : 1.0;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
      log.seconds_per_epoch = secs / double(epochs_since);
      log.skipped = adam.skipped();
      log.lr = adam.lr();
      log.buffer_size = buf.size();
      if (eval_now) {
        NSAMP_RANGE("idem/eval");
        log.eval = evaluate_idem(s, opt.eval_samples, opt.sde_steps, ctx, opt.cuda_graph);
      }
      on_log(log);
      acc_set(kLossSum, 0);
      acc_set(kEssSum, 0);
      steps_since = epochs_since = 0;
      t_log = std::chrono::steady_clock::now();
    }
    if (detail::end_of_unit(control, epoch, opt.epochs, [&] { save(epoch, 0); })) return;
  }
}

}  // namespace nsamp::samplers
