// Internal: the embedded GMM-40 means.
#pragma once

namespace nsamp::targets::detail {
extern const double kGmm40Means[40][2];
}  // namespace nsamp::targets::detail
