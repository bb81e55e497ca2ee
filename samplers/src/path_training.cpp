#include "nsamp/samplers/path_training.h"
#include "nsamp/core/nvtx.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "nsamp/autograd/optim.h"

namespace nsamp::samplers {

PathSamples draw_paths(const PathSampler& ps, std::int64_t n, std::uint64_t seed, Context& ctx) {
  NSAMP_CHECK(n >= 1, "draw_paths: need at least one path, got ", n);
  PathSamples out;
  out.log_w.reserve(std::size_t(n));
  const std::int64_t chunk = 8192;
  for (std::int64_t done = 0, k = 0; done < n; done += chunk, ++k) {
    const std::int64_t b = std::min(chunk, n - done);
    const PathBatch pb = ps.simulate(b, seed, std::uint64_t(k) * ps.counters_per_batch(chunk), ctx);
    const std::vector<double> x = pb.x.to_doubles(ctx);
    out.x.insert(out.x.end(), x.begin(), x.end());
    for (double r : pb.R.to_doubles(ctx)) out.log_w.push_back(-r);
  }
  return out;
}

metrics::WeightStats evaluate_paths(const PathSampler& ps, std::int64_t n, std::uint64_t seed, Context& ctx) {
  const std::vector<double> lw = draw_paths(ps, n, seed, ctx).log_w;
  Context host(Device::cpu());
  return metrics::weight_stats(Tensor::from_vector(lw, Shape{n}, Device::cpu(), host), host);
}

void train_path_sampler(PathSampler& ps, const PathTrainOptions& opt, Context& ctx,
                        const std::function<void(const PathTrainLog&)>& on_log, TrainControl* control) {
  NSAMP_CHECK(opt.iterations >= 0 && opt.batch >= 2, "train: bad iterations ", opt.iterations, " or batch ",
              opt.batch);
  NSAMP_CHECK(opt.log_every >= 1 && opt.eval_every >= 1 && opt.lr_step_every >= 1,
              "train: log_every, eval_every and lr_step_every must be positive");
  std::vector<ag::Var> params = ps.parameters();
  ag::AdamOptions ao;
  ao.lr = opt.lr;
  ao.weight_decay = opt.weight_decay;
  ao.clip_norm = opt.clip_grad;
  ag::Adam adam(params, ao, ctx);
  ag::StepLR sched(opt.lr, opt.lr_step_every, opt.lr_gamma);
  std::unique_ptr<ag::EMA> ema;
  const double base_clip = ps.config().clip;
  auto clip_for = [&](std::int64_t step) {
    if (!opt.clip_schedule) return base_clip;
    return base_clip * (step >= 400 ? 25.0 : step >= 200 ? 5.0 : 1.0);
  };
  const std::uint64_t per = ps.counters_per_batch(opt.batch);
  double last_loss = 0;
  std::int64_t kept = 0;
  auto t_log = std::chrono::steady_clock::now();
  std::int64_t since_log = 0;
  std::int64_t start = 0;
  if (control && control->resume) {
    const ag::StateDict& st = *control->resume;
    start = detail::get_loop_state(st, "path", opt.iterations, ctx);
    ag::get_parameters(st, params, ctx, {"state/"});
    adam.load_state(st, "state/adam/");
    sched.load_state(st, "state/lr_schedule/");
    if (st.has_meta("state/ema/decay")) {
      ema = std::make_unique<ag::EMA>(params, opt.ema_decay, ctx);
      ema->load_state(st, "state/ema/");
    }
  }
  auto save = [&](std::int64_t done) {
    NSAMP_RANGE("train/checkpoint");
    ag::StateDict st;
    detail::put_loop_state(st, "path", done, ctx);
    ag::put_parameters(st, params, ctx);
    adam.save_state(st, "state/adam/");
    sched.save_state(st, "state/lr_schedule/");
    if (ema) ema->save_state(st, "state/ema/");
    control->save(st, done);
  };
  for (std::int64_t step = start; step < opt.iterations; ++step) {
    ps.set_clip(clip_for(step));
    for (ag::Var& p : params) p.set_grad(Tensor());
    const double loss = [&] {
      NSAMP_RANGE("path/loss_and_grad");
      return ps.loss_and_grad(opt.loss, opt.batch, opt.seed, std::uint64_t(step) * per, &kept, ctx);
    }();
    adam.step(loss);  // skips (and counts) a non-finite loss or gradient
    last_loss = loss;
    if ((step + 1) % opt.lr_step_every == 0) sched.step(adam);
    if (opt.ema_decay > 0 && step + 1 >= opt.ema_start) {
      if (!ema) ema = std::make_unique<ag::EMA>(params, opt.ema_decay, ctx);
      ema->update();
    }
    ++since_log;
    const std::int64_t done = step + 1;
    const bool eval_now = done % opt.eval_every == 0 || done == opt.iterations;
    if (done % opt.log_every == 0 || eval_now) {
      PathTrainLog log;
      log.step = done;
      log.loss = last_loss;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
      log.seconds_per_step = secs / double(std::max<std::int64_t>(since_log, 1));
      log.skipped = adam.skipped();
      log.kept_paths = kept;
      log.lr = adam.lr();
      if (eval_now) {
        if (ema) ema->swap();
        NSAMP_RANGE("path/eval");
        log.eval = evaluate_paths(ps, opt.eval_paths, opt.seed + 1, ctx);
        if (ema) ema->swap();
      }
      on_log(log);
      t_log = std::chrono::steady_clock::now();
      since_log = 0;
    }
    if (detail::end_of_unit(control, done, opt.iterations, [&] { save(done); })) return;
  }
  if (ema) ema->swap();  // the run ends with the averaged parameters in place
}

}  // namespace nsamp::samplers
