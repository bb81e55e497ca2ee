// Transport family: the dense pairwise-cost kernels behind the sample-set metrics of
// ../shared/spec/metrics.md (x-W2, Sinkhorn, MMD) and the Jacobi auction rounds that solve assignment
// problems on the device.
//
// Sinkhorn runs in the log domain on potentials: with a cost C [N, M], the row update is
//   f_i = eps * (log a_i - LSE_j((g_j - C_ij) / eps)),
// the column update is the same on C^T, and the plan is P_ij = exp((f_i + g_j - C_ij) / eps).
#pragma once

#include <cstdint>

#include "nsamp/core/hd.h"
#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

enum class PairCost { SqEuclidean, Euclidean };

const char* pair_cost_name(PairCost c);

// out [N, M] = |x_i - y_j|^2 (or its square root) for x [N, d], y [M, d]. Differences are formed directly
// (no |x|^2 + |y|^2 - 2 x.y), so small distances between large vectors keep their precision.
void pairwise_cost(const Tensor& x, const Tensor& y, PairCost cost, Tensor& out, Context& ctx);

// f [N] = eps * (log_a - LSE_j((g_j - C_ij) / eps)) for C [N, M], g [M]; log_a is the same for every row
// (uniform weights). A row whose LSE is -inf (all g_j = -inf) gives +inf.
void sinkhorn_potential(const Tensor& cost, const Tensor& g, double log_a, double eps, Tensor& f,
                        Context& ctx);

// With P_ij = exp((f_i + g_j - C_ij) / eps): row_mass [N] = sum_j P_ij and row_cost [N] = sum_j P_ij C_ij.
void sinkhorn_plan_rows(const Tensor& cost, const Tensor& f, const Tensor& g, double eps, Tensor& row_mass,
                        Tensor& row_cost, Context& ctx);

// out [N] = LSE_j(-scale_i |x_i - y_j|^2) for x [N, d], y [M, d], scale [N] (>= 0): the log of a Gaussian
// kernel sum without the N x M matrix (IW-SM's buffer density log p^B_t, up to its constants). M = 0 gives
// -inf.
void log_kernel_sum(const Tensor& x, const Tensor& y, const Tensor& scale, Tensor& out, Context& ctx);

// ---- auction (min-cost assignment, Bertsekas' forward auction in Jacobi form) ---------------------------
//
// Persons are rows, objects are columns of a square cost [n, n] (float32 or float64). Prices are float64 and
// never negative (they start at 0 and only rise), so a bid's IEEE bit pattern orders like its value: the
// device resolves competing bids with a 64-bit atomicMax on those bits, then the lowest bidder index among
// equal bids by atomicMin. A round therefore has one result whatever the thread order, and the CPU twin
// reproduces it exactly.
// Bidder's scan of the values w_j = c_ij + p_j: the best value w1, its lowest column j1 and the second-best
// value w2 of the multiset (w2 = w1 on ties). One push per column in increasing j.
struct BestTwo {
  double w1, w2;
  std::int32_t j1;
  static NSAMP_HD_INLINE BestTwo init() { return {hd::infinity<double>(), hd::infinity<double>(), 0}; }
  NSAMP_HD_INLINE void push(double w, std::int32_t j) {
    if (w < w1) {
      w2 = w1;
      w1 = w;
      j1 = j;
    } else if (w < w2) {
      w2 = w;
    }
  }
  // The bid that makes j1 exactly eps worse than the runner-up: p_j1 + (w2 - w1) + eps (a single column
  // has no runner-up: its bid is p_j1 + eps).
  NSAMP_HD_INLINE double bid(double p_j1, double eps, std::int64_t n) const {
    return p_j1 + ((n == 1 ? w1 : w2) - w1) + eps;
  }
};

struct AuctionState {
  Tensor prices;      // f64 [n], kept across epsilon phases
  Tensor col_of_row;  // i32 [n], -1 = unassigned
  Tensor row_of_col;  // i32 [n], -1 = unassigned
  Tensor bidders;     // i32 [n], the first `count` entries are the unassigned persons (any order)
  Tensor bid_col;     // i32 [n], scratch: each bidder's chosen object
  Tensor bid;         // f64 [n], scratch: each bidder's bid
  Tensor best;        // f64 [n], scratch: highest bid per object (0 = none)
  Tensor winner;      // i32 [n], scratch: lowest bidder index holding the highest bid
  Tensor count;       // i32 [1], number of unassigned persons after the round
};

// Allocates the state for n persons on the context's device with zero prices.
AuctionState make_auction_state(std::int64_t n, Context& ctx);
// Starts an epsilon phase: every person unassigned and bidding; prices are kept.
void auction_begin_phase(AuctionState& s, Context& ctx);
// One round: every bidder i bids for j1 = argmin_j (c_ij + p_j) the price p_j1 + (w2 - w1) + eps, where w1,
// w2 are its best and second-best values; each object takes its highest bid, evicting its owner. Returns the
// number of persons left unassigned (one small read from the device).
std::int64_t auction_round(const Tensor& cost, double eps, std::int64_t n_bidders, AuctionState& s,
                           Context& ctx);

namespace detail {
void log_kernel_sum_cuda(const Tensor& x, const Tensor& y, const Tensor& scale, Tensor& out, Context& ctx);
void pairwise_cost_cuda(const Tensor& x, const Tensor& y, PairCost cost, Tensor& out, Context& ctx);
void sinkhorn_potential_cuda(const Tensor& cost, const Tensor& g, double log_a, double eps, Tensor& f,
                             Context& ctx);
void sinkhorn_plan_rows_cuda(const Tensor& cost, const Tensor& f, const Tensor& g, double eps,
                             Tensor& row_mass, Tensor& row_cost, Context& ctx);
void auction_begin_phase_cuda(AuctionState& s, Context& ctx);
void auction_round_cuda(const Tensor& cost, double eps, std::int64_t n_bidders, AuctionState& s,
                        Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
