// Centre-of-mass handling for particle systems (targets.md, DW-4 and LJ): samples [B, n * D] live in the
// (n - 1) D-dimensional subspace where every spatial axis sums to zero over the particles. The projection
// onto it, P = I_{nD} - (1/n) (1 1^T (x) I_D), is symmetric and idempotent; applying it is one GEMM with a
// constant [nD, nD] matrix, on either backend, and on the tape its backward is the same product.
#pragma once

#include "nsamp/autograd/tape.h"
#include "nsamp/core/philox.h"
#include "nsamp/targets/target.h"

namespace nsamp::samplers {

class MeanFree {
 public:
  MeanFree() = default;  // inactive: apply() is the identity
  // Active for particle systems (p.n > 0); the identity otherwise.
  MeanFree(const targets::Particles& p, DType dtype, Context& ctx);
  bool active() const { return P_.defined(); }
  const targets::Particles& particles() const { return p_; }
  // Degrees of freedom of a sample: (n - 1) D for particles, else `dim`.
  std::int64_t dof(std::int64_t dim) const { return active() ? (p_.n - 1) * p_.spatial : dim; }
  // x <- P x row by row (in place; a no-op when inactive).
  void apply(Tensor& x, Context& ctx) const;
  // P x on the tape.
  ag::Var apply(ag::Tape& tp, const ag::Var& x) const;
  // A standard normal in the subspace: N(0, I) projected (std scales it), drawn from the context's stream.
  void fill_normal(Tensor& x, Context& ctx, double std = 1.0) const;
  // The same from explicit Philox counters (which may be read on the device, philox::Offset).
  void fill_normal_at(Tensor& x, std::uint64_t seed, philox::Offset offset, Context& ctx,
                      double std = 1.0) const;

 private:
  targets::Particles p_;
  Tensor P_;
};

}  // namespace nsamp::samplers
