// EGNN family: the pair part of one EGNN layer (samplers/egnn.h) fused per sample, forward only. For every
// ordered pair (i, j) of a sample's n particles, with d = x_i - x_j, r = |d|^2 and a = |x0_i - x0_j|^2:
//   m1   = act(hi_i + hj_j + w_r r + w_a a + b1)             (the edge MLP's first layer, hi/hj precomputed
//                                                             per node: W1's h_i and h_j column blocks)
//   m    = act(W2 m1 + b2);  m <- m sigmoid(w_att . m + b_att)  (attention optional)
//   c    = act(Wc1 m + bc1); phi = wc2 . c;  phi <- C tanh(phi)  (tanh optional)
//   x_i' = x_i + sum_j d phi / (sqrt(r + 1e-8) + 1),  agg_i = sum_j m
// The pair messages stay on chip (CUDA: one block per sample, a thread per channel, edges in tiles of
// kEgnnEdgeTile whose hidden vectors live in shared memory; CPU: a thread per sample, the vectors on the
// stack), so the [B n (n - 1), H] edge tensors of the composed ops are never written. This is the no-grad
// path (sampling loops, the score network without a tape); training differentiates the composed ops, which
// compute the same function.
#pragma once

#include <cmath>
#include <cstdint>

#include "nsamp/core/hd.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/elementwise.h"

namespace nsamp::kernels {

inline constexpr int kEgnnEdgeTile = 8;

// The layer's weights (tensors of the layer's dtype on the device of x). W1 [H, 2H + 2] is the edge MLP's
// whole first weight (only its last two columns, w_r and w_a, are read here); att_w [1, H] and att_b [1] may
// be undefined (no attention); c2_w [1, H] has no bias.
struct EgnnLayerWeights {
  Tensor W1, b1, W2, b2, att_w, att_b, c1_w, c1_b, c2_w;
  Activation act = Activation::SiLU;
  bool tanh = true;
  double coords_range = 1;  // C (already divided by the layer count)
};

// Element math shared by both backends.
template <class T>
NSAMP_HD_INLINE T egnn_coord_weight(T r) {
  return T(1) / (hd::sqrt(r + T(1e-8)) + T(1));
}

template <class T>
NSAMP_HD_INLINE T egnn_phi(T raw, bool tanh_bounded, T C) {
  return tanh_bounded ? C * hd::tanh(raw) : raw;
}

// Index of ordered pair e in 0 .. n (n - 1) - 1 of a sample: i = e / (n - 1), and j runs over the others.
NSAMP_HD_INLINE void egnn_pair(std::int64_t e, int n, int& i, int& j) {
  i = int(e / (n - 1));
  const int jj = int(e % (n - 1));
  j = jj + (jj >= i ? 1 : 0);
}

// x_out [B n, D] = x + the coordinate aggregation; agg [B n, H] = sum_j m_ij (may be undefined: the last
// layer needs none). hi, hj [B n, H]; x, x0 [B n, D] (x0: the network's input coordinates). x_out must not
// alias x.
void egnn_pairs(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx);

namespace detail {
void egnn_pairs_cuda(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                     const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
