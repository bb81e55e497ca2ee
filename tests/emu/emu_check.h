// Helpers of the emulated-kernel tests (tests/test_*_emulated.cpp): random inputs and the comparison with the
// CPU twin, relative to the reference's scale.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"

namespace nsamp::emu {

inline std::vector<double> normal(std::size_t count, std::mt19937_64& g, double s) {
  std::normal_distribution<double> d(0, s);
  std::vector<double> v(count);
  for (double& x : v) x = d(g);
  return v;
}

// A host tensor of T's dtype holding v (the CPU twin's input).
template <class T>
Tensor host_tensor(const std::vector<T>& v, const Shape& s, Context& ctx) {
  return Tensor::from_vector(v, s, Device::cpu(), ctx);
}

template <class T, class U>
std::vector<T> as(const std::vector<U>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// Where want is finite, |got - want| <= tol * s_i, and got must be finite too; where want is not finite (inf
// or NaN), got must be the same. s_i = max(max_j |want_j|, 1) for check_near (errors that scale with the
// largest value, as a sum's do), max(|want_i|, floor) for check_rel (each entry against its own size).
inline void check_entries(const std::vector<double>& want, const std::vector<double>& got, double tol,
                          bool per_entry, double floor, const char* what) {
  REQUIRE(want.size() == got.size());
  double scale = 1;
  for (double w : want)
    if (std::isfinite(w)) scale = std::max(scale, std::abs(w));
  std::size_t mismatched = 0, over = 0, worst = 0;
  double worst_rel = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(want[i]) || !std::isfinite(got[i])) {
      const bool same = std::isnan(want[i]) ? std::isnan(got[i]) : want[i] == got[i];
      if (!same) ++mismatched, worst = i, worst_rel = INFINITY;
      continue;
    }
    const double s = per_entry ? std::max(std::abs(want[i]), floor) : scale, d = std::abs(want[i] - got[i]);
    if (d > tol * s) ++over;
    if (d / s > worst_rel) worst_rel = d / s, worst = i;
  }
  const std::string name = what;  // captured by value: doctest prints a char pointer as an address
  CAPTURE(name);
  CAPTURE(worst);
  CAPTURE(worst_rel);
  CAPTURE(want.empty() ? 0.0 : want[worst]);
  CAPTURE(got.empty() ? 0.0 : got[worst]);
  CHECK(mismatched == 0);
  CHECK(over == 0);
}

inline void check_near(const std::vector<double>& want, const std::vector<double>& got, double tol,
                       const char* what) {
  check_entries(want, got, tol, false, 1, what);
}

// A floor for check_rel below which T's values are not compared relatively (denormals).
template <class T>
constexpr double tiny() {
  return sizeof(T) == 4 ? 1e-30 : 1e-300;
}

inline void check_rel(const std::vector<double>& want, const std::vector<double>& got, double tol,
                      double floor, const char* what) {
  check_entries(want, got, tol, true, floor, what);
}

}  // namespace nsamp::emu
