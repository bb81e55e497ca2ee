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

// The schedule at each row's noise index as columns [B, 1] of the batch's dtype: time (the index as a number,
// the score network's input), alpha, sigma and weight.
struct DiklLevels {
  Tensor time, alpha, sigma, weight;
};
// The schedule as float64 [3, levels] (alpha, sigma, weight) on the context's device, for draw_levels.
Tensor schedule_table(const DiklSchedule& sch, Context& ctx);
// B indices drawn uniformly from 1 .. levels - 1 (float64 uniforms from Context::draw_rng) and their
// schedule values, on the device with no host transfer (kernels::dikl_levels).
DiklLevels draw_levels(const Tensor& table, std::int64_t B, DType dtype, Context& ctx);
// The same columns for given indices (each checked to lie in 1 .. levels - 1).
DiklLevels levels_at(const DiklSchedule& sch, const std::vector<int>& t, DType dtype, Context& ctx);

// s(x_t, t) on the tape: t [B, 1] (the integer index as a float), x_t [B, d].
using ScoreFn = std::function<ag::Var(ag::Tape&, const ag::Var& t, const ag::Var& xt)>;

// mean_b |eps_b + sigma_t s(alpha_t x_b + sigma_t eps_b, t_b)|^2 (summed over dimensions); x is detached.
// t: one index per row; eps [B, d].
ag::Var dsm_loss(ag::Tape& tp, const ScoreFn& score, const DiklSchedule& sch, const Tensor& x,
                 const std::vector<int>& t, const Tensor& eps, Context& ctx);
ag::Var dsm_loss(ag::Tape& tp, const ScoreFn& score, const Tensor& x, const DiklLevels& levels,
                 const Tensor& eps);

// The schedule's values at the rows' noise indices (each checked to lie in 1 .. levels - 1).
std::vector<double> at_levels(const std::vector<double>& table, const std::vector<int>& t);

// x_t = alpha_t x + sigma_t eps on the tape (x may carry gradients; eps [B, d] is a constant).
ag::Var diffuse(ag::Tape& tp, const ag::Var& x, const DiklSchedule& sch, const std::vector<int>& t,
                const Tensor& eps, Context& ctx);
ag::Var diffuse(ag::Tape& tp, const ag::Var& x, const DiklLevels& levels, const Tensor& eps);

// mean_b <c_b, x_t,b> with the constant cotangent c = w_t (s_phi - s_d) [B, d]: with x_t = diffuse(g(z)), its
// gradient through the generator is DiKL's generator gradient E[w a (s_phi - s_d)^T dg/dtheta].
ag::Var generator_surrogate(ag::Tape& tp, const ag::Var& xt, const Tensor& c);

}  // namespace nsamp::samplers
