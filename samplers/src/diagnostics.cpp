#include "nsamp/samplers/diagnostics.h"

#include <cmath>

#include "nsamp/core/error.h"

namespace nsamp::samplers {

double split_rhat(const std::vector<std::vector<double>>& traces) {
  NSAMP_CHECK(traces.size() >= 1, "split_rhat: no chains");
  const std::size_t n = traces[0].size();
  NSAMP_CHECK(n >= 4, "split_rhat: traces need at least 4 values, got ", n);
  const std::size_t m = n / 2;
  std::vector<double> means, vars;
  for (const auto& t : traces) {
    NSAMP_CHECK(t.size() == n, "split_rhat: traces of different lengths (", t.size(), " and ", n, ")");
    for (int half = 0; half < 2; ++half) {
      const std::size_t begin = half ? n - m : 0;  // an odd middle value is dropped
      double mu = 0, v = 0;
      for (std::size_t i = 0; i < m; ++i) mu += t[begin + i];
      mu /= double(m);
      for (std::size_t i = 0; i < m; ++i) v += (t[begin + i] - mu) * (t[begin + i] - mu);
      means.push_back(mu);
      vars.push_back(v / double(m - 1));
    }
  }
  double W = 0, grand = 0;
  for (double v : vars) W += v / double(vars.size());
  for (double mu : means) grand += mu / double(means.size());
  double B_over_m = 0;
  for (double mu : means) B_over_m += (mu - grand) * (mu - grand) / double(means.size() - 1);
  const double var_plus = (double(m) - 1) / double(m) * W + B_over_m;
  return W > 0 ? std::sqrt(var_plus / W) : INFINITY;
}

}  // namespace nsamp::samplers
