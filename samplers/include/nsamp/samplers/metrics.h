// Evaluation metrics of ../shared/spec/metrics.md that work on values rather than on pairs of sample sets:
// importance-weight estimators, histogram total variation (energies, interatomic distances), 1-D Wasserstein
// distances and GMM mode coverage. The pairwise-cost metrics (x-W2, Sinkhorn, MMD) come with the evaluation
// issue.
#pragma once

#include <cstdint>
#include <vector>

#include "nsamp/core/tensor.h"

namespace nsamp::samplers::metrics {

// From per-sample log-weights l_i = log p~(x_i) - log q(x_i) (or -R_i for path samplers):
//   log_z = logsumexp(l) - log N, elbo = mean(l), ess = (sum w)^2 / sum w^2 with w = exp(l - max l),
//   var_r = sum (l_i - mean l)^2 / (N - 1), the unbiased variance of R = -l (what the lv loss minimises;
//   0 for a perfect sampler; NaN for N = 1).
// A log-weight of -inf is a zero weight (var_r is then +inf). A NaN makes every estimate NaN; a +inf makes
// log_z and elbo +inf and ess and var_r NaN (filter such samples first and report how many). Fused
// reductions on the tensor's device, one read back.
struct WeightStats {
  double log_z = 0, elbo = 0, ess = 0, ess_fraction = 0;  // ess_fraction = ess / N
  double var_r = 0;
  std::int64_t n = 0;
};
WeightStats weight_stats(const Tensor& log_w, Context& ctx);

// Total variation between histograms (DiKL's convention): `bins` equal bins spanning the reference values'
// [min, max]; model values outside are dropped; each histogram is divided by its own total; TV = 1/2 sum |p -
// q|. TV is 1 when no model value falls inside the reference range.
double histogram_tvd(const std::vector<double>& model, const std::vector<double>& reference, int bins = 200);

// All |x_i - x_j|, i < j, of every sample of a particle system (rows [N, n * spatial]).
std::vector<double> interatomic_distances(const std::vector<double>& x, std::int64_t N, int n, int spatial);

// Squared 2-Wasserstein distance between two 1-D empirical distributions (any sizes), by their quantile
// functions. iDEM reports this squared value as "energy W2"; take the square root for the distance itself.
double wasserstein2_squared_1d(std::vector<double> a, std::vector<double> b);

// Nearest-mode assignment counts of samples [N, d] against modes [K][d] (squared Euclidean distance).
std::vector<std::int64_t> mode_counts(const std::vector<double>& x, std::int64_t N,
                                      const std::vector<std::vector<double>>& modes);
// Modes holding at least `fraction` of their expected share N / K.
int modes_covered(const std::vector<std::int64_t>& counts, double fraction = 0.2);
// Entropy of the assignment histogram divided by log K (1 for perfectly even coverage; Beyond-ELBOs).
double entropic_mode_coverage(const std::vector<std::int64_t>& counts);

}  // namespace nsamp::samplers::metrics
