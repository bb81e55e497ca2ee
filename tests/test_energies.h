// A user energy shared by the tests of the fused paths: E = sum_i (x_i^2 - 1)^2 in 3 dimensions, as a functor
// (FunctorTarget, built by the host compiler: CPU only) and as a host callback (the unfused paths).
#pragma once

#include "nsamp/targets/user_target.h"

namespace nsamp::test {

struct QuarticWells {
  template <class T>
  NSAMP_HD T eval(const T* x, T* g) const {
    T e = 0;
    for (int i = 0; i < 3; ++i) {
      const T u = x[i] * x[i] - T(1);
      e += u * u;
      if (g) g[i] = T(4) * u * x[i];
    }
    return e;
  }
};

inline targets::CallbackTarget quartic_callback() {
  return targets::CallbackTarget("quartic-callback", 3,
                                 [](const double* x, std::int64_t B, std::int64_t d, double* e, double* g) {
                                   for (std::int64_t b = 0; b < B; ++b)
                                     e[b] = QuarticWells{}.eval(x + b * d, g ? g + b * d : nullptr);
                                 });
}

}  // namespace nsamp::test
