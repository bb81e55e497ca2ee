// The smoke computation `nsamp info` runs on a device: one MLP layer and a row log-sum-exp, checked against a
// float64 reference computed on the host from the same inputs.
#pragma once

#include <ostream>

#include "nsamp/core/types.h"

namespace nsamp::apps {

struct SmokeResult {
  double max_rel_error = 0;  // against the float64 reference
  double milliseconds = 0;   // device time for the layer + reduction (after a warm-up)
  double checksum = 0;       // mean of the row log-sum-exps
  bool passed = false;
};

SmokeResult run_smoke(Device device, std::ostream& log);

}  // namespace nsamp::apps
