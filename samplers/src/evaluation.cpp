#include "nsamp/samplers/evaluation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <random>

#include "nsamp/samplers/metrics.h"
#include "nsamp/samplers/sample_distances.h"
#include "nsamp/targets/reference.h"

namespace nsamp::samplers {

const char* protocol_name(Protocol p) {
  switch (p) {
    case Protocol::Full:
      return "full";
    case Protocol::Idem:
      return "idem";
    case Protocol::Dikl:
      return "dikl";
  }
  return "?";
}

Protocol parse_protocol(const std::string& name) {
  for (Protocol p : {Protocol::Full, Protocol::Idem, Protocol::Dikl})
    if (name == protocol_name(p)) return p;
  NSAMP_FAIL("unknown protocol '", name, "' (valid: full, idem, dikl)");
}

namespace {

const std::vector<std::string> kMetricNames = {
    "x_w2",      "sinkhorn",     "sinkhorn_divergence", "mmd",   "energy_tvd",
    "energy_w2", "distance_tvd", "distance_w2",         "modes", "weights"};

// The first k entries of a Fisher-Yates shuffle of 0..n-1 driven by mt19937_64: the same on every platform
// (std::shuffle's algorithm is not specified).
std::vector<std::int64_t> draw_without_replacement(std::int64_t n, std::int64_t k, std::mt19937_64& rng) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) idx[std::size_t(i)] = i;
  for (std::int64_t i = 0; i < k; ++i) {
    const std::uint64_t span = std::uint64_t(n - i);
    const std::int64_t j = i + std::int64_t(rng() % span);
    std::swap(idx[std::size_t(i)], idx[std::size_t(j)]);
  }
  idx.resize(static_cast<std::size_t>(k));
  return idx;
}

std::vector<double> rows_of(const std::vector<double>& x, std::int64_t d,
                            const std::vector<std::int64_t>& rows) {
  std::vector<double> out;
  out.reserve(rows.size() * std::size_t(d));
  for (std::int64_t r : rows) out.insert(out.end(), x.begin() + r * d, x.begin() + (r + 1) * d);
  return out;
}

std::vector<double> values_of(const std::vector<double>& v, const std::vector<std::int64_t>& rows) {
  std::vector<double> out;
  out.reserve(rows.size());
  for (std::int64_t r : rows) out.push_back(v[std::size_t(r)]);
  return out;
}

std::vector<double> energies(const targets::Target& t, const std::vector<double>& x, std::int64_t d,
                             Context& ctx) {
  const std::int64_t n = std::int64_t(x.size()) / std::max<std::int64_t>(d, 1);
  if (n == 0) return {};
  const Tensor xt = Tensor::from_vector(x, Shape{n, d}, ctx.device(), ctx);
  Tensor e = Tensor::empty(Shape{n}, DType::F64, ctx.device(), ctx);
  t.energy(xt, e, ctx);
  return e.to_doubles(ctx);
}

std::vector<double> finite_only(const std::vector<double>& v) {
  std::vector<double> out;
  for (double x : v)
    if (std::isfinite(x)) out.push_back(x);
  return out;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
}

double pop_std(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return v.empty() ? NAN : std::sqrt(s / double(v.size()));
}

}  // namespace

Tensor reference_for(const targets::Target& target, std::int64_t n, std::uint64_t seed, std::string& source,
                     Context& ctx, targets::ReferenceSplit split) {
  if (target.has_sampler()) {
    NSAMP_CHECK(n > 0, "reference_for: need a positive sample count, got ", n);
    Context host(Device::cpu(), seed);
    Tensor out = Tensor::empty(Shape{n, target.dim()}, DType::F64, host);
    target.sample(out, host);
    source = "exact sampler of " + target.name() + ", " + std::to_string(n) + " samples, seed " +
             std::to_string(seed);
    return out.to(ctx.device(), ctx);
  }
  const std::string file = targets::reference_file(target, split);
  NSAMP_CHECK(!file.empty(), "evaluate: target ", target.name(),
              " has neither an exact sampler nor a reference file; pass --reference R.npy");
  source = "reference file " + file;
  return targets::load_reference(target, split, ctx, DType::F64);
}

EvalReport evaluate(const targets::Target& target, const Tensor& samples, const Tensor& reference,
                    const Tensor* log_w, const std::string& reference_source, const EvalOptions& opt,
                    Context& ctx) {
  const std::int64_t d = target.dim();
  check_defined("evaluate", samples, "samples");
  check_defined("evaluate", reference, "reference");
  NSAMP_CHECK(samples.rank() == 2 && samples.cols() == d, "evaluate: samples hold ", samples.desc(),
              " but target ", target.name(), " needs [N, ", d, "]");
  NSAMP_CHECK(reference.rank() == 2 && reference.cols() == d, "evaluate: the reference holds ",
              reference.desc(), " but target ", target.name(), " needs [M, ", d, "]");
  NSAMP_CHECK(samples.rows() > 0, "evaluate: the sample set is empty");
  NSAMP_CHECK(reference.rows() > 0, "evaluate: the reference set is empty");
  for (const std::string& m : opt.metrics)
    NSAMP_CHECK(std::find(kMetricNames.begin(), kMetricNames.end(), m) != kMetricNames.end(),
                "evaluate: unknown metric '", m,
                "' (valid: x_w2, sinkhorn, sinkhorn_divergence, mmd, energy_tvd, energy_w2, distance_tvd, "
                "distance_w2, modes, weights)");
  auto want = [&](const char* name) {
    return opt.metrics.empty() ||
           std::find(opt.metrics.begin(), opt.metrics.end(), name) != opt.metrics.end();
  };

  EvalReport r;
  r.target = target.name();
  r.protocol = protocol_name(opt.protocol);
  r.reference_source = reference_source;
  r.seed = opt.seed;
  r.dim = d;
  r.samples_in = samples.rows();

  // Rows with a non-finite coordinate are excluded, with their log-weights.
  NSAMP_CHECK(is_floating(samples.dtype()) && is_floating(reference.dtype()),
              "evaluate: samples and reference must be float32 or float64, got ", samples.desc(), " and ",
              reference.desc());
  const std::vector<double> raw = samples.to_doubles(ctx);
  std::vector<double> lw;
  if (log_w) {
    check_defined("evaluate", *log_w, "log_w");
    NSAMP_CHECK(log_w->numel() == samples.rows(), "evaluate: ", log_w->numel(), " log-weights for ",
                samples.rows(), " samples");
    lw = log_w->to_doubles(ctx);
  }
  std::vector<double> kept_lw;
  for (std::int64_t i = 0; i < samples.rows(); ++i) {
    bool ok = true;
    for (std::int64_t k = 0; k < d && ok; ++k) ok = std::isfinite(raw[std::size_t(i * d + k)]);
    if (!ok) {
      ++r.nonfinite_rows;
      continue;
    }
    r.model.insert(r.model.end(), raw.begin() + i * d, raw.begin() + (i + 1) * d);
    if (log_w) {
      const double l = lw[std::size_t(i)];
      if (std::isnan(l) || l == INFINITY)
        ++r.nonfinite_log_weights;
      else
        kept_lw.push_back(l);
    }
  }
  const std::int64_t N = std::int64_t(r.model.size()) / std::max<std::int64_t>(d, 1);
  r.samples_used = N;
  NSAMP_CHECK(N > 0, "evaluate: all ", samples.rows(), " samples have NaN or Inf coordinates");
  r.reference = reference.to_doubles(ctx);
  for (double v : r.reference)
    NSAMP_CHECK(std::isfinite(v), "evaluate: the reference holds a non-finite value (", v, ")");
  const std::int64_t M = reference.rows();
  r.reference_samples = M;

  const targets::Particles p = target.particles();
  if (p.n > 0) {  // mean-free coordinates
    for (std::vector<double>* v : {&r.model, &r.reference}) {
      Tensor t = Tensor::from_vector(*v, Shape{std::int64_t(v->size()) / d, d}, Device::cpu(), ctx);
      targets::remove_centre_of_mass(t, p);
      *v = t.to_vector<double>(ctx);
    }
  }
  r.model_energy = energies(target, r.model, d, ctx);
  r.reference_energy = energies(target, r.reference, d, ctx);
  const std::vector<double> e_model = finite_only(r.model_energy), e_ref = finite_only(r.reference_energy);
  r.nonfinite_energies = std::int64_t(r.model_energy.size() - e_model.size());

  std::mt19937_64 rng(opt.seed);
  auto timed = [&](MetricValue m, const std::function<void(MetricValue&)>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f(m);
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.metrics.push_back(m);
  };
  auto device_rows = [&](const std::vector<double>& x, const std::vector<std::int64_t>& rows) {
    const std::vector<double> s = rows_of(x, d, rows);
    return Tensor::from_vector(s, Shape{std::int64_t(rows.size()), d}, ctx.device(), ctx);
  };
  auto dist_values = [&](const std::vector<double>& x, const std::vector<std::int64_t>* rows) {
    if (!rows) return metrics::interatomic_distances(x, std::int64_t(x.size()) / d, p.n, p.spatial);
    return metrics::interatomic_distances(rows_of(x, d, *rows), std::int64_t(rows->size()), p.n, p.spatial);
  };
  auto energy_tvd = [&](MetricValue& m, const std::vector<double>& model_e) {
    m.value = metrics::histogram_tvd(finite_only(model_e), e_ref, 200);
  };

  const std::int64_t pairs_full = std::min({N, M, opt.max_pairs});
  if (opt.protocol == Protocol::Full) {
    const std::vector<std::int64_t> ix = draw_without_replacement(N, pairs_full, rng),
                                    iy = draw_without_replacement(M, pairs_full, rng);
    const Tensor xs = device_rows(r.model, ix), ys = device_rows(r.reference, iy);
    if (want("x_w2"))
      timed({"x_w2", 0, 0, 1, pairs_full, "exact OT, squared-Euclidean cost, sqrt of the mean matched cost"},
            [&](MetricValue& m) { m.value = exact_w2(xs, ys, ctx).w2; });
    if (want("sinkhorn"))
      timed({"sinkhorn", 0, 0, 1, pairs_full,
             "sde_sampler: eps 1e-3, Euclidean cost, <= 100 iterations, tol 1e-5"},
            [&](MetricValue& m) {
              const SinkhornResult s =
                  sinkhorn(xs, ys, SinkhornOptions::defaults_for(SinkhornConvention::SdeSampler), ctx);
              m.value = s.value;
              m.converged = s.converged;
            });
    // Its relative epsilon converges in ~100 iterations on benchmark sets (gmm40, 2000 vs 2000: 110, 40 and
    // 30 for the three problems, ~15 s on 2 CPU cores); beyond 2000 pairs the three dense problems grow
    // quadratically and a heavy-tailed set can take all 2000 iterations.
    const bool slow_on_cpu = opt.metrics.empty() && ctx.device().is_cpu() && pairs_full > 2000;
    if (slow_on_cpu)
      r.skipped.push_back(
          {"sinkhorn_divergence", "CPU with " + std::to_string(pairs_full) +
                                      " pairs (minutes); request it with --metrics or use a GPU"});
    if (want("sinkhorn_divergence") && !slow_on_cpu)
      timed({"sinkhorn_divergence", 0, 0, 1, pairs_full,
             "Beyond-ELBOs (ott-jax 0.4.6 defaults): eps 0.05 x mean cost, squared-Euclidean cost, "
             "<= 2000 iterations, threshold 1e-3"},
            [&](MetricValue& m) {
              const SinkhornResult s = sinkhorn(
                  xs, ys, SinkhornOptions::defaults_for(SinkhornConvention::SinkhornDivergence), ctx);
              m.value = s.value;
              m.converged = s.converged;
            });
    if (want("mmd") && pairs_full >= 2)
      timed({"mmd", 0, 0, 1, pairs_full, "Beyond-ELBOs: Gaussian kernel, median bandwidth"},
            [&](MetricValue& m) { m.value = mmd_median(xs, ys, ctx).mmd; });
  }
  if (opt.protocol == Protocol::Idem && want("x_w2")) {
    const std::int64_t want_n = target.name() == "lj13" ? 1024 : target.name() == "lj55" ? 10000 : 1000;
    const std::int64_t k = std::min({N, M, want_n});
    const std::vector<std::int64_t> ix = draw_without_replacement(N, k, rng),
                                    iy = draw_without_replacement(M, k, rng);
    timed({"x_w2", 0, 0, 1, k, "iDEM: exact OT (POT emd2), squared-Euclidean cost, sqrt"},
          [&](MetricValue& m) {
            m.value = exact_w2(device_rows(r.model, ix), device_rows(r.reference, iy), ctx).w2;
          });
  }
  if (opt.protocol == Protocol::Dikl) {
    const std::int64_t k = std::min<std::int64_t>({N, M, 2000});
    std::vector<double> w2s, etv, dtv;
    double tw = 0, te = 0, td = 0;
    for (int rep = 0; rep < 10; ++rep) {
      const std::vector<std::int64_t> ix = draw_without_replacement(N, k, rng),
                                      iy = draw_without_replacement(M, k, rng);
      auto t0 = std::chrono::steady_clock::now();
      if (want("x_w2"))
        w2s.push_back(exact_w2(device_rows(r.model, ix), device_rows(r.reference, iy), ctx).w2);
      auto t1 = std::chrono::steady_clock::now();
      if (want("energy_tvd")) {
        const std::vector<double> em = finite_only(values_of(r.model_energy, ix));
        etv.push_back(metrics::histogram_tvd(em, values_of(r.reference_energy, iy), 200));
      }
      auto t2 = std::chrono::steady_clock::now();
      if (want("distance_tvd") && p.n > 0)
        dtv.push_back(metrics::histogram_tvd(dist_values(r.model, &ix), dist_values(r.reference, &iy), 200));
      auto t3 = std::chrono::steady_clock::now();
      tw += std::chrono::duration<double>(t1 - t0).count();
      te += std::chrono::duration<double>(t2 - t1).count();
      td += std::chrono::duration<double>(t3 - t2).count();
    }
    auto push = [&](const char* name, const std::vector<double>& v, double secs, const std::string& conv) {
      if (v.empty()) return;
      MetricValue m{name, mean_of(v), pop_std(v), int(v.size()), k, conv, secs, true};
      r.metrics.push_back(m);
    };
    // Fewer than 2000 samples on a side (MW-32's 1000 evaluation samples) shrink every repeat; say so.
    const std::string sizes = std::to_string(k) + " vs " + std::to_string(k);
    push("x_w2", w2s, tw, "DiKL: exact OT, squared-Euclidean cost, sqrt; 10 repeats of " + sizes);
    push("energy_tvd", etv, te, "DiKL: 200 bins over the reference energies' range; 10 repeats of " + sizes);
    push("distance_tvd", dtv, td,
         "DiKL: interatomic distances, 200 bins over the reference range; 10 repeats of " + sizes);
  } else {
    if (want("energy_tvd") && opt.protocol == Protocol::Full)
      timed({"energy_tvd", 0, 0, 1, N, "DiKL: 200 bins over the reference energies' range"},
            [&](MetricValue& m) { energy_tvd(m, r.model_energy); });
    if (want("energy_w2") && !e_model.empty())
      timed({"energy_w2", 0, 0, 1, std::int64_t(e_model.size()),
             "iDEM: 1-D OT of the energies, reported squared"},
            [&](MetricValue& m) { m.value = metrics::wasserstein2_squared_1d(e_model, e_ref); });
    if (p.n > 0) {
      const std::vector<double> dm = dist_values(r.model, nullptr), dr = dist_values(r.reference, nullptr);
      if (want("distance_tvd"))
        timed({"distance_tvd", 0, 0, 1, N,
               "iDEM/DiKL: interatomic distances, 200 bins over the reference range"},
              [&](MetricValue& m) { m.value = metrics::histogram_tvd(dm, dr, 200); });
      if (want("distance_w2"))
        timed({"distance_w2", 0, 0, 1, N, "iDEM: 1-D OT of the interatomic distances, reported squared"},
              [&](MetricValue& m) { m.value = metrics::wasserstein2_squared_1d(dm, dr); });
    }
  }
  if (opt.protocol == Protocol::Full) {
    const std::vector<std::vector<double>> modes = target.modes();
    if (want("modes") && !modes.empty()) {
      r.mode_counts = metrics::mode_counts(r.model, N, modes);
      r.metrics.push_back({"modes_covered", double(metrics::modes_covered(r.mode_counts)), 0, 1, N,
                           "modes holding >= 20% of their share N / K (nearest mode)", 0, true});
      r.metrics.push_back({"entropic_mode_coverage", metrics::entropic_mode_coverage(r.mode_counts), 0, 1, N,
                           "Beyond-ELBOs: entropy of nearest-mode assignments / log K", 0, true});
    }
    if (want("weights") && log_w && !kept_lw.empty()) {
      const Tensor l = Tensor::from_vector(kept_lw, Shape{std::int64_t(kept_lw.size())}, ctx.device(), ctx);
      const metrics::WeightStats w = metrics::weight_stats(l, ctx);
      const std::int64_t nw = std::int64_t(kept_lw.size());
      r.metrics.push_back({"log_z", w.log_z, 0, 1, nw, "logsumexp(l) - log N", 0, true});
      if (target.log_z())
        r.metrics.push_back({"log_z_error", std::abs(w.log_z - *target.log_z()), 0, 1, nw,
                             "|log Z_IS - log Z_true|", 0, true});
      r.metrics.push_back({"elbo", w.elbo, 0, 1, nw, "mean(l)", 0, true});
      r.metrics.push_back({"ess_fraction", w.ess_fraction, 0, 1, nw, "(sum w)^2 / sum w^2 / N", 0, true});
      r.metrics.push_back({"var_r", w.var_r, 0, 1, nw, "unbiased variance of R = -l (the lv loss)", 0, true});
    }
  }
  return r;
}

SampleSummary summarize_samples(const targets::Target& target, const Tensor& x, Context& ctx) {
  const std::int64_t n = x.rows();
  Tensor e = Tensor::empty(Shape{n}, x.dtype(), ctx);
  target.energy(x, e, ctx);
  const std::vector<double> xv = x.to_doubles(ctx), ev = e.to_doubles(ctx);
  const std::size_t d = std::size_t(target.dim());
  SampleSummary r;
  std::vector<double> finite;
  double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto row = xv.begin() + std::ptrdiff_t(std::size_t(i) * d);
    if (!std::isfinite(ev[std::size_t(i)]) ||
        !std::all_of(row, row + std::ptrdiff_t(d), [](double v) { return std::isfinite(v); })) {
      ++r.nonfinite;
      continue;
    }
    sum -= ev[std::size_t(i)];
    finite.insert(finite.end(), row, row + std::ptrdiff_t(d));
  }
  r.samples = n - r.nonfinite;
  r.mean_log_p = r.samples > 0 ? sum / double(r.samples) - target.log_z().value_or(0.0) : NAN;
  const auto modes = target.modes();
  if (!modes.empty()) {
    r.modes = int(modes.size());
    r.modes_covered =
        r.samples > 0 ? metrics::modes_covered(metrics::mode_counts(finite, r.samples, modes)) : 0;
  }
  return r;
}

}  // namespace nsamp::samplers
