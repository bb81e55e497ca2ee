#include "nsamp/samplers/dikl_training.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/core/step_graph.h"

#include <algorithm>
#include <chrono>

#include "nsamp/autograd/optim.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/dikl.h"
#include "nsamp/kernels/elementwise.h"

namespace nsamp::samplers {

namespace {

constexpr std::int64_t kSampleChunk = 8192;

std::vector<std::int64_t> generator_widths(std::int64_t d, const DiklConfig& c) {
  NSAMP_CHECK(c.gen_width >= 1 && c.gen_layers >= 1, "DiKL: generator ", c.gen_layers, " x ", c.gen_width,
              " out of range");
  std::vector<std::int64_t> w{d};
  for (int l = 0; l < c.gen_layers; ++l) w.push_back(c.gen_width);
  w.push_back(d);
  return w;
}

}  // namespace

DiklSampler::DiklSampler(const targets::Target& target, const DiklConfig& config, DType dtype, Context& ctx)
    : target_(target),
      cfg_(config),
      dtype_(dtype),
      sch_(DiklSchedule::make(config.beta_start, config.beta_end, config.weight_inv_alpha, config.levels)),
      mf_(target.particles(), dtype, ctx),
      post_(target, config.posterior) {
  if (mf_.active()) {
    NSAMP_CHECK(config.gen_width >= 1 && config.gen_layers >= 1 && config.score_width >= 1 &&
                    config.score_layers >= 1,
                "DiKL: EGNN sizes out of range (generator ", config.gen_layers, " x ", config.gen_width,
                ", score ", config.score_layers, " x ", config.score_width, ")");
    const ag::Activation relu = ag::Activation::ReLU;
    gen_egnn_ = std::make_unique<Egnn>(
        target.particles(),
        egnn_config(config.gen_width, config.gen_layers, relu, EgnnConfig::Output::Position), dtype, ctx,
        "generator");
    score_egnn_ = std::make_unique<Egnn>(
        target.particles(), egnn_config(config.score_width, config.score_layers, relu), dtype, ctx, "score");
  } else {
    gen_ = std::make_unique<ag::MLP>(generator_widths(target.dim(), config), ag::Activation::SiLU,
                                     ag::Activation::Identity, dtype, ctx, "generator");
    score_ = std::make_unique<ConditionalMLP>(target.dim(), config.score_width, config.score_layers,
                                              config.freq_std, dtype, ctx, "score");
  }
}

std::vector<ag::Var> DiklSampler::generator_parameters() const {
  return gen_egnn_ ? gen_egnn_->parameters() : gen_->parameters();
}

std::vector<ag::Var> DiklSampler::score_parameters() const {
  return score_egnn_ ? score_egnn_->parameters() : score_->parameters();
}

ag::Var DiklSampler::generate(ag::Tape& tp, const Tensor& z) const {
  NSAMP_CHECK(z.rank() == 2 && z.cols() == target_.dim() && z.dtype() == dtype_, "DiKL: latents must be [B, ",
              target_.dim(), "] ", dtype_name(dtype_), ", got ", z.desc());
  return gen_egnn_ ? gen_egnn_->forward(tp, ag::Var(), ag::Var::leaf(z))
                   : gen_->forward(tp, ag::Var::leaf(z));
}

ag::Var DiklSampler::score(ag::Tape& tp, const ag::Var& t, const ag::Var& xt) const {
  return score_egnn_ ? score_egnn_->forward(tp, t, xt) : score_->forward(tp, t, xt);
}

Tensor DiklSampler::sample(std::int64_t n, std::uint64_t seed, Context& ctx) const {
  NSAMP_CHECK(n >= 1, "DiKL: need at least one sample, got ", n);
  const std::int64_t d = target_.dim();
  Tensor out = Tensor::empty(Shape{n, d}, dtype_, ctx);
  ag::Tape tp(ctx);
  ag::NoGrad ng(tp);
  for (std::int64_t done = 0, k = 0; done < n; done += kSampleChunk, ++k) {
    const std::int64_t b = std::min(kSampleChunk, n - done);
    Tensor z = Tensor::empty(Shape{b, d}, dtype_, ctx);
    fill_normal_at(z, seed, std::uint64_t(k) * rng_counters(kSampleChunk * d, dtype_), ctx);
    mf_.apply(z, ctx);
    const Tensor x = generate(tp, z).value();
    Tensor dst = out.slice_rows(done, done + b);
    copy(x, dst, ctx);
  }
  return out;
}

std::vector<ag::Var> DiklSampler::parameters() const {
  std::vector<ag::Var> p = generator_parameters();
  for (const ag::Var& v : score_parameters()) p.push_back(v);
  return p;
}

std::vector<ag::Var> DiklSampler::buffers() const {
  return score_ ? score_->buffers() : std::vector<ag::Var>{};
}

std::vector<ag::Var> DiklSampler::model_tensors() const {
  std::vector<ag::Var> p = parameters();
  for (const ag::Var& v : buffers()) p.push_back(v);
  return p;
}

DiklEval evaluate_dikl(const DiklSampler& s, std::int64_t n, std::uint64_t seed, Context& ctx) {
  return summarize_samples(s.target(), s.sample(n, seed, ctx), ctx);
}

void train_dikl(DiklSampler& s, const DiklTrainOptions& opt, Context& ctx,
                const std::function<void(const DiklTrainLog&)>& on_log, TrainControl* control) {
  NSAMP_CHECK(opt.iterations >= 0 && opt.batch >= 1 && opt.score_iter >= 0, "DiKL train: bad iterations ",
              opt.iterations, ", batch ", opt.batch, " or score_iter ", opt.score_iter);
  NSAMP_CHECK(opt.log_every >= 1 && opt.eval_every >= 1 && opt.eval_samples >= 1,
              "DiKL train: log_every, eval_every and eval_samples must be positive");
  const std::int64_t B = opt.batch, d = s.target().dim();
  const DType dt = s.dtype();
  const DiklSchedule& sch = s.schedule();
  const MeanFree& mf = s.mean_free();
  ag::AdamOptions go, so;
  go.lr = opt.gen_lr;
  go.clip_norm = opt.clip_grad;
  so.lr = opt.score_lr;
  ag::Adam gen_adam(s.generator_parameters(), go, ctx), score_adam(s.score_parameters(), so, ctx);
  const ScoreFn score_fn = [&s](ag::Tape& tp, const ag::Var& t, const ag::Var& xt) {
    return s.score(tp, t, xt);
  };
  ag::Tape tp(ctx);
  Tensor z = Tensor::empty(Shape{B, d}, dt, ctx), eps = Tensor::empty(Shape{B, d}, dt, ctx);
  auto t_log = std::chrono::steady_clock::now();
  std::int64_t since_log = 0;
  double phase[3] = {0, 0, 0};
  auto t_phase = std::chrono::steady_clock::now();
  auto end_phase = [&](int k) {
    if (!opt.time_phases) return;
    ctx.synchronize();
    const auto now = std::chrono::steady_clock::now();
    phase[k] += std::chrono::duration<double>(now - t_phase).count();
    t_phase = now;
  };
  std::vector<ag::Var> params = s.model_tensors();
  std::int64_t start = 0;
  if (control && control->resume) {
    const ag::StateDict& st = *control->resume;
    start = detail::get_loop_state(st, "dikl", opt.iterations, ctx);
    ag::get_parameters(st, params, ctx, {"state/"});
    gen_adam.load_state(st, "state/generator_adam/");
    score_adam.load_state(st, "state/score_adam/");
    s.posterior().set_mala_step(st.get_double("state/mala_step"), ctx);
  }
  auto save = [&](std::int64_t done) {
    NSAMP_RANGE("train/checkpoint");
    ag::StateDict st;
    detail::put_loop_state(st, "dikl", done, ctx);
    ag::put_parameters(st, params, ctx);
    gen_adam.save_state(st, "state/generator_adam/");
    score_adam.save_state(st, "state/score_adam/");
    st.set_double("state/mala_step", s.posterior().mala_step(ctx));
    control->save(st, done);
  };
  // One iteration with no host transfer: noise levels drawn on the device, the posterior estimate and its
  // adaptive step there too, the losses and Adam's decisions kept on the device (stats: generator loss, DSM
  // loss sum, stage-B acceptance, MALA step, read at log steps), gradients zeroed in place once the first
  // iteration made them. Its draws come from a device counter set to the counters reserved for it, the ones
  // the context would hand out in turn (DrawingStep), so graph and eager runs draw the same numbers; from the
  // second iteration on it is replayed as a CUDA graph.
  const Tensor table = schedule_table(sch, ctx);
  Tensor stats = Tensor::zeros(Shape{4}, DType::F64, ctx);
  const std::vector<ag::Var> gen_params = s.generator_parameters(), score_params = s.score_parameters();
  auto zero_grads = [&ctx](const std::vector<ag::Var>& ps) {
    for (const ag::Var& p : ps)
      if (p.grad().defined()) {
        Tensor g = p.grad();
        zero(g, ctx);
      }
  };
  auto iteration = [&] {
    // The model score: score_iter DSM steps, each on a fresh stop-gradient generator batch.
    for (std::int64_t j = 0; j < opt.score_iter; ++j) {
      NSAMP_RANGE("dikl/dsm_step");
      mf.fill_normal(z, ctx);
      Tensor x;
      {
        ag::NoGrad ng(tp);
        x = s.generate(tp, z).value();
      }
      const DiklLevels lv = draw_levels(table, B, dt, ctx);
      mf.fill_normal(eps, ctx);
      zero_grads(score_params);
      const ag::Var l = dsm_loss(tp, score_fn, x, lv, eps);
      tp.backward(l);
      score_adam.enqueue_step(l.value());
      kernels::record_scalar(l.value(), stats, 1, j > 0, ctx);
    }
    end_phase(0);
    // The generator: x_t = alpha x + sigma eps, the target's noisy score by the posterior estimator, the
    // model's by s_phi, and the VJP through g with the cotangent w (s_phi - s_d).
    mf.fill_normal(z, ctx);
    const DiklLevels lv = draw_levels(table, B, dt, ctx);
    mf.fill_normal(eps, ctx);
    zero_grads(gen_params);
    NSAMP_RANGE("dikl/generator_step");
    const ag::Var xt = diffuse(tp, s.generate(tp, z), lv, eps);
    DiklPosteriorResult post = [&] {
      NSAMP_RANGE("dikl/posterior");
      return s.posterior().enqueue(xt.value(), lv.alpha, lv.sigma, ctx);
    }();
    mf.apply(post.score, ctx);
    end_phase(1);
    Tensor c;
    {
      ag::NoGrad ng(tp);
      c = s.score(tp, ag::Var::leaf(lv.time), ag::Var::leaf(xt.value())).value();
    }
    kernels::sub(c, post.score, c, ctx);
    kernels::mul(c, lv.weight, c, ctx);
    const ag::Var loss = generator_surrogate(tp, xt, c);
    tp.backward(loss);                    // a non-finite loss makes non-finite gradients:
    gen_adam.enqueue_step(loss.value());  // Adam skips (and counts) the step
    kernels::record_scalar(loss.value(), stats, 0, false, ctx);
    kernels::record_scalar(post.acceptance, stats, 2, false, ctx);
    kernels::record_scalar(s.posterior().mala_step_tensor(), stats, 3, false, ctx);
    end_phase(2);
  };
  // Phase times need synchronisations inside the iteration: such runs stay eager.
  DrawingStep step_run(ctx, iteration, opt.cuda_graph && !opt.time_phases);
  for (std::int64_t step = start; step < opt.iterations; ++step) {
    if (opt.time_phases) t_phase = std::chrono::steady_clock::now();
    step_run.run();
    ++since_log;
    const std::int64_t done = step + 1;
    const bool eval_now = done % opt.eval_every == 0 || done == opt.iterations;
    if (done % opt.log_every == 0 || eval_now) {
      DiklTrainLog log;
      log.step = done;
      // The read waits for the queued iterations: timed before it, a replayed graph would show its launch
      // alone (0.8 ms against 56 ms eager on an H200, 2026-12-04).
      const std::vector<double> st = stats.to_doubles(ctx);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
      log.seconds_per_step = secs / double(std::max<std::int64_t>(since_log, 1));
      log.score_seconds = phase[0] / double(std::max<std::int64_t>(since_log, 1));
      log.posterior_seconds = phase[1] / double(std::max<std::int64_t>(since_log, 1));
      log.generator_seconds = phase[2] / double(std::max<std::int64_t>(since_log, 1));
      phase[0] = phase[1] = phase[2] = 0;
      log.skipped = gen_adam.skipped();
      log.score_skipped = score_adam.skipped();
      log.generator_loss = st[0];
      log.dsm_loss = opt.score_iter > 0 ? st[1] / double(opt.score_iter) : 0.0;
      log.acceptance = st[2];
      log.mala_step = st[3];
      if (eval_now) {
        NSAMP_RANGE("dikl/eval");
        log.eval = evaluate_dikl(s, opt.eval_samples, opt.seed + 1, ctx);
      }
      on_log(log);
      t_log = std::chrono::steady_clock::now();
      since_log = 0;
    }
    if (detail::end_of_unit(control, done, opt.iterations, [&] { save(done); })) return;
  }
}

}  // namespace nsamp::samplers
