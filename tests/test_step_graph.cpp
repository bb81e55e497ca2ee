// CUDA-graph groundwork: device-resident Philox offsets (RngCounter, philox::Offset), the allocator's capture
// pools, StepGraph, and a path-sampler training run replayed as a graph against the same run uncaptured.
// On the CPU a StepGraph replay reruns its body and checks that it made no host transfer; the gpu cases
// capture real CUDA graphs.
#include <cmath>
#include <cstdlib>
#include <set>

#include "nsamp/core/allocator.h"
#include "nsamp/core/fill.h"
#include "nsamp/core/rng_counter.h"
#include "nsamp/core/step_graph.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/sde.h"
#include "nsamp/samplers/dikl_training.h"
#include "nsamp/samplers/idem_training.h"
#include "nsamp/samplers/path_training.h"
#include "nsamp/targets/target.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

namespace {

int g_allocs = 0;
void* counting_alloc(std::size_t bytes, int) {
  ++g_allocs;
  return std::aligned_alloc(256, (bytes + 255) / 256 * 256);
}
void plain_free(void* p, int) { std::free(p); }

std::vector<double> params_of(s::PathSampler& ps, Context& ctx) {
  std::vector<double> out;
  for (const ag::Var& p : ps.parameters()) {
    const std::vector<double> v = test::to_doubles(p.value(), ctx);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace

NSAMP_DEVICE_TEST("rng counter: set - advance and read back - and kernels read the offset when they run") {
  Context ctx(dev);
  RngCounter c(ctx, 41);
  CHECK(c.value(ctx) == 41);
  c.advance((std::uint64_t(1) << 40) + 1, ctx);  // beyond 32 bits
  CHECK(c.value(ctx) == (std::uint64_t(1) << 40) + 42);
  c.set(1000, ctx);
  // The fused SDE step at counter.at(5) with the counter at 1000 draws the noise of the plain offset 1005.
  const std::int64_t B = 9, d = 5;
  kernels::SdeStepCoef k;
  k.h = 0.1;
  const Tensor x = test::randn(Shape{B, d}, DType::F32, dev, ctx, 1),
               nn = test::randn(Shape{B, d}, DType::F32, dev, ctx, 2),
               g = test::randn(Shape{B, d}, DType::F32, dev, ctx, 3);
  const Tensor nt = Tensor::zeros(Shape{1}, DType::F32, dev, ctx);
  auto step = [&](philox::Offset off) {
    Tensor xn = Tensor::empty(Shape{B, d}, DType::F32, dev, ctx),
           R = Tensor::zeros(Shape{B}, DType::F32, dev, ctx);
    kernels::sde_step(x, nn, nt, g, k, 7, off, xn, R, nullptr, nullptr, ctx);
    std::vector<double> out = test::to_doubles(xn, ctx), r = test::to_doubles(R, ctx);
    out.insert(out.end(), r.begin(), r.end());
    return out;
  };
  const std::vector<double> via_counter = step(c.at(5)), plain = step(1005);
  CHECK(via_counter == plain);
  CHECK(step(1006) != plain);
}

TEST_CASE("allocator: a capture pool keeps its blocks and the blocks freed meanwhile to itself" *
          doctest::test_suite("cpu")) {
  g_allocs = 0;
  CachingAllocator a(Device::cpu(), &counting_alloc, &plain_free);
  void* outside = a.allocate(4096);
  void* cached = a.allocate(4096);
  a.deallocate(cached);  // in the ordinary cache
  const std::uint64_t id = a.begin_pool();
  CHECK_THROWS_WITH_AS(a.begin_pool(), doctest::Contains("already open"), Error);
  void* in_pool = a.allocate(4096);
  CHECK(in_pool == cached);  // an ordinary cached block may join the pool (no graph addresses it)
  a.deallocate(outside);     // held back: the graph addresses it
  void* again = a.allocate(4096);
  CHECK(again != outside);
  a.deallocate(again);
  void* reuse = a.allocate(4096);  // the pool reuses its own freed block during the capture
  CHECK(reuse == again);
  a.end_pool();
  a.deallocate(in_pool);
  a.deallocate(reuse);
  // After the capture, nobody else gets the pool's blocks nor the held one.
  std::set<void*> pool_blocks{in_pool, reuse, outside};
  void* later1 = a.allocate(4096);
  void* later2 = a.allocate(4096);
  CHECK(pool_blocks.count(later1) == 0);
  CHECK(pool_blocks.count(later2) == 0);
  a.deallocate(later1);
  a.deallocate(later2);
  a.release_pool(id);
  std::set<void*> got;
  for (int i = 0; i < 5; ++i) got.insert(a.allocate(4096));
  for (void* p : pool_blocks) CHECK(got.count(p) == 1);  // all back in the ordinary cache
  for (void* p : got) a.deallocate(p);
  CHECK(a.stats().bytes_in_use == 0);
}

TEST_CASE("allocator: a block two capture pools address stays out of the cache until both are released" *
          doctest::test_suite("cpu")) {
  CachingAllocator a(Device::cpu(), &counting_alloc, &plain_free);
  const std::uint64_t first = a.begin_pool();
  void* out = a.allocate(4096);  // an output of the first graph, alive after its capture
  a.end_pool();
  const std::uint64_t second = a.begin_pool();
  a.deallocate(out);  // the second graph's body drops the first graph's output
  a.end_pool();
  a.release_pool(second);  // the first graph still writes to `out` on every replay
  std::set<void*> got;
  for (int i = 0; i < 3; ++i) got.insert(a.allocate(4096));
  CHECK(got.count(out) == 0);
  for (void* p : got) a.deallocate(p);
  a.release_pool(first);
  got.clear();
  for (int i = 0; i < 6; ++i) got.insert(a.allocate(4096));
  CHECK(got.count(out) == 1);  // both released: back in the ordinary cache
  for (void* p : got) a.deallocate(p);
  CHECK(a.stats().bytes_in_use == 0);
}

NSAMP_DEVICE_TEST("step graph: replays equal the eager steps - with the counter advanced inside the body") {
  Context ctx(dev, 5);
  const std::int64_t n = 1000;
  Tensor acc = Tensor::zeros(Shape{n}, DType::F32, ctx);
  RngCounter counter(ctx, 0);
  auto body = [&] {
    Tensor x = Tensor::empty(Shape{n, 1}, DType::F32, ctx),
           zero_nn = Tensor::zeros(Shape{n, 1}, DType::F32, ctx),
           R = Tensor::zeros(Shape{n}, DType::F32, ctx);
    kernels::SdeStepCoef k;
    k.h = 1.0;
    Tensor xz = Tensor::zeros(Shape{n, 1}, DType::F32, ctx);
    // x' = dW = xi: the Philox normals at the counter's offset.
    kernels::sde_step(xz, zero_nn, Tensor::zeros(Shape{1}, DType::F32, ctx), zero_nn, k, 3, counter.at(), x,
                      R, nullptr, nullptr, ctx);
    Tensor xv = x.reshape(Shape{n});
    kernels::add(acc, xv, acc, ctx);
    counter.advance(rng_counters(n, DType::F32), ctx);
  };
  // Reference: four eager steps on a fresh accumulator.
  Context ref_ctx(dev, 5);
  std::vector<double> ref(std::size_t(n), 0.0);
  for (int i = 0; i < 4; ++i) {
    Tensor xi = Tensor::empty(Shape{n}, DType::F32, Device::cpu(), ref_ctx);
    fill_normal_at(xi, 3, std::uint64_t(i) * rng_counters(n, DType::F32), ref_ctx);
    const std::vector<double> v = test::to_doubles(xi, ref_ctx);
    for (std::size_t j = 0; j < ref.size(); ++j) ref[j] = double(float(ref[j]) + float(v[j]));
  }
  body();  // eager warm-up, as the training loop does
  StepGraph g;
  CHECK_FALSE(g.captured());
  CHECK_THROWS_WITH_AS(g.replay(), doctest::Contains("nothing captured"), Error);
  g.capture(ctx, body);
  for (int i = 0; i < 3; ++i) g.replay();
  CHECK(g.replays() == 3);
  ctx.synchronize();
  test::check_close(test::to_doubles(acc, ctx), ref, 1e-6, 1e-6, "graph replays vs eager steps");
  CHECK(counter.value(ctx) == 4 * rng_counters(n, DType::F32));
  g.reset();
  CHECK_FALSE(g.captured());
}

NSAMP_DEVICE_TEST("step graph: a body that reads device memory on the host is refused") {
  Context ctx(dev);
  Tensor t = Tensor::zeros(Shape{4}, DType::F32, ctx);
  StepGraph g;
  auto body = [&] {
    kernels::affine(t, 1.0, 1.0, t, ctx);
    (void)t.to_vector<float>(ctx);  // a synchronisation in the middle of a step
  };
  if (dev.is_cpu()) {
    g.capture(ctx, body);
    CHECK_THROWS_WITH_AS(g.replay(), doctest::Contains("host transfer"), Error);
  } else {
    // Refused by nsamp before the copy reaches the runtime, so no CUDA error invalidates the capture.
    CHECK_THROWS_WITH_AS(g.capture(ctx, body),
                         doctest::Contains("captured step cannot move data to or from the host"), Error);
    CHECK_FALSE(g.captured());
    // The context stays usable.
    kernels::affine(t, 1.0, 1.0, t, ctx);
    CHECK(t.to_vector<float>(ctx)[0] == 1.0f);
  }
}

NSAMP_DEVICE_TEST("step graph: path-sampler training replayed as a graph equals the uncaptured run") {
  // DIS (device prior) with lv, PIS with lv_traj and with kl (backpropagation through the path), through a
  // clip-schedule change (recapture), StepLR changes (the learning rate read on the device) and gradient
  // clipping.
  auto t = targets::make_target("gmm9");
  for (int cs = 0; cs < 3; ++cs) {
    const s::PathMethod m = cs == 0 ? s::PathMethod::Dis : s::PathMethod::Pis;
    CAPTURE(s::path_method_name(m));
    CAPTURE(cs);
    s::PathConfig c;
    c.method = m;
    c.steps = 8;
    c.channels = 16;
    c.layers = 1;
    c.traj_per_sample = 4;
    s::PathTrainOptions o;
    o.loss = cs == 0 ? s::PathLoss::Lv : cs == 1 ? s::PathLoss::LvTraj : s::PathLoss::Kl;
    o.iterations = 203;  // the control clip changes at step 200
    o.batch = 32;
    o.lr = 3e-3;
    o.lr_step_every = 50;
    o.lr_gamma = 0.7;
    o.clip_grad = 0.5;
    o.log_every = 40;
    o.eval_every = 1000;
    o.eval_paths = 64;
    o.seed = 9;
    auto run = [&](bool graph, std::vector<double>* losses) {
      Context ctx(dev, 1);
      s::PathSampler ps(*t, c, DType::F32, ctx);
      s::PathTrainOptions oo = o;
      oo.cuda_graph = graph;
      s::train_path_sampler(ps, oo, ctx, [&](const s::PathTrainLog& l) { losses->push_back(l.loss); });
      return params_of(ps, ctx);
    };
    std::vector<double> l_graph, l_eager;
    const std::vector<double> p_graph = run(true, &l_graph), p_eager = run(false, &l_eager);
    CHECK(l_graph == l_eager);
    CHECK(p_graph == p_eager);
  }
  // A particle system: the EGNN control and the mean-free projections inside the captured step, and an
  // evaluation at another batch size between replays (the EGNN keeps each batch size's indices).
  auto dw4 = targets::make_target("dw4");
  s::PathConfig c;
  c.method = s::PathMethod::Dds;
  c.steps = 4;
  c.channels = 8;
  c.egnn_layers = 1;
  s::PathTrainOptions o;
  o.iterations = 6;
  o.batch = 8;
  o.log_every = 2;
  o.eval_every = 3;
  o.eval_paths = 5;
  o.seed = 4;
  auto run = [&](bool graph) {
    Context ctx(dev, 1);
    s::PathSampler ps(*dw4, c, DType::F32, ctx);
    s::PathTrainOptions oo = o;
    oo.cuda_graph = graph;
    s::train_path_sampler(ps, oo, ctx, [](const s::PathTrainLog&) {});
    return params_of(ps, ctx);
  };
  CHECK(run(true) == run(false));
}

NSAMP_DEVICE_TEST("step graph: drawing paths with the chunks replayed as a graph gives the same samples") {
  auto t = targets::make_target("gmm9");
  s::PathConfig c;
  c.method = s::PathMethod::Dis;
  c.steps = 3;
  c.channels = 8;
  c.layers = 1;
  Context ctx(dev, 1);
  s::PathSampler ps(*t, c, DType::F32, ctx);
  std::uint64_t seed = 50;
  for (ag::Var& p : ps.parameters())
    p.mutable_value() = test::randn(p.value().shape(), DType::F32, dev, ctx, ++seed, 0.3);
  const std::int64_t n = 3 * 8192 + 77;  // three full chunks (one eager, two replays) and a short one
  const s::PathSamples g = s::draw_paths(ps, n, 5, ctx, true), e = s::draw_paths(ps, n, 5, ctx, false);
  CHECK(g.x == e.x);
  CHECK(g.log_w == e.log_w);
  CHECK(g.x.size() == std::size_t(n * 2));
}

NSAMP_DEVICE_TEST("step graph: IW-SM training replayed as a graph equals the uncaptured run") {
  // The buffer grows each epoch and its ring wraps (recaptures), the plateau lowers the learning rate (read
  // on the device), the log's running sums stay on the device.
  auto t = targets::make_target("gmm40");
  s::IdemConfig kc;
  kc.importance_weighted = true;
  kc.K = 8;
  kc.hidden = 16;
  kc.emb = 8;
  s::IdemTrainOptions o;
  o.epochs = 5;
  o.inner_steps = 4;
  o.batch = 16;
  o.buffer_min = 16;
  o.buffer_capacity = 40;
  o.init_samples = 32;
  o.samples_per_epoch = 16;
  o.sde_steps = 5;
  o.eval_every = 2;
  o.eval_samples = 16;
  o.plateau = true;
  o.lr_patience = 0;
  o.clip_grad = 1.0;
  auto run = [&](bool graph, std::vector<double>* logged) {
    Context ctx(dev, 3);
    s::IdemSampler sp(*t, kc, DType::F32, ctx);
    s::IdemTrainOptions oo = o;
    oo.cuda_graph = graph;
    s::train_idem(sp, oo, ctx, [&](const s::IdemTrainLog& l) {
      logged->push_back(l.loss);
      logged->push_back(l.ess);
      logged->push_back(l.lr);
    });
    std::vector<double> out;
    for (const ag::Var& p : sp.parameters()) {
      const std::vector<double> v = test::to_doubles(p.value(), ctx);
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  };
  std::vector<double> l_graph, l_eager;
  const std::vector<double> p_graph = run(true, &l_graph), p_eager = run(false, &l_eager);
  CHECK(l_graph == l_eager);
  CHECK(p_graph == p_eager);
  CHECK(l_graph.size() == 15);
}

NSAMP_DEVICE_TEST("step graph: DiKL training replayed as a graph equals the uncaptured run") {
  // A dense target (fused MALA, adaptive stage-B step changed on the device) and a particle system (EGNN
  // networks, the unfused MALA sequence, mean-free projections), with clipping, several DSM steps each.
  for (const char* name : {"gmm40", "dw4"}) {
    CAPTURE(name);
    auto t = targets::make_target(name);
    s::DiklConfig kc;
    kc.gen_width = kc.score_width = 16;
    kc.gen_layers = kc.score_layers = 2;
    kc.posterior.n_is = 3;
    kc.posterior.ais_levels = 4;
    kc.posterior.mala_steps = 3;
    kc.posterior.averaged = 2;
    kc.posterior.adaptive = true;
    kc.posterior.mala_step = 0.5;  // high enough that the first estimates lower it
    s::DiklTrainOptions o;
    o.iterations = 7;
    o.batch = 12;
    o.score_iter = 3;
    o.clip_grad = 0.5;
    o.log_every = 2;
    o.eval_every = 7;
    o.eval_samples = 16;
    auto run = [&](bool graph, std::vector<double>* logged) {
      Context ctx(dev, 4);
      s::DiklSampler sp(*t, kc, DType::F32, ctx);
      s::DiklTrainOptions oo = o;
      oo.cuda_graph = graph;
      s::train_dikl(sp, oo, ctx, [&](const s::DiklTrainLog& l) {
        logged->insert(logged->end(), {l.generator_loss, l.dsm_loss, l.acceptance, l.mala_step,
                                       double(l.skipped), double(l.score_skipped)});
      });
      std::vector<double> out;
      for (const ag::Var& p : sp.parameters()) {
        const std::vector<double> v = test::to_doubles(p.value(), ctx);
        out.insert(out.end(), v.begin(), v.end());
      }
      out.push_back(double(ctx.rng_offset()));
      return out;
    };
    std::vector<double> l_graph, l_eager;
    const std::vector<double> p_graph = run(true, &l_graph), p_eager = run(false, &l_eager);
    CHECK(l_graph == l_eager);
    CHECK(p_graph == p_eager);
    REQUIRE(l_graph.size() == 4 * 6);
    std::set<double> steps;
    for (std::size_t i = 3; i < l_graph.size(); i += 6) steps.insert(l_graph[i]);
    CHECK(steps.size() > 1);  // the adaptive step changed inside the replayed iterations
  }
}

NSAMP_DEVICE_TEST("drawing step: runs draw what the same fills in sequence draw - graphed or not") {
  // A body of two fills (Context::draw_rng) and a kernel: graphed and eager runs, and the plain sequence of
  // the same fills on a context with the same seed, give the same numbers; the host offset advances by the
  // body's counters per run; a body whose draws change size is refused.
  const std::int64_t n = 37;
  auto run = [&](int mode) {  // 0: plain fills, 1: eager DrawingStep, 2: graphed
    Context ctx(dev, 8);
    Tensor a = Tensor::empty(Shape{n}, DType::F32, ctx), b = Tensor::empty(Shape{n, 3}, DType::F64, ctx),
           sum = Tensor::zeros(Shape{n}, DType::F32, ctx);
    std::vector<double> out;
    auto body = [&] {
      fill_normal(a, ctx);
      fill_uniform(b, ctx);
      kernels::add(sum, a, sum, ctx);
    };
    DrawingStep step(ctx, body, mode == 2);
    for (int k = 0; k < 4; ++k) {
      if (mode == 0)
        body();
      else
        step.run();
      for (const Tensor* t : {&a, &b}) {
        const std::vector<double> v = test::to_doubles(*t, ctx);
        out.insert(out.end(), v.begin(), v.end());
      }
    }
    const std::vector<double> v = test::to_doubles(sum, ctx);
    out.insert(out.end(), v.begin(), v.end());
    out.push_back(double(ctx.rng_offset()));
    if (mode != 0) CHECK(step.counters() == rng_counters(n, DType::F32) + rng_counters(3 * n, DType::F64));
    return out;
  };
  const std::vector<double> plain = run(0);
  CHECK(run(1) == plain);
  CHECK(run(2) == plain);
  Context ctx(dev, 8);
  std::int64_t m = 4;
  Tensor x = Tensor::empty(Shape{8}, DType::F32, ctx);
  DrawingStep step(
      ctx,
      [&] {
        Tensor y = x.slice_rows(0, m);
        fill_normal(y, ctx);
      },
      false);
  step.run();
  m = 8;
  CHECK_THROWS_WITH_AS(step.run(), doctest::Contains("a step must draw the same every run"), Error);
}

NSAMP_DEVICE_TEST("step graph: the reverse SDE replayed as a graph equals the eager runs") {
  // Four final-sample draws in a row, graphed and eager, on a dense target (residual MLP) and a particle
  // system (EGNN, mean-free noise, final gradient steps after the graph); an earlier result is not
  // overwritten by a later replay.
  for (const char* name : {"gmm40", "dw4"}) {
    CAPTURE(name);
    auto t = targets::make_target(name);
    s::IdemConfig c;
    c.hidden = 16;
    c.emb = 8;
    c.egnn_layers = 2;
    if (std::string(name) == "dw4") {
      c.coord_scale = 1.0;
      c.coord_shift = 0.0;
      c.final_grad_steps = 2;
    }
    auto run = [&](bool graph) {
      Context ctx(dev, 6);
      const s::IdemSampler sp(*t, c, DType::F32, ctx);
      std::vector<Tensor> ys;
      for (int k = 0; k < 4; ++k) ys.push_back(sp.final_samples(24, 7, ctx, graph));
      std::vector<double> out;
      for (const Tensor& y : ys) {
        const std::vector<double> v = test::to_doubles(y, ctx);
        out.insert(out.end(), v.begin(), v.end());
      }
      CHECK(test::to_doubles(ys[1], ctx) != test::to_doubles(ys[2], ctx));
      out.push_back(double(ctx.rng_offset()));
      return out;
    };
    CHECK(run(true) == run(false));
  }
}
