// Training states: StateDict files round-trip exactly and reject damaged files; each training loop stopped
// part-way, saved and resumed in a fresh sampler and context ends with the parameters of the uninterrupted
// run, bit for bit (CPU, same thread count).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>

#include "nsamp/autograd/optim.h"
#include "nsamp/autograd/state_dict.h"
#include "nsamp/samplers/dikl_training.h"
#include "nsamp/samplers/idem_training.h"
#include "nsamp/samplers/path_training.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

namespace {

// Runs `train` uninterrupted, then stopped after `stop_at` units (the state kept in memory), then resumed
// by a fresh sampler in a fresh context; both must end with the same parameters.
template <class Make, class Train>
void check_resume(std::int64_t stop_at, const Make& make, const Train& train) {
  std::vector<double> full;
  {
    Context ctx(Device::cpu(), 3);
    auto sampler = make(ctx);
    train(*sampler, ctx, nullptr);
    full = test::flat_values(sampler->parameters(), ctx);
  }
  ag::StateDict saved;
  std::int64_t saved_at = -1;
  {
    Context ctx(Device::cpu(), 3);
    auto sampler = make(ctx);
    s::TrainControl c;
    std::int64_t units = 0;
    c.stop_requested = [&] { return ++units >= stop_at; };
    c.save = [&](ag::StateDict& st, std::int64_t done) {
      saved = st;
      saved_at = done;
    };
    train(*sampler, ctx, &c);
    CHECK(c.stopped);
    CHECK(test::flat_values(sampler->parameters(), ctx) != full);
  }
  REQUIRE(saved_at >= 0);
  // Through a file, as nsamp train --resume reads it.
  const std::string path = test::scratch_path("train_state.safetensors");
  saved.save(path);
  Context host(Device::cpu());
  const ag::StateDict loaded = ag::StateDict::load(path, host);
  std::remove(path.c_str());
  Context ctx(Device::cpu(), 99);  // another seed and offset: the state must restore both
  auto sampler = make(ctx);
  s::TrainControl c;
  c.resume = &loaded;
  train(*sampler, ctx, &c);
  CHECK_FALSE(c.stopped);
  const std::vector<double> resumed = test::flat_values(sampler->parameters(), ctx);
  REQUIRE(resumed.size() == full.size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < full.size(); ++i) differ += resumed[i] != full[i];
  CHECK_MESSAGE(differ == 0, differ, " of ", full.size(), " parameters differ after resuming at ", saved_at);
}

}  // namespace

TEST_CASE("state dict: tensors and numbers round-trip exactly - damaged files are rejected" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu());
  ag::StateDict st;
  const Tensor a = test::randn(Shape{3, 4}, DType::F32, Device::cpu(), ctx, 1);
  const Tensor b = test::randn(Shape{5}, DType::F64, Device::cpu(), ctx, 2);
  const Tensor i = Tensor::from_vector(std::vector<std::int32_t>{1, -2, 3}, Shape{3}, Device::cpu(), ctx);
  st.put("a", a, ctx);
  st.put("state/b", b, ctx);
  st.put("state/i", i, ctx);
  st.put("empty", Tensor::empty(Shape{0, 4}, DType::F32, Device::cpu(), ctx), ctx);
  const double third = 1.0 / 3.0, tiny = 4.9e-324, inf = std::numeric_limits<double>::infinity();
  st.set_double("third", third);
  st.set_double("tiny", tiny);
  st.set_double("inf", inf);
  st.set_int("neg", -1234567890123ll);
  st.set_u64("big", 18446744073709551615ull);
  st.set("text", "idem");
  const std::string path = test::scratch_path("state_dict.safetensors");
  st.save(path);
  const ag::StateDict r = ag::StateDict::load(path, ctx);
  std::vector<std::string> names = r.names();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a", "empty", "state/b", "state/i"});
  CHECK(r.at("a").to_doubles(ctx) == a.to_doubles(ctx));
  CHECK(r.at("state/b").to_doubles(ctx) == b.to_doubles(ctx));
  CHECK(r.at("state/i").to_doubles(ctx) == i.to_doubles(ctx));
  CHECK(r.at("empty").shape() == Shape{0, 4});
  CHECK(r.get_double("third") == third);
  CHECK(r.get_double("tiny") == tiny);
  CHECK(r.get_double("inf") == inf);
  CHECK(r.get_int("neg") == -1234567890123ll);
  CHECK(r.get_u64("big") == 18446744073709551615ull);
  CHECK(r.get("text") == "idem");
  CHECK_THROWS_WITH_AS(r.at("nothing"), doctest::Contains("holds no tensor 'nothing'"), Error);
  CHECK_THROWS_WITH_AS(r.get_int("text"), doctest::Contains("'text' = 'idem' is not an integer"), Error);
  Tensor wrong = Tensor::empty(Shape{4, 3}, DType::F32, Device::cpu(), ctx);
  CHECK_THROWS_WITH_AS(r.copy_to("a", wrong, ctx), doctest::Contains("'a' is"), Error);

  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  auto write = [&](const std::string& b2) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << b2;
  };
  write(bytes.substr(0, bytes.size() - 4));  // cut short
  CHECK_THROWS_WITH_AS(ag::StateDict::load(path, ctx), doctest::Contains("a truncated or damaged file"),
                       Error);
  write(bytes + "junk");
  CHECK_THROWS_WITH_AS(ag::StateDict::load(path, ctx), doctest::Contains("a truncated or damaged file"),
                       Error);
  write(bytes.substr(0, 20));
  CHECK_THROWS_WITH_AS(ag::StateDict::load(path, ctx), doctest::Contains("exceeds the file"), Error);
  std::remove(path.c_str());
}

TEST_CASE("state dict: an Adam restored from its state takes the same next step" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 1);
  ag::Var w = ag::Var::leaf(test::randn(Shape{4, 3}, DType::F64, Device::cpu(), ctx, 1), true, "w");
  ag::AdamOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.01;
  ag::Adam adam({w}, o, ctx);
  auto step = [&](ag::Adam& opt, std::uint64_t seed) {
    w.set_grad(test::randn(Shape{4, 3}, DType::F64, Device::cpu(), ctx, seed));
    opt.step(1.0);
  };
  step(adam, 10);
  step(adam, 11);
  adam.set_lr(0.05);
  ag::StateDict st;
  adam.save_state(st, "adam/");
  const Tensor w2 = w.value().clone(ctx);
  step(adam, 12);
  const std::vector<double> want = w.value().to_doubles(ctx);

  copy(w2, w.mutable_value(), ctx);
  ag::Adam fresh({w}, ag::AdamOptions{}, ctx);
  fresh.load_state(st, "adam/");
  CHECK(fresh.steps() == 2);
  CHECK(fresh.lr() == 0.05);
  // weight decay and betas are options, not state: the fresh optimiser needs the same ones
  ag::Adam same({w}, o, ctx);
  same.load_state(st, "adam/");
  step(same, 12);
  CHECK(w.value().to_doubles(ctx) == want);

  ag::Var other = ag::Var::leaf(test::randn(Shape{3, 3}, DType::F64, Device::cpu(), ctx, 1), true, "w");
  ag::Adam mismatched({other}, o, ctx);
  CHECK_THROWS_WITH_AS(mismatched.load_state(st, "adam/"), doctest::Contains("Adam moment 'adam/m.0'"),
                       Error);
}

TEST_CASE("resume: a path sampler (lv with EMA and StepLR) continues bit for bit" *
          doctest::test_suite("cpu")) {
  auto t = targets::make_target("gmm9");
  s::PathConfig pc;
  pc.method = s::PathMethod::Dis;
  pc.steps = 6;
  pc.channels = 16;
  s::PathTrainOptions o;
  o.iterations = 9;
  o.batch = 16;
  o.eval_every = 4;
  o.eval_paths = 32;
  o.lr_step_every = 3;
  o.lr_gamma = 0.5;
  o.ema_decay = 0.9;
  o.ema_start = 3;
  o.ema_every = 2;  // the shadow starts at step 2, then updates at 4, 6, 8
  o.seed = 5;
  for (std::int64_t stop : {1, 4, 7}) {
    CAPTURE(stop);
    check_resume(
        stop, [&](Context& ctx) { return std::make_unique<s::PathSampler>(*t, pc, DType::F32, ctx); },
        [&](s::PathSampler& ps, Context& ctx, s::TrainControl* c) {
          s::train_path_sampler(
              ps, o, ctx, [](const s::PathTrainLog&) {}, c);
        });
  }
}

namespace {
std::vector<double> trained_path_params(const s::PathTrainOptions& o, std::vector<double>* lrs = nullptr) {
  auto t = targets::make_target("gmm9");
  s::PathConfig pc;
  pc.method = s::PathMethod::Pis;
  pc.steps = 5;
  pc.channels = 8;
  Context ctx;
  s::PathSampler ps(*t, pc, DType::F64, ctx);
  s::train_path_sampler(ps, o, ctx, [&](const s::PathTrainLog& l) {
    if (lrs) lrs->push_back(l.lr);
  });
  std::vector<double> all;
  for (const ag::Var& p : ps.parameters()) {
    const std::vector<double> v = p.value().to_doubles(ctx);
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}
s::PathTrainOptions small_path_run(std::int64_t iterations) {
  s::PathTrainOptions o;
  o.iterations = iterations;
  o.batch = 8;
  o.log_every = 1;
  o.eval_every = 1000;
  o.eval_paths = 8;
  o.lr = 1e-2;
  o.seed = 3;
  return o;
}
}  // namespace

TEST_CASE("path training: StepLR decays once per lr_step_every steps" * doctest::test_suite("cpu")) {
  s::PathTrainOptions o = small_path_run(7);
  o.lr_step_every = 3;
  o.lr_gamma = 0.5;
  std::vector<double> lrs;
  trained_path_params(o, &lrs);
  // the lr logged after step n is the one step n + 1 uses: 1e-2 * 0.5^floor(n / 3)
  test::check_close(lrs, {1e-2, 1e-2, 5e-3, 5e-3, 5e-3, 2.5e-3, 2.5e-3}, 1e-15, 0, "lr after each step");
}

TEST_CASE("path training: the EMA averages the steps after ema_start with a warming decay" *
          doctest::test_suite("cpu")) {
  // Steps are reproducible (the noise of step k depends on k alone), so the live parameters after steps 5
  // and 6 come from two runs without EMA; with ema_start 4 and every step acting, the shadow is P5 at step 5
  // (decay 0) and d P5 + (1 - d) P6 at step 6, d = 1 - 2^-0.9.
  const std::vector<double> p5 = trained_path_params(small_path_run(5)),
                            p6 = trained_path_params(small_path_run(6));
  s::PathTrainOptions o = small_path_run(6);
  o.ema_decay = 0.9999;
  o.ema_start = 4;
  o.ema_every = 1;
  o.ema_power = 0.9;
  const std::vector<double> got = trained_path_params(o);
  const double d = 1.0 - std::pow(2.0, -0.9);
  std::vector<double> want(p5.size());
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = d * p5[i] + (1 - d) * p6[i];
  REQUIRE(got.size() == want.size());
  test::check_close(got, want, 1e-14, 1e-15, "EMA after 6 steps");
  double moved = 0;
  for (std::size_t i = 0; i < want.size(); ++i) moved = std::max(moved, std::abs(p6[i] - p5[i]));
  CHECK(moved > 1e-6);  // the two steps differ, so the check above tells the average from either
}

TEST_CASE("resume: DiKL (adaptive posterior step) continues bit for bit" * doctest::test_suite("cpu")) {
  auto t = targets::make_target("gmm40");
  s::DiklConfig kc;
  kc.gen_width = kc.score_width = 16;
  kc.gen_layers = kc.score_layers = 2;
  kc.posterior.ais_levels = 2;
  kc.posterior.adaptive = true;
  s::DiklTrainOptions o;
  o.iterations = 5;
  o.batch = 16;
  o.score_iter = 2;
  o.eval_every = 3;
  o.eval_samples = 32;
  check_resume(
      3, [&](Context& ctx) { return std::make_unique<s::DiklSampler>(*t, kc, DType::F32, ctx); },
      [&](s::DiklSampler& sp, Context& ctx, s::TrainControl* c) {
        s::train_dikl(
            sp, o, ctx, [](const s::DiklTrainLog&) {}, c);
      });
}

TEST_CASE("resume: IW-SM (buffer and plateau) continues bit for bit from an epoch's end or its middle" *
          doctest::test_suite("cpu")) {
  auto t = targets::make_target("gmm40");
  s::IdemConfig kc;
  kc.importance_weighted = true;
  kc.K = 8;
  kc.hidden = 16;
  kc.emb = 8;
  s::IdemTrainOptions o;
  o.epochs = 4;
  o.inner_steps = 3;
  o.batch = 16;
  o.buffer_min = 16;
  o.buffer_capacity = 40;  // the ring wraps
  o.init_samples = 32;
  o.samples_per_epoch = 16;
  o.sde_steps = 5;
  o.eval_every = 2;
  o.eval_samples = 16;
  o.plateau = true;
  o.lr_patience = 0;
  // The stop is polled after each inner step (but the last of an epoch) and at each epoch's end: 3 per
  // epoch. 2: mid-epoch 1; 3: the end of epoch 1; 8: mid-epoch 3.
  for (std::int64_t stop : {2, 3, 8}) {
    CAPTURE(stop);
    check_resume(
        stop, [&](Context& ctx) { return std::make_unique<s::IdemSampler>(*t, kc, DType::F32, ctx); },
        [&](s::IdemSampler& sp, Context& ctx, s::TrainControl* c) {
          s::train_idem(
              sp, o, ctx, [](const s::IdemTrainLog&) {}, c);
        });
  }
}
