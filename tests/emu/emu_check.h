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

// max |got - want| <= tol * max(max |want|, 1) over entries where want is finite; where want is not finite
// (inf or NaN), got must be the same (NaN fails a finite comparison: no NaN slips through).
inline void check_near(const std::vector<double>& want, const std::vector<double>& got, double tol,
                       const char* what) {
  REQUIRE(want.size() == got.size());
  double diff = 0, scale = 1;
  std::size_t worst = 0, mismatched = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(want[i])) {
      const bool same = std::isnan(want[i]) ? std::isnan(got[i]) : want[i] == got[i];
      if (!same) ++mismatched;
      continue;
    }
    const double d = std::abs(want[i] - got[i]);
    if (!(d <= diff)) diff = d, worst = i;
    scale = std::max(scale, std::abs(want[i]));
  }
  const std::string name = what;  // captured by value: doctest prints a char pointer as an address
  CAPTURE(name);
  CAPTURE(worst);
  CHECK(mismatched == 0);
  CHECK(diff <= tol * scale);
}

}  // namespace nsamp::emu
