// iDEM / IW-SM building blocks: the VE schedule (g^2 = dh/dt), the replay buffer's FIFO and uniform sampling,
// the buffer density against a float64 loop, and IW-SM's weights tending to 1/N when the buffer holds the
// target's own samples (and not when it does not).
#include <cmath>

#include "nsamp/core/fill.h"
#include "nsamp/kernels/transport.h"
#include "nsamp/samplers/idem.h"
#include "nsamp/samplers/idem_training.h"
#include "nsamp/targets/target.h"
#include "test_util.h"

using namespace nsamp;
namespace s = nsamp::samplers;

TEST_CASE("idem: the VE schedule's g^2 is the derivative of its variance" * doctest::test_suite("cpu")) {
  const s::VeSchedule v(1e-5, 1.0);
  CHECK(v.h(0.0) == 0.0);
  CHECK(v.h(1.0) == doctest::Approx(1.0 - 1e-10).epsilon(1e-12));
  for (double t : {0.05, 0.3, 0.7, 0.95}) {
    const double eps = 1e-6, dh = (v.h(t + eps) - v.h(t - eps)) / (2 * eps);
    CHECK(v.g(t) * v.g(t) == doctest::Approx(dh).epsilon(1e-6));
    CHECK(v.sigma(t) == doctest::Approx(std::sqrt(v.h(t))));
  }
  CHECK_THROWS_WITH_AS(s::VeSchedule(1.0, 0.5), doctest::Contains("sigma_min < sigma_max"), Error);
}

TEST_CASE("idem: the replay buffer keeps the newest rows and samples them uniformly" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 5);
  s::ReplayBuffer buf(10, 2, DType::F64, ctx);
  auto rows = [&](double from, std::int64_t n) {
    std::vector<double> v;
    for (std::int64_t i = 0; i < n; ++i) {
      v.push_back(from + double(i));
      v.push_back(-(from + double(i)));
    }
    return Tensor::from_vector(v, Shape{n, 2}, Device::cpu(), ctx);
  };
  CHECK_THROWS_WITH_AS(buf.sample(3), doctest::Contains("empty"), Error);
  buf.push(rows(0, 4));
  CHECK(buf.size() == 4);
  buf.push(rows(4, 9));  // 13 rows pushed: 0, 1, 2 are gone
  CHECK(buf.size() == 10);
  std::vector<double> kept;
  for (std::int64_t i = 0; i < 10; ++i) kept.push_back(buf.rows().to_doubles(ctx)[std::size_t(2 * i)]);
  std::sort(kept.begin(), kept.end());
  for (int i = 0; i < 10; ++i) CHECK(kept[std::size_t(i)] == double(3 + i));
  buf.push(rows(100, 25));  // more than capacity at once: the newest 10
  std::vector<double> last;
  for (double v : buf.rows().to_doubles(ctx)) last.push_back(v);
  for (std::int64_t i = 0; i < 10; ++i) CHECK(last[std::size_t(2 * i)] >= 115.0);
  // Uniform with replacement: 20000 draws over 10 rows, each count within 5 standard deviations.
  const std::vector<double> d = buf.sample(20000).to_doubles(ctx);
  std::vector<int> count(10, 0);
  for (std::size_t i = 0; i < d.size(); i += 2) count[std::size_t(d[i] - 115.0)]++;
  for (int c : count) CHECK(std::abs(c - 2000) < 5 * std::sqrt(2000 * 0.9));
  CHECK_THROWS_WITH_AS(buf.push(rows(0, 2).reshape(Shape{1, 4})), doctest::Contains("rows must be"), Error);
}

NSAMP_DEVICE_TEST("idem: the fused log-sum-exp over the buffer matches a float64 loop") {
  Context ctx(dev);
  const std::int64_t N = 67, M = 301, d = 3;
  const Tensor x = test::randn(Shape{N, d}, DType::F64, dev, ctx, 1, 2.0);
  const Tensor y = test::randn(Shape{M, d}, DType::F64, dev, ctx, 2, 2.0);
  std::vector<double> scale(N);
  for (std::int64_t i = 0; i < N; ++i) scale[std::size_t(i)] = i % 3 == 0 ? 400.0 : 0.05 * double(i + 1);
  const std::vector<double> xv = test::to_doubles(x, ctx), yv = test::to_doubles(y, ctx);
  for (DType dt : {DType::F64, DType::F32}) {
    CAPTURE(dtype_name(dt));
    std::vector<double> ref(N);
    for (std::int64_t i = 0; i < N; ++i) {
      std::vector<double> l(M);
      double m = -INFINITY;
      for (std::int64_t j = 0; j < M; ++j) {
        double r2 = 0;
        for (std::int64_t k = 0; k < d; ++k)
          r2 += std::pow(xv[std::size_t(i * d + k)] - yv[std::size_t(j * d + k)], 2);
        m = std::max(m, l[std::size_t(j)] = -scale[std::size_t(i)] * r2);
      }
      double sum = 0;
      for (double v : l) sum += std::exp(v - m);
      ref[std::size_t(i)] = m + std::log(sum);
    }
    Tensor out = Tensor::empty(Shape{N}, dt, ctx);
    kernels::log_kernel_sum(test::from_doubles(xv, Shape{N, d}, dt, dev, ctx),
                            test::from_doubles(yv, Shape{M, d}, dt, dev, ctx),
                            test::from_doubles(scale, Shape{N}, dt, dev, ctx), out, ctx);
    const double tol = dt == DType::F64 ? 1e-12 : 1e-4;
    test::check_close(test::to_doubles(out, ctx), ref, tol, tol, "log kernel sum");
  }
  Tensor out = Tensor::empty(Shape{N}, DType::F64, ctx);
  kernels::log_kernel_sum(x, Tensor::empty(Shape{0, d}, DType::F64, ctx),
                          test::from_doubles(scale, Shape{N}, DType::F64, dev, ctx), out, ctx);
  CHECK(test::to_doubles(out, ctx)[0] == -INFINITY);
  CHECK_THROWS_WITH_AS(
      kernels::log_kernel_sum(x, Tensor::empty(Shape{M, 2}, DType::F64, ctx),
                              test::from_doubles(scale, Shape{N}, DType::F64, dev, ctx), out, ctx),
      doctest::Contains("must share d"), Error);
}

TEST_CASE("idem: IW-SM's weights are about 1/N when the buffer holds the target's samples" *
          doctest::test_suite("cpu")) {
  // Target N(0, I_2); points x = x0 + sigma z with x0 from the target. log p~ estimates log(Z p_sigma(x)) and
  // log p^B log p_sigma(x) (a KDE of exact samples), so the weights are nearly equal. A buffer shifted by
  // (1.5, 0) makes them unequal.
  Context ctx(Device::cpu(), 11);
  auto g = targets::make_target("gaussian", {2});
  const std::int64_t N = 256, M = 20000, K = 4000;
  const double sigma = 0.5;
  Tensor buffer = Tensor::empty(Shape{M, 2}, DType::F64, ctx),
         x = Tensor::empty(Shape{N, 2}, DType::F64, ctx);
  g->sample(buffer, ctx);
  g->sample(x, ctx);
  Tensor z = Tensor::empty(Shape{N, 2}, DType::F64, ctx);
  fill_normal(z, ctx, 0.0, sigma);
  std::vector<double> xv = x.to_doubles(ctx);
  const std::vector<double> zv = z.to_doubles(ctx);
  for (std::size_t i = 0; i < xv.size(); ++i) xv[i] += zv[i];
  const Tensor X = Tensor::from_vector(xv, Shape{N, 2}, Device::cpu(), ctx);
  Tensor score = Tensor::empty(Shape{N, 2}, DType::F64, ctx), lp = Tensor::empty(Shape{N}, DType::F64, ctx);
  g->mc_score(X, Tensor::from_vector(std::vector<double>(N, sigma), Shape{N}, Device::cpu(), ctx), K, 0.0,
              score, &lp, ctx);
  const std::vector<double> sig(N, sigma);
  const s::ImportanceWeights same =
      s::iw_weights(lp.to_doubles(ctx), s::buffer_log_density(X, buffer, sig, 2.0, ctx).to_doubles(ctx));
  std::vector<double> shifted = buffer.to_doubles(ctx);
  for (std::size_t i = 0; i < shifted.size(); i += 2) shifted[i] += 1.5;
  const s::ImportanceWeights off = s::iw_weights(
      lp.to_doubles(ctx),
      s::buffer_log_density(X, Tensor::from_vector(shifted, Shape{M, 2}, Device::cpu(), ctx), sig, 2.0, ctx)
          .to_doubles(ctx));
  MESSAGE("normalised ESS: buffer from the target " << same.ess << ", shifted buffer " << off.ess);
  CHECK(same.ess > 0.95);
  CHECK(off.ess < 0.7);
  double total = 0;
  for (double w : same.w) total += w;
  CHECK(total == doctest::Approx(1.0));
  CHECK(same.dropped == 0);
  const s::ImportanceWeights one_bad = s::iw_weights({0.0, NAN, 1.0}, {0.0, 0.0, 0.0});
  CHECK(one_bad.dropped == 1);
  CHECK(one_bad.w[1] == 0.0);
  CHECK_THROWS_WITH_AS(s::iw_weights({NAN}, {0.0}), doctest::Contains("no finite"), Error);
  // The defensive mixture: (1 - m) softmax + m / N, the dropped row included; its ESS is the mixed weights'.
  const s::ImportanceWeights mixed = s::iw_weights({0.0, NAN, 1.0}, {0.0, 0.0, 0.0}, 0, 0.25);
  const double e = std::exp(1.0);
  CHECK(mixed.w[0] == doctest::Approx(0.75 / (1 + e) + 0.25 / 3).epsilon(1e-14));
  CHECK(mixed.w[1] == doctest::Approx(0.25 / 3).epsilon(1e-14));
  CHECK(mixed.w[2] == doctest::Approx(0.75 * e / (1 + e) + 0.25 / 3).epsilon(1e-14));
  double s2 = 0;
  for (double wi : mixed.w) s2 += wi * wi;
  CHECK(mixed.ess == doctest::Approx(1 / (3 * s2)).epsilon(1e-14));
}

TEST_CASE("idem: IW-SM's weights over one batch of mixed noise levels starve low noise - time groups do not" *
          doctest::test_suite("cpu")) {
  // Target N(0, I_2), a buffer of its exact samples, and as in training the batch's points x0 + sigma z with
  // x0 from the buffer itself: 8 noise levels of the VE schedule 1e-5 .. 1 (t = (g + 0.5) / 8), point i at
  // level i mod 8. At small sigma the buffer density is a spike at the point's own row, log p^B ~ -log M -
  // log(2 pi sigma^2), while log p~ stays near log p(x0): at t = 1/16 the log-weight is about 15 below the
  // top level's, at t = 7/16 about 6. One softmax over the batch leaves the lower four levels under 1% of the
  // weight (measured 0.0067) where their share is a half; normalised within each level (iw_time_groups 8)
  // each keeps its eighth. The ESS falls (0.37 to 0.13): within a low level the weights still spread, as
  // exp(|z|^2 / 2) p(x0).
  Context ctx(Device::cpu(), 12);
  auto g = targets::make_target("gaussian", {2});
  const std::int64_t G = 8, N = 256, M = 2000, K = 500;
  Tensor buffer = Tensor::empty(Shape{M, 2}, DType::F64, ctx);
  g->sample(buffer, ctx);
  const std::vector<double> bv = buffer.to_doubles(ctx);
  const s::VeSchedule sch(1e-5, 1.0);
  std::vector<double> sig(static_cast<std::size_t>(N)), xv(static_cast<std::size_t>(2 * N));
  Tensor z = Tensor::empty(Shape{N, 2}, DType::F64, ctx);
  fill_normal(z, ctx);
  const std::vector<double> zv = z.to_doubles(ctx);
  for (std::int64_t i = 0; i < N; ++i) {
    sig[std::size_t(i)] = sch.sigma((double(i % G) + 0.5) / double(G));
    const std::size_t row = std::size_t((i * 7919) % M);  // distinct buffer rows
    for (std::size_t k = 0; k < 2; ++k)
      xv[std::size_t(2 * i) + k] = bv[2 * row + k] + sig[std::size_t(i)] * zv[std::size_t(2 * i) + k];
  }
  const Tensor X = Tensor::from_vector(xv, Shape{N, 2}, Device::cpu(), ctx);
  Tensor score = Tensor::empty(Shape{N, 2}, DType::F64, ctx), lp = Tensor::empty(Shape{N}, DType::F64, ctx);
  g->mc_score(X, Tensor::from_vector(sig, Shape{N}, Device::cpu(), ctx), K, 0.0, score, &lp, ctx);
  const std::vector<double> lb = s::buffer_log_density(X, buffer, sig, 2.0, ctx).to_doubles(ctx);
  const std::vector<double> lpv = lp.to_doubles(ctx);
  auto low_share = [&](const s::ImportanceWeights& w) {
    double low = 0;
    for (std::int64_t i = 0; i < N; ++i)
      if (i % G < G / 2) low += w.w[std::size_t(i)];
    return low;
  };
  const s::ImportanceWeights batch = s::iw_weights(lpv, lb), grouped = s::iw_weights(lpv, lb, G);
  MESSAGE("weight of the four lowest of 8 noise levels: one softmax "
          << low_share(batch) << " (ESS " << batch.ess << "), per level " << low_share(grouped) << " (ESS "
          << grouped.ess << ")");
  CHECK(low_share(batch) < 0.02);
  CHECK(low_share(grouped) == doctest::Approx(0.5).epsilon(1e-12));  // what the grouping promises
  for (std::int64_t l = 0; l < G; ++l) {
    double share = 0;
    for (std::int64_t i = l; i < N; i += G) share += grouped.w[std::size_t(i)];
    CHECK(share == doctest::Approx(1.0 / double(G)).epsilon(1e-12));
  }
}

TEST_CASE("idem: iw_time_groups and iw_uniform_mix change IW-SM's training and leave iDEM's bit for bit" *
          doctest::test_suite("cpu")) {
  auto gmm = targets::make_target("gmm40");
  auto trained = [&](bool iw, std::int64_t groups, double mix) {
    Context ctx(Device::cpu(), 5);
    s::IdemConfig c;
    c.importance_weighted = iw;
    c.K = 16;
    c.hidden = 16;
    c.emb = 16;
    c.blocks = 1;
    c.coord_scale = 50.000005;
    c.coord_shift = 0.000005;
    s::IdemSampler sm(*gmm, c, DType::F32, ctx);
    s::IdemTrainOptions o;
    o.epochs = 1;
    o.inner_steps = 4;
    o.batch = 16;
    o.buffer_min = 16;
    o.init_samples = 32;
    o.samples_per_epoch = 16;
    o.sde_steps = 5;
    o.eval_every = 1;
    o.eval_samples = 16;
    o.iw_time_groups = groups;
    o.iw_uniform_mix = mix;
    double ess = -1;
    s::train_idem(sm, o, ctx, [&](const s::IdemTrainLog& l) { ess = l.ess; });
    std::vector<double> p;
    for (const ag::Var& v : sm.parameters())
      for (double x : v.value().to_doubles(ctx)) p.push_back(x);
    p.push_back(ess);
    return p;
  };
  const std::vector<double> idem = trained(false, 0, 0);
  CHECK(idem == trained(false, 8, 0.5));
  const std::vector<double> iw0 = trained(true, 0, 0), iw8 = trained(true, 8, 0),
                            iw_mix = trained(true, 0, 0.5);
  CHECK(iw0 != iw8);
  CHECK(iw8.back() > 0);
  CHECK(iw8.back() <= 1);
  CHECK(iw_mix != iw0);
  CHECK(iw_mix != idem);
  CHECK(iw_mix.back() > iw0.back());  // the mixture's weights are more even
  // A mixture of share 1 is iDEM's loss exactly (the same draws, w = 1 / B bit for bit), time per point
  // included; only the logged ESS may round differently from 1.
  std::vector<double> iw_all = trained(true, 0, 1.0);
  CHECK(iw_all.back() == doctest::Approx(1.0).epsilon(1e-12));
  iw_all.back() = idem.back();
  CHECK(iw_all == idem);
}

TEST_CASE("idem: the reverse VE SDE driven by S_K samples a Gaussian target" * doctest::test_suite("cpu")) {
  // Target N(0, I_2) in its own units (coord_scale 1), prior N(0, h(1) I) with sigma_max 5: the SDE driven by
  // the Monte Carlo score ends at the target. Measured variances: 1.003 and 1.006 with K = 500 and 100 steps;
  // 0.92 with K = 100 (the self-normalised estimate's bias), 1.00 with K = 1000 and 400 steps.
  Context ctx(Device::cpu(), 21);
  auto g = targets::make_target("gaussian", {2});
  s::IdemConfig c;
  c.sigma_min = 1e-3;
  c.sigma_max = 5.0;
  c.K = 500;
  c.clip = 0;
  c.coord_scale = 1.0;
  c.coord_shift = 0.0;
  const s::IdemSampler sampler(*g, c, DType::F64, ctx);
  const std::int64_t N = 2000;
  const std::vector<double> y = sampler.reverse_sde(N, 100, true, ctx).to_doubles(ctx);
  for (int k = 0; k < 2; ++k) {
    double m = 0, v = 0;
    for (std::int64_t i = 0; i < N; ++i) m += y[std::size_t(2 * i + k)] / double(N);
    for (std::int64_t i = 0; i < N; ++i) v += std::pow(y[std::size_t(2 * i + k)] - m, 2) / double(N - 1);
    MESSAGE("coordinate " << k << ": mean " << m << ", variance " << v);
    CHECK(std::abs(m) < 5.0 / std::sqrt(double(N)));
    CHECK(std::abs(v - 1.0) < 0.05);
  }
}

namespace {

// Largest |sum over particles| of any spatial axis of any row, relative to the rows' largest entry.
double centre_of_mass_error(const std::vector<double>& x, int n, int D) {
  double worst = 0, scale = 1e-300;
  for (double v : x) scale = std::max(scale, std::abs(v));
  for (std::size_t r = 0; r < x.size() / std::size_t(n * D); ++r)
    for (int a = 0; a < D; ++a) {
      double s = 0;
      for (int i = 0; i < n; ++i) s += x[r * std::size_t(n * D) + std::size_t(i * D + a)];
      worst = std::max(worst, std::abs(s));
    }
  return worst / scale;
}

s::IdemConfig particle_config() {
  s::IdemConfig c;
  c.sigma_min = 1e-5;
  c.sigma_max = 3.0;
  c.K = 16;
  c.clip = 20;
  c.coord_scale = 1.0;
  c.coord_shift = 0.0;
  c.lambda_h = false;
  c.hidden = 16;
  c.egnn_layers = 2;
  return c;
}

}  // namespace

TEST_CASE("idem: particle systems live in the mean-free subspace and train an EGNN" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 31);
  auto dw4 = targets::make_target("dw4");
  s::IdemSampler sampler(*dw4, particle_config(), DType::F64, ctx);
  CHECK(sampler.mean_free().dof(8) == 6);
  // The prior: N(0, h(1) I) on the 6 mean-free directions.
  const std::vector<double> y0 = sampler.prior(4000, ctx).to_doubles(ctx);
  CHECK(centre_of_mass_error(y0, 4, 2) < 1e-13);
  double s2 = 0;
  for (double v : y0) s2 += v * v;
  const double h1 = sampler.schedule().h(1.0);
  CHECK(s2 / 4000 == doctest::Approx(6 * h1).epsilon(0.03));  // std of the estimate ~ sqrt(2 / 24000) = 0.9%
  // S_K and the SDE's samples are mean-free too.
  const Tensor pts = sampler.prior(32, ctx);
  const std::vector<double> sk = sampler.mc_score(pts, std::vector<double>(32, 0.5), ctx).to_doubles(ctx);
  CHECK(centre_of_mass_error(sk, 4, 2) < 1e-13);
  const std::vector<double> x = sampler.reverse_sde(64, 10, false, ctx).to_doubles(ctx);
  CHECK(centre_of_mass_error(x, 4, 2) < 1e-12);
  for (double v : x) REQUIRE(std::isfinite(v));
  // Two epochs of IW-SM move the network; the weights use d_eff = 6.
  s::IdemConfig c = particle_config();
  c.importance_weighted = true;
  s::IdemSampler iw(*dw4, c, DType::F64, ctx);
  std::vector<double> p0;
  for (const ag::Var& p : iw.parameters())
    for (double v : p.value().to_doubles(ctx)) p0.push_back(v);
  s::IdemTrainOptions o;
  o.epochs = 2;
  o.inner_steps = 3;
  o.batch = 16;
  o.buffer_min = 16;
  o.init_samples = 32;
  o.samples_per_epoch = 16;
  o.sde_steps = 10;
  o.eval_every = 2;
  o.eval_samples = 64;
  o.init_from_prior = true;
  o.plateau = true;
  std::vector<s::IdemTrainLog> logs;
  s::train_idem(iw, o, ctx, [&](const s::IdemTrainLog& l) { logs.push_back(l); });
  REQUIRE(logs.size() == 2);
  CHECK(logs[1].buffer_size == 32 + 2 * 16);
  CHECK(std::isfinite(logs[1].loss));
  CHECK(logs[1].ess > 0);
  CHECK(logs[1].ess <= 1);
  CHECK(logs[1].lr == doctest::Approx(5e-4));
  REQUIRE(logs[1].eval);
  CHECK(std::isfinite(logs[1].eval->mean_log_p));
  std::vector<double> p1;
  for (const ag::Var& p : iw.parameters())
    for (double v : p.value().to_doubles(ctx)) p1.push_back(v);
  CHECK(p1 != p0);
}

TEST_CASE("idem: LJ's final gradient steps lower the energy of the final samples - not of the refills" *
          doctest::test_suite("cpu")) {
  auto lj = targets::make_target("lj13");
  s::IdemConfig c = particle_config();
  c.sigma_min = 0.01;
  c.sigma_max = 2.0;
  std::vector<double> mean_e;
  std::vector<std::vector<double>> refills, trained;
  for (int steps : {0, 10}) {
    Context ctx(Device::cpu(), 32);  // the same network and draws for both
    c.final_grad_steps = steps;
    c.final_grad_step = 1e-4;
    const s::IdemSampler sampler(*lj, c, DType::F64, ctx);
    const Tensor x = sampler.final_samples(32, 20, ctx);
    refills.push_back(sampler.reverse_sde(32, 20, false, ctx).to_doubles(ctx));
    {  // two epochs of training: the buffer's refills, so the parameters, do not see the final steps
      Context tctx(Device::cpu(), 33);
      s::IdemSampler tr(*lj, c, DType::F64, tctx);
      s::IdemTrainOptions o;
      o.epochs = 2;
      o.inner_steps = 2;
      o.batch = 8;
      o.buffer_min = 8;
      o.init_samples = 8;
      o.samples_per_epoch = 8;
      o.sde_steps = 5;
      o.eval_every = 2;
      o.eval_samples = 8;
      o.init_from_prior = true;
      s::train_idem(tr, o, tctx, [](const s::IdemTrainLog&) {});
      std::vector<double> p;
      for (const ag::Var& v : tr.parameters())
        for (double w : v.value().to_doubles(tctx)) p.push_back(w);
      trained.push_back(p);
    }
    Tensor e = Tensor::empty(Shape{32}, DType::F64, ctx), g = Tensor::empty(x.shape(), DType::F64, ctx);
    lj->energy_and_grad(x, e, g, ctx);
    double m = 0;
    for (double v : e.to_doubles(ctx)) m += v / 32;
    mean_e.push_back(m);
    CHECK(centre_of_mass_error(x.to_doubles(ctx), 13, 3) < 1e-12);
  }
  MESSAGE("mean energy without / with 10 gradient steps: " << mean_e[0] << " / " << mean_e[1]);
  CHECK(mean_e[1] < mean_e[0]);
  CHECK(refills[0] == refills[1]);  // the buffer's refills take no gradient steps (iDEM's code)
  CHECK(trained[0] == trained[1]);
}
