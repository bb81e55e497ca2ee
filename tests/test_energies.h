// Shared by the tests of the fused paths: a user energy, E = sum_i (x_i^2 - 1)^2 in 3 dimensions, as a
// functor (FunctorTarget, built by the host compiler: CPU only) and as a host callback (the unfused paths);
// and starting points for any built-in target.
#pragma once

#include <string>
#include <vector>

#include "nsamp/targets/user_target.h"
#include "test_util.h"

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

// B points [B, dim] in float64 on the host: exact samples where the target has a sampler, else particles on a
// square (2-D) or cubic lattice near the pair potential's minimum (spacing 4 for DW-4, 1.1 for LJ) with 0.05
// noise.
inline std::vector<double> start_points(const targets::Target& t, std::int64_t B, Context& ctx) {
  if (t.has_sampler()) {
    Tensor x = Tensor::empty(Shape{B, t.dim()}, DType::F64, Device::cpu(), ctx);
    t.sample(x, ctx);
    return x.to_doubles(ctx);
  }
  const targets::Particles p = t.particles();
  const int side = p.spatial == 2 ? 2 : 3;
  const double spacing = t.name() == "dw4" ? 4.0 : 1.1;
  std::vector<double> v = randn(Shape{B, t.dim()}, DType::F64, Device::cpu(), ctx, 8, 0.05).to_doubles(ctx);
  for (std::int64_t b = 0; b < B; ++b)
    for (int i = 0; i < p.n; ++i)
      for (int k = 0; k < p.spatial; ++k) {
        int c = i;
        for (int j = 0; j < k; ++j) c /= side;
        v[std::size_t(b * t.dim() + i * p.spatial + k)] += spacing * (c % side);
      }
  return v;
}

}  // namespace nsamp::test
