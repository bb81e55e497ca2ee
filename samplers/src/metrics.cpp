#include "nsamp/samplers/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/reduce.h"

namespace nsamp::samplers::metrics {

WeightStats weight_stats(const Tensor& log_w, Context& ctx) {
  check_defined("weight_stats", log_w, "log_w");
  const std::int64_t N = log_w.numel();
  NSAMP_CHECK(N > 0, "weight_stats: no log-weights");
  NSAMP_CHECK(is_floating(log_w.dtype()), "weight_stats: log-weights must be float32 or float64, got ",
              log_w.desc());
  const Tensor row = log_w.reshape(Shape{1, N});
  // out = [L = lse(l), lse(2 (l - L)), mean(l), sum (l - mean l)^2] in one buffer, one read. Centring on L
  // keeps the ESS exact to rounding whatever the scale of l: ESS = exp(2 lse(l - L) - lse(2 (l - L))) =
  // exp(-lse(2 (l - L))); centring on the mean keeps the variance free of cancellation.
  Tensor out = Tensor::empty(Shape{4}, log_w.dtype(), log_w.device(), ctx);
  Tensor centred = Tensor::empty(row.shape(), log_w.dtype(), log_w.device(), ctx);
  Tensor o0 = out.slice_rows(0, 1), o1 = out.slice_rows(1, 2), o2 = out.slice_rows(2, 3),
         o3 = out.slice_rows(3, 4);
  kernels::row_logsumexp(row, o0, ctx);
  kernels::sub(row, o0, centred, ctx);
  kernels::affine(centred, 2.0, 0.0, centred, ctx);
  kernels::row_logsumexp(centred, o1, ctx);
  kernels::row_mean(row, o2, ctx);
  kernels::sub(row, o2, centred, ctx);
  kernels::row_sq_norm(centred, o3, ctx);
  const std::vector<double> v = out.to_doubles(ctx);
  WeightStats s;
  s.n = N;
  s.log_z = v[0] - std::log(double(N));
  s.elbo = v[2];
  s.ess = std::exp(-v[1]);
  s.ess_fraction = s.ess / double(N);
  // A zero weight (l = -inf) is an infinite R: (-inf) - (-inf) would make the centred sum NaN.
  s.var_r = N < 2 ? NAN : s.elbo == -INFINITY ? INFINITY : v[3] / double(N - 1);
  return s;
}

double histogram_tvd(const std::vector<double>& model, const std::vector<double>& reference, int bins) {
  NSAMP_CHECK(bins >= 1, "histogram_tvd: bins must be positive, got ", bins);
  NSAMP_CHECK(!reference.empty(), "histogram_tvd: empty reference");
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double r : reference) {
    NSAMP_CHECK(std::isfinite(r), "histogram_tvd: non-finite reference value ", r);
    lo = std::min(lo, r);
    hi = std::max(hi, r);
  }
  const double width = hi > lo ? (hi - lo) / bins : 1.0;
  auto bin_of = [&](double v) -> int {
    if (!(v >= lo && v <= hi)) return -1;  // outside (or NaN): dropped
    const int b = static_cast<int>((v - lo) / width);
    return std::min(b, bins - 1);  // the last edge belongs to the last bin, as in numpy
  };
  std::vector<double> p(static_cast<std::size_t>(bins), 0.0), q(p.size(), 0.0);
  double np = 0, nq = 0;
  for (double v : model)
    if (int b = bin_of(v); b >= 0) {
      p[static_cast<std::size_t>(b)] += 1;
      np += 1;
    }
  for (double v : reference) {
    q[static_cast<std::size_t>(bin_of(v))] += 1;
    nq += 1;
  }
  if (np == 0) return 1.0;
  double tv = 0;
  for (std::size_t i = 0; i < p.size(); ++i) tv += std::abs(p[i] / np - q[i] / nq);
  return 0.5 * tv;
}

std::vector<double> interatomic_distances(const std::vector<double>& x, std::int64_t N, int n, int spatial) {
  NSAMP_CHECK(n >= 2 && spatial >= 1 && static_cast<std::int64_t>(x.size()) == N * n * spatial,
              "interatomic_distances: ", x.size(), " values are not ", N, " samples of ", n, " x ", spatial);
  std::vector<double> d;
  d.reserve(static_cast<std::size_t>(N * n * (n - 1) / 2));
  for (std::int64_t b = 0; b < N; ++b) {
    const double* s = x.data() + b * n * spatial;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) {
        double r2 = 0;
        for (int k = 0; k < spatial; ++k)
          r2 += (s[i * spatial + k] - s[j * spatial + k]) * (s[i * spatial + k] - s[j * spatial + k]);
        d.push_back(std::sqrt(r2));
      }
  }
  return d;
}

double wasserstein2_squared_1d(std::vector<double> a, std::vector<double> b) {
  NSAMP_CHECK(!a.empty() && !b.empty(), "wasserstein2_squared_1d: empty input");
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  // Integrate (F_a^-1(u) - F_b^-1(u))^2 over u in [0, 1] piece by piece between the two sets of quantile
  // steps.
  const double na = double(a.size()), nb = double(b.size());
  std::size_t i = 0, j = 0;
  double u = 0, total = 0;
  while (i < a.size() && j < b.size()) {
    const double ua = double(i + 1) / na, ub = double(j + 1) / nb;
    const double next = std::min(ua, ub);
    total += (next - u) * (a[i] - b[j]) * (a[i] - b[j]);
    u = next;
    if (ua <= next) ++i;
    if (ub <= next) ++j;
  }
  return total;
}

std::vector<std::int64_t> mode_counts(const std::vector<double>& x, std::int64_t N,
                                      const std::vector<std::vector<double>>& modes) {
  NSAMP_CHECK(!modes.empty(), "mode_counts: no modes");
  const std::size_t d = modes[0].size();
  NSAMP_CHECK(x.size() == static_cast<std::size_t>(N) * d, "mode_counts: ", x.size(), " values are not ", N,
              " samples of dimension ", d);
  std::vector<std::int64_t> counts(modes.size(), 0);
  for (std::int64_t b = 0; b < N; ++b) {
    std::size_t best = 0;
    double best_d = std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < modes.size(); ++k) {
      double r2 = 0;
      for (std::size_t j = 0; j < d; ++j) r2 += (x[b * d + j] - modes[k][j]) * (x[b * d + j] - modes[k][j]);
      if (r2 < best_d) {
        best_d = r2;
        best = k;
      }
    }
    if (std::isfinite(best_d)) ++counts[best];  // non-finite samples belong to no mode
  }
  return counts;
}

int modes_covered(const std::vector<std::int64_t>& counts, double fraction) {
  std::int64_t N = 0;
  for (std::int64_t c : counts) N += c;
  const double need = fraction * double(N) / double(counts.size());
  int covered = 0;
  for (std::int64_t c : counts)
    if (c > 0 && double(c) >= need) ++covered;
  return covered;
}

double entropic_mode_coverage(const std::vector<std::int64_t>& counts) {
  NSAMP_CHECK(counts.size() >= 2, "entropic_mode_coverage: needs at least two modes");
  double N = 0, h = 0;
  for (std::int64_t c : counts) N += double(c);
  if (N == 0) return 0.0;
  for (std::int64_t c : counts)
    if (c > 0) h -= double(c) / N * std::log(double(c) / N);
  return h / std::log(double(counts.size()));
}

}  // namespace nsamp::samplers::metrics
