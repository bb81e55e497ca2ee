// MCMC convergence diagnostics.
#pragma once

#include <vector>

namespace nsamp::samplers {

// Split-R-hat (Gelman et al., BDA3 §11.4) of a scalar over chains: traces[c] is chain c's trace, all of one
// length n >= 4. Each trace is split into halves; R-hat = sqrt(((m - 1)/m W + B/m) / W) with m the half
// length, W the mean within-half variance and B/m the variance of the half means. About 1 for mixed chains;
// above 1.01 is suspect.
double split_rhat(const std::vector<std::vector<double>>& traces);

}  // namespace nsamp::samplers
