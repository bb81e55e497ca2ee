// Time and coordinate embeddings shared by the samplers' networks.
#pragma once

#include <string>
#include <vector>

#include "nsamp/autograd/ops.h"

namespace nsamp::samplers {

// [sin(v c + phase), cos(v c + phase)] for a per-sample scalar v [B, 1] (or one shared value, [1] / [1, 1],
// which gives one row that broadcasts), fixed frequencies c [1, K] and an optional learned phase [K].
// Returns [B, 2K].
ag::Var fourier_features(ag::Tape& t, const ag::Var& v, const ag::Var& coeff, const ag::Var& phase);

// A constant (no gradient) [1, n] row of `values` in `dtype` on the context's device, uploaded once.
ag::Var constant_row(const std::vector<double>& values, DType dtype, Context& ctx, const std::string& name);

// The transformer-style sinusoidal frequencies of iDEM and tiny-diffusion: c_k = scale * 10000^(-k / (K -
// 1)), k = 0..K-1, as a constant [1, K] variable.
ag::Var sinusoidal_coefficients(std::int64_t half_size, double scale, DType dtype, Context& ctx);

}  // namespace nsamp::samplers
