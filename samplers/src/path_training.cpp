#include "nsamp/samplers/path_training.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/core/rng_counter.h"
#include "nsamp/core/step_graph.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "nsamp/autograd/optim.h"

namespace nsamp::samplers {

PathSamples draw_paths(const PathSampler& ps, std::int64_t n, std::uint64_t seed, Context& ctx,
                       bool cuda_graph) {
  NSAMP_CHECK(n >= 1, "draw_paths: need at least one path, got ", n);
  PathSamples out;
  out.log_w.reserve(std::size_t(n));
  const std::int64_t chunk = 8192;
  const std::uint64_t per = ps.counters_per_batch(chunk);
  auto keep = [&](const Tensor& x, const Tensor& R) {
    const std::vector<double> xv = x.to_doubles(ctx);
    out.x.insert(out.x.end(), xv.begin(), xv.end());
    for (double r : R.to_doubles(ctx)) out.log_w.push_back(-r);
  };
  // Two or more full chunks: the first runs eagerly, the others replay it as a graph with the chunk's offset
  // set in a device counter; the results are copied into buffers that outlive the graph.
  const bool graphed = cuda_graph && n / chunk >= 2;
  RngCounter at(ctx, 0);
  Tensor x_out, R_out;
  StepGraph graph;
  auto body = [&] {
    const PathBatch pb = ps.simulate(chunk, seed, at.at(), ctx);
    copy(pb.x, x_out, ctx);
    copy(pb.R, R_out, ctx);
  };
  for (std::int64_t done = 0, k = 0; done < n; done += chunk, ++k) {
    const std::int64_t b = std::min(chunk, n - done);
    if (graphed && b == chunk) {
      at.set(std::uint64_t(k) * per, ctx);
      if (k == 0) {
        const PathBatch pb = ps.simulate(chunk, seed, at.at(), ctx);
        x_out = pb.x.clone(ctx);
        R_out = pb.R.clone(ctx);
        graph.capture(ctx, body);
      } else {
        graph.replay();
      }
      keep(x_out, R_out);
      continue;
    }
    const PathBatch pb = ps.simulate(b, seed, std::uint64_t(k) * per, ctx);
    keep(pb.x, pb.R);
  }
  return out;
}

metrics::WeightStats evaluate_paths(const PathSampler& ps, std::int64_t n, std::uint64_t seed, Context& ctx,
                                    bool cuda_graph) {
  const std::vector<double> lw = draw_paths(ps, n, seed, ctx, cuda_graph).log_w;
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
  // Stepped every step, as torch's StepLR under sde_sampler: gamma applies once per lr_step_every steps.
  ag::StepLR sched(opt.lr, opt.lr_step_every, opt.lr_gamma);
  const bool ema_on = opt.ema_decay > 0;
  const ag::EmaSchedule ema_sched =
      ema_on ? ag::EmaSchedule(opt.ema_decay, opt.ema_power, opt.ema_start, opt.ema_every)
             : ag::EmaSchedule();
  std::unique_ptr<ag::EMA> ema;
  const double base_clip = ps.config().clip;
  auto clip_for = [&](std::int64_t step) {
    if (!opt.clip_schedule) return base_clip;
    return base_clip * (step >= 400 ? 25.0 : step >= 200 ? 5.0 : 1.0);
  };
  const std::uint64_t per = ps.counters_per_batch(opt.batch);
  auto t_log = std::chrono::steady_clock::now();
  std::int64_t since_log = 0;
  std::int64_t start = 0;
  if (control && control->resume) {
    const ag::StateDict& st = *control->resume;
    start = detail::get_loop_state(st, "path", opt.iterations, ctx);
    ag::get_parameters(st, params, ctx, {"state/"});
    adam.load_state(st, "state/adam/");
    sched.load_state(st, "state/lr_schedule/");
    // The schedule is a function of the step: this also mends checkpoints written while StepLR was stepped
    // once per lr_step_every steps (its epoch then counted those).
    sched.set_epoch(start);
    adam.set_lr(sched.lr_at(start));
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
  // A step makes no host transfer: the loss (kl, lv, lv_traj), the paths kept and Adam's decisions stay on
  // the device (read back only to log), the noise offsets come from a device counter that the step advances,
  // the gradients are zeroed in place (a parameter that gets none keeps none, as Adam expects). So the step
  // can be replayed as a CUDA graph, recaptured only when the control clip changes (its value is a kernel
  // argument); the first step runs eagerly to make the lazily built constants and workspaces outside the
  // capture.
  RngCounter noise(ctx, std::uint64_t(start) * per);
  Tensor stats = Tensor::zeros(Shape{2}, DType::F64, ctx.device(), ctx);
  for (ag::Var& p : params) p.set_grad(Tensor());  // the first step makes them; later ones zero them in place
  auto device_body = [&] {
    for (ag::Var& p : params)
      if (p.grad().defined()) {
        Tensor g = p.grad();
        zero(g, ctx);
      }
    {
      NSAMP_RANGE("path/loss_and_grad");
      ps.device_loss_and_grad(opt.loss, opt.batch, opt.seed, noise.at(), stats, ctx);
    }
    adam.enqueue_step(stats.slice_rows(0, 1));  // skips (and counts) a non-finite loss or gradient
    noise.advance(per, ctx);
  };
  // The shadow starts as the parameters at the schedule's last reset step (before the first step when that
  // is 0); a resumed run that passed it without an EMA state starts it from the current parameters.
  if (ema_on && !ema && start >= ema_sched.reset_step()) ema = std::make_unique<ag::EMA>(params, 0.0, ctx);
  StepGraph graph;
  double graph_clip = 0;
  for (std::int64_t step = start; step < opt.iterations; ++step) {
    ps.set_clip(clip_for(step));
    if (opt.cuda_graph && step > start) {
      if (!graph.captured() || graph_clip != ps.config().clip) {
        graph.capture(ctx, device_body);
        graph_clip = ps.config().clip;
      }
      graph.replay();
    } else {
      device_body();
    }
    const std::int64_t done = step + 1;
    sched.step(adam);
    if (ema_on && ema_sched.acts(done)) {
      if (done <= ema_sched.start) {
        if (done == ema_sched.reset_step()) ema = std::make_unique<ag::EMA>(params, 0.0, ctx);
      } else {
        ema->set_decay(ema_sched.decay(done));
        ema->update();
      }
    }
    ++since_log;
    const bool eval_now = done % opt.eval_every == 0 || done == opt.iterations;
    if (done % opt.log_every == 0 || eval_now) {
      const std::vector<double> st = stats.to_vector<double>(ctx);
      PathTrainLog log;
      log.step = done;
      log.loss = st[0];
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
      log.seconds_per_step = secs / double(std::max<std::int64_t>(since_log, 1));
      log.skipped = adam.skipped();
      log.kept_paths = std::int64_t(st[1]);
      log.lr = adam.lr();
      if (eval_now) {
        if (ema) ema->swap();
        NSAMP_RANGE("path/eval");
        log.eval = evaluate_paths(ps, opt.eval_paths, opt.seed + 1, ctx, opt.cuda_graph);
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
