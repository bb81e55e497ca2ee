// Element math of every built-in target, written once for the host and the device: per-sample energies with
// their analytic gradients (targets.md). `g` may be null (energy only); otherwise it receives dE/dx.
#pragma once

#include "nsamp/core/hd.h"
#include "nsamp/kernels/reduce.h"

namespace nsamp::targets {

// Equal-weight isotropic Gaussian mixture: E = -(logsumexp_k log N(x; mu_k, s^2 I) - log K).
template <class T>
struct MixtureEnergy {
  const T* means;  // [K, d]
  int K, d;
  T inv_var;   // 1 / s^2
  T log_norm;  // -(d/2) log(2 pi s^2) - log K
  NSAMP_HD T eval(const T* x, T* g) const {
    if (!g) {
      kernels::LseAcc<T> acc = kernels::LseAcc<T>::init();
      for (int k = 0; k < K; ++k) acc.push(log_component(x, k));
      return -(acc.result() + log_norm);
    }
    // One pass: dE/dx = sum_k w_k (x - mu_k) / s^2 with w the softmax of the component log-densities,
    // accumulated against the running maximum and rescaled when it moves (one exp per component, as in online
    // softmax).
    for (int j = 0; j < d; ++j) g[j] = T(0);
    T m = -hd::infinity<T>(), s = 0;
    for (int k = 0; k < K; ++k) {
      const T l = log_component(x, k);
      if (l == -hd::infinity<T>()) continue;  // no weight (x infinite), and exp(-inf - -inf) would be NaN
      const T* mu = means + k * d;
      if (l > m) {
        const T scale = hd::exp_weight(m - l);  // 0 on the first component
        s = s * scale + T(1);
        for (int j = 0; j < d; ++j) g[j] = g[j] * scale + (x[j] - mu[j]);
        m = l;
      } else {
        const T w = hd::exp_weight(l - m);
        s += w;
        for (int j = 0; j < d; ++j) g[j] += w * (x[j] - mu[j]);
      }
    }
    // Every component at zero density (and no NaN seen, which made s NaN): E = +inf, the gradient is
    // undefined.
    if (m == -hd::infinity<T>() && s == s) {
      for (int j = 0; j < d; ++j) g[j] = hd::quiet_nan<T>();
      return hd::infinity<T>();
    }
    const T c = inv_var / s;
    for (int j = 0; j < d; ++j) g[j] *= c;
    return -(m + hd::log(s) + log_norm);
  }
  NSAMP_HD T log_component(const T* x, int k) const {
    const T* mu = means + k * d;
    T r2 = 0;
    for (int j = 0; j < d; ++j) {
      const T u = x[j] - mu[j];
      r2 += u * u;
    }
    return T(-0.5) * inv_var * r2;
  }
};

// Many-Well (FAB): pairs (x_{2i}, x_{2i+1}), E = sum_i x^4 - 6 x^2 - 0.5 x + 0.5 y^2.
template <class T>
struct ManyWellEnergy {
  int d;
  NSAMP_HD T eval(const T* x, T* g) const {
    T e = 0;
    for (int i = 0; i + 1 < d; i += 2) {
      const T a = x[i], b = x[i + 1], a2 = a * a;
      e += a2 * a2 - T(6) * a2 - T(0.5) * a + T(0.5) * b * b;
      if (g) {
        g[i] = T(4) * a2 * a - T(12) * a - T(0.5);
        g[i + 1] = b;
      }
    }
    return e;
  }
};

// sde_sampler's MultiWell: E = sum_{i<m} (x_i^2 - delta)^2 + 0.5 sum_{i>=m} x_i^2.
template <class T>
struct MultiWellEnergy {
  int d, m;
  T delta;
  NSAMP_HD T eval(const T* x, T* g) const {
    T e = 0;
    for (int i = 0; i < d; ++i) {
      const T v = x[i];
      if (i < m) {
        const T u = v * v - delta;
        e += u * u;
        if (g) g[i] = T(4) * u * v;
      } else {
        e += T(0.5) * v * v;
        if (g) g[i] = v;
      }
    }
    return e;
  }
};

// Neal's funnel, normalised: x0 ~ N(0, 9), x_i | x0 ~ N(0, e^{x0}).
template <class T>
struct FunnelEnergy {
  int d;
  NSAMP_HD T eval(const T* x, T* g) const {
    constexpr T kHalfLog2Pi = T(0.91893853320467274178);
    const T x0 = x[0], inv = hd::exp(-x0);
    T e = x0 * x0 / T(18) + kHalfLog2Pi + T(0.5) * hd::log(T(9));
    T sq = 0;
    for (int i = 1; i < d; ++i) {
      sq += x[i] * x[i];
      if (g) g[i] = x[i] * inv;
    }
    e += T(0.5) * sq * inv + T(d - 1) * (T(0.5) * x0 + kHalfLog2Pi);
    if (g) g[0] = x0 / T(9) - T(0.5) * sq * inv + T(0.5) * T(d - 1);
    return e;
  }
};

// Standard normal in d dimensions (tests): E = |x|^2 / 2.
template <class T>
struct GaussianEnergy {
  int d;
  NSAMP_HD T eval(const T* x, T* g) const {
    T e = 0;
    for (int i = 0; i < d; ++i) {
      e += T(0.5) * x[i] * x[i];
      if (g) g[i] = x[i];
    }
    return e;
  }
};

// ---- particle systems: pair potentials phi(r^2) summed over unordered pairs, plus a one-body term ---------

// DW-4 (bgflow MultiDoubleWell): phi = a (r - d0)^4 + b (r - d0)^2 + c, r = |x_i - x_j| (no epsilon).
template <class T>
struct DoubleWellPair {
  T a, b, c, d0;
  // phi and dphi/d(r^2).
  NSAMP_HD void eval(T r2, T* phi, T* dphi_dr2) const {
    const T r = hd::sqrt(r2), u = r - d0, u2 = u * u;
    *phi = a * u2 * u2 + b * u2 + c;
    *dphi_dr2 = (T(4) * a * u2 * u + T(2) * b * u) / (T(2) * r);
  }
  static constexpr bool kHarmonic = false;
};

// Lennard-Jones (iDEM convention): the ordered-pair sum of r~^-12 - 2 r~^-6, i.e. twice the unordered one,
// with r~^2 = r^2 + 1e-6; the one-body term 0.5 |x_i - mean|^2 is added by the particle kernel (kHarmonic).
template <class T>
struct LennardJonesPair {
  NSAMP_HD void eval(T r2, T* phi, T* dphi_dr2) const {
    const T s = r2 + T(1e-6);
    const T inv = T(1) / s, inv3 = inv * inv * inv, inv6 = inv3 * inv3;
    *phi = T(2) * (inv6 - T(2) * inv3);
    *dphi_dr2 = T(2) * (T(-6) * inv6 * inv + T(6) * inv3 * inv);
  }
  static constexpr bool kHarmonic = true;
};

// One sample of a pair system: E = sum_{i<j} phi(|x_i - x_j|^2) (+ 0.5 sum_i |x_i - mean|^2). The CPU path
// runs this; the CUDA path spreads the same per-particle sums over a warp.
template <class T, class Pair>
struct PairSystemEnergy {
  Pair pair;
  int n, D;
  // Energy share and gradient of particle i: 0.5 sum_{j != i} phi_ij, and sum_{j != i} 2 phi'_ij (x_i - x_j).
  NSAMP_HD T particle(const T* x, int i, T* gi) const {
    T e = 0;
    for (int k = 0; k < D; ++k) gi[k] = T(0);
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      T r2 = 0;
      for (int k = 0; k < D; ++k) {
        const T u = x[i * D + k] - x[j * D + k];
        r2 += u * u;
      }
      T phi, dphi;
      pair.eval(r2, &phi, &dphi);
      e += T(0.5) * phi;
      for (int k = 0; k < D; ++k) gi[k] += T(2) * dphi * (x[i * D + k] - x[j * D + k]);
    }
    return e;
  }
  // The whole sample, particle by particle (the CPU path; the GPU spreads the particles over a warp):
  // E and, if g is given, dE/dx (D <= 8).
  NSAMP_HD T eval(const T* x, T* g) const {
    T mean[8], gi[8];
    for (int k = 0; k < D; ++k) {
      mean[k] = 0;
      for (int i = 0; i < n; ++i) mean[k] += x[i * D + k];
      mean[k] /= T(n);
    }
    T energy = 0;
    for (int i = 0; i < n; ++i) {
      energy += particle(x, i, gi);
      if (Pair::kHarmonic)
        for (int k = 0; k < D; ++k) {
          const T u = x[i * D + k] - mean[k];
          energy += T(0.5) * u * u;
          gi[k] += u;
        }
      if (g)
        for (int k = 0; k < D; ++k) g[i * D + k] = gi[k];
    }
    return energy;
  }
};

}  // namespace nsamp::targets
