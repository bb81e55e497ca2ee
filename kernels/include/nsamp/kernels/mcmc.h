// MCMC family: the Metropolis-adjusted Langevin (MALA) proposal and accept/reject, and the accept/reject of
// any move whose log ratio the caller computed (HMC), batched over chains (one chain per row). The target's
// energy and gradient are evaluated between proposal and decision by the caller.
#pragma once

#include "nsamp/core/hd.h"
#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

// log of the Metropolis-Hastings ratio of a MALA move x -> y with step eta, from the row sums
//   fwd = |y - x + eta g_x|^2 (the forward proposal's exponent) and bwd = |x - y + eta g_y|^2:
//   log alpha = -(E_y - E_x) - bwd / (4 eta) + fwd / (4 eta).
template <class T>
NSAMP_HD_INLINE T mala_log_ratio(T e_x, T e_y, T fwd, T bwd, T eta) {
  return -(e_y - e_x) + (fwd - bwd) / (T(4) * eta);
}

// y = x - step * grad + sqrt(2 step) * noise, all [B, d].
void langevin_propose(const Tensor& x, const Tensor& grad, const Tensor& noise, double step, Tensor& y,
                      Context& ctx);

// Per chain b: accept y_b when log_u_b < log alpha_b (a NaN or -inf ratio rejects); an accepted chain copies
// (y, e_y, g_y) into (x, e, grad) and adds 1 to accepted_b (counts are exact up to 2^24 per chain in
// float32). x, grad, y, gy: [B, d]; e, ey, log_u, accepted: [B].
void mala_accept(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey, const Tensor& gy,
                 const Tensor& log_u, double step, Tensor& accepted, Context& ctx);

// The same decision with the log ratio given per chain (log_alpha [B]; HMC: E_x - E_y + |p_0|^2/2 -
// |p_L|^2/2).
void metropolis_accept(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey,
                       const Tensor& gy, const Tensor& log_alpha, const Tensor& log_u, Tensor& accepted,
                       Context& ctx);

namespace detail {
void metropolis_accept_cuda(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey,
                            const Tensor& gy, const Tensor& log_alpha, const Tensor& log_u, Tensor& accepted,
                            Context& ctx);
void langevin_propose_cuda(const Tensor& x, const Tensor& grad, const Tensor& noise, double step, Tensor& y,
                           Context& ctx);
void mala_accept_cuda(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey, const Tensor& gy,
                      const Tensor& log_u, double step, Tensor& accepted, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
