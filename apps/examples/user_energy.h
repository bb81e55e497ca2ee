// The example's energy, a 2-D "banana": E(x, y) = x^2 / 4 + (y - c x^2)^2 / 2 with c = 0.5, written once for
// the host and the device.
#pragma once

#include "nsamp/core/hd.h"

struct BananaEnergy {
  double curvature = 0.5;
  template <class T>
  NSAMP_HD T eval(const T* x, T* g) const {
    const T a = x[0], u = x[1] - T(curvature) * a * a;
    if (g) {
      g[0] = a / T(2) - T(2) * T(curvature) * a * u;
      g[1] = u;
    }
    return a * a / T(4) + u * u / T(2);
  }
};
