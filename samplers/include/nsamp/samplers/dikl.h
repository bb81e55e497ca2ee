// DiKL's noise process and its two losses (dikl.md): the discrete VP schedule, denoising score matching for
// the model score network, and the generator's surrogate loss whose gradient is the vector-Jacobian product
// E[w a (s_phi - s_d)^T dg/dtheta].
#pragma once

#include <functional>
#include <vector>

#include "nsamp/autograd/tape.h"

namespace nsamp::samplers {

// beta = linspace(start, end, levels), abar = cumprod(1 - beta), alpha = sqrt(abar), sigma = sqrt(1 - abar);
// weight 1 / alpha (MoG-40, MW-32) or 1 (DW-4, LJ-13). Training draws t uniformly from 1 .. levels - 1.
struct DiklSchedule {
  std::vector<double> alpha, sigma, weight;
  static DiklSchedule make(double start, double end, bool weight_inv_alpha, int levels = 30);
  int levels() const { return int(alpha.size()); }
};

// s(x_t, t) on the tape: t [B, 1] (the integer index as a float), x_t [B, d].
using ScoreFn = std::function<ag::Var(ag::Tape&, const ag::Var& t, const ag::Var& xt)>;

// mean_b |eps_b + sigma_t s(alpha_t x_b + sigma_t eps_b, t_b)|^2 (summed over dimensions); x is detached.
// t: one index per row; eps [B, d].
ag::Var dsm_loss(ag::Tape& tp, const ScoreFn& score, const DiklSchedule& sch, const Tensor& x,
                 const std::vector<int>& t, const Tensor& eps, Context& ctx);

// mean_b <c_b, alpha_t x_b + sigma_t eps_b> with the constant cotangent c = w_t (s_phi - s_d) [B, d]: its
// gradient through x = g(z) is the generator's DiKL gradient. x is the generator's output on the tape.
ag::Var generator_surrogate(ag::Tape& tp, const ag::Var& x, const DiklSchedule& sch,
                            const std::vector<int>& t, const Tensor& eps, const Tensor& c, Context& ctx);

}  // namespace nsamp::samplers
