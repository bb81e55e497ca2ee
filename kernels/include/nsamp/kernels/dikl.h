// DiKL family: the per-step numbers of a DiKL training step (dikl.md) computed where the batch lives, so that
// the step makes no host transfer and can be replayed as a CUDA graph: each row's noise level and its
// schedule values, the posterior estimator's stage-A proposals and tilts, the Gumbel-max choice of one
// particle per noisy point, stage B's acceptance with the adaptive MALA step, and the log's numbers.
// Arithmetic in float64, rounded to the batch's dtype where a tensor of that dtype is written, in the order
// the host code used before. The two backends compute the same formulas in the same order; CUDA's log / exp
// and the multiply-adds nvcc fuses can differ from the CPU's in the last bits (mul_add_rn where they must
// not).
#pragma once

#include <cstdint>

#include "nsamp/core/hd.h"
#include "nsamp/core/philox.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/elementwise.h"

namespace nsamp::kernels {

// Noise levels from uniforms u (float64 [B]): t = 1 + min(L - 2, floor(u (L - 1))), uniform on 1 .. L - 1,
// and from the schedule table (float64 [3, L]: alpha, sigma, weight of each level) the columns time (t as a
// number, the score network's input), alpha, sigma and weight, [B, 1] each in the batch's dtype.
void dikl_levels(const Tensor& u, const Tensor& table, Tensor& time, Tensor& alpha, Tensor& sigma,
                 Tensor& weight, Context& ctx);

// Stage A of the posterior estimator for x_t [B, d] with per-row a and s ([B, 1] or [B]): n proposals per
// row, x0 [B n, d] = clamp(x_t / a + (s / a) xi, +-1000) from standard normals xi [B n, d], and the tilt of
// their chains: x_t's rows repeated (xt_rep [B n, d]), a_rep [B n] and c_rep [B n] = 1 / (2 s^2).
void dikl_proposals(const Tensor& xt, const Tensor& a, const Tensor& s, const Tensor& xi, std::int64_t n,
                    Tensor& x0, Tensor& xt_rep, Tensor& a_rep, Tensor& c_rep, Context& ctx);

// The tilt coefficient c = 1 / (2 s^2) per row (s and c: B values of one dtype).
void tilt_coefficient(const Tensor& s, Tensor& c, Context& ctx);

// One particle per group of n consecutive log-weights log_w [G n]: rows[g] = g n + argmax_i (log w + G_i)
// (int32 [G]), with G_i = -log(-log u_i) and u the float64 uniforms fill_uniform_at draws for a [G n] float64
// tensor at (seed, offset). A group whose values are all -inf or NaN keeps its first particle.
void gumbel_max_rows(const Tensor& log_w, std::int64_t n, std::uint64_t seed, philox::Offset offset,
                     Tensor& rows, Context& ctx);

// Stage B's mean acceptance of `steps` MALA steps from the chains' accept counts (accepted [B]): rate
// (float64 [1]) = sum / (steps B). With `adaptive`, the step (float64 [1]) is multiplied by 1.5 when the rate
// exceeds 0.6 and divided by 1.5 when it is below 0.5.
void mala_adapt(const Tensor& accepted, std::int64_t steps, bool adaptive, Tensor& step, Tensor& rate,
                Context& ctx);

// stats[slot] (float64) = value[0], or += with `accumulate`; value is one float value.
void record_scalar(const Tensor& value, Tensor& stats, std::int64_t slot, bool accumulate, Context& ctx);

// ---- element math (host + device)

NSAMP_HD_INLINE int dikl_level(double u, int levels) {
  const double k = hd::floor(u * double(levels - 1));
  return 1 + (k < double(levels - 2) ? int(k) : levels - 2);
}

// The stage-A proposal coefficients of a row: 1 / a and s / a (float64, rounded to T by the caller).
struct ProposalCoef {
  double inv_a, s_over_a, c;
};
NSAMP_HD_INLINE ProposalCoef proposal_coef(double a, double s) { return {1.0 / a, s / a, 0.5 / (s * s)}; }

// One coordinate of a stage-A proposal: the two products rounded to T apart, then summed and clamped.
template <class T>
NSAMP_HD_INLINE T proposal_value(T xt, T xi, const ProposalCoef& c) {
  const T u = xi * T(c.s_over_a);
  return clamp_value(hd::mul_add_rn(xt, T(c.inv_a), u), T(-1000), T(1000));  // never one fused rounding
}

namespace detail {
void dikl_levels_cuda(const Tensor& u, const Tensor& table, Tensor& time, Tensor& alpha, Tensor& sigma,
                      Tensor& weight, Context& ctx);
void dikl_proposals_cuda(const Tensor& xt, const Tensor& a, const Tensor& s, const Tensor& xi, std::int64_t n,
                         Tensor& x0, Tensor& xt_rep, Tensor& a_rep, Tensor& c_rep, Context& ctx);
void tilt_coefficient_cuda(const Tensor& s, Tensor& c, Context& ctx);
void gumbel_max_rows_cuda(const Tensor& log_w, std::int64_t n, std::uint64_t seed, philox::Offset offset,
                          Tensor& rows, Context& ctx);
void mala_adapt_cuda(const Tensor& accepted, std::int64_t steps, bool adaptive, Tensor& step, Tensor& rate,
                     Context& ctx);
void record_scalar_cuda(const Tensor& value, Tensor& stats, std::int64_t slot, bool accumulate, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
