// EGNN family: the pair part of one EGNN layer (samplers/egnn.h) fused per sample, forward and backward. For
// every ordered pair (i, j) of a sample's n particles, with d = x_i - x_j, r = |d|^2 and a = |x0_i - x0_j|^2:
//   m1   = act(hi_i + hj_j + w_r r + w_a a + b1)             (the edge MLP's first layer, hi/hj precomputed
//                                                             per node: W1's h_i and h_j column blocks)
//   m    = act(W2 m1 + b2);  m <- m sigmoid(w_att . m + b_att)  (attention optional)
//   c    = act(Wc1 m + bc1); phi = wc2 . c;  phi <- C tanh(phi)  (tanh optional)
//   x_i' = x_i + sum_j d phi / (sqrt(r + 1e-8) + 1),  agg_i = sum_j m
// The pair messages stay on chip (CUDA: one block per sample, a thread per channel, edges in tiles of
// kEgnnEdgeTile whose hidden vectors live in shared memory; CPU: the forward a thread per group of samples
// whose edges, up to 256 rows at a time, go through GEMMs and vectorised activations; the backward a thread
// per sample; their vectors in per-thread buffers), so the [B n (n - 1), H] edge tensors of the composed ops
// are never written. The backward pass recomputes each tile's forward values and runs the chain rule through
// them, accumulating the node, input and weight gradients (weights: per-thread partial sums on the CPU,
// per-block partial sums on CUDA, then one reduction), so a training step holds no edge tensor either.
#pragma once

#include <cmath>
#include <cstdint>

#include "nsamp/core/hd.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/elementwise.h"

namespace nsamp::kernels {

inline constexpr int kEgnnEdgeTile = 8;

// The layer's weights (tensors of the layer's dtype on the device of x). Wra [H, 2] holds the edge MLP's
// first-layer columns of r and a (w_r, w_a; its h_i and h_j blocks are applied per node by the caller);
// att_w [1, H] and att_b [1] may be undefined (no attention); c2_w [1, H] has no bias.
struct EgnnLayerWeights {
  Tensor Wra, b1, W2, b2, att_w, att_b, c1_w, c1_b, c2_w;
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

// d egnn_coord_weight / dr.
template <class T>
NSAMP_HD_INLINE T egnn_coord_weight_dr(T r) {
  const T s = hd::sqrt(r + T(1e-8)), w = T(1) / (s + T(1));
  return -w * w / (T(2) * s);
}

// d egnn_phi / d raw.
template <class T>
NSAMP_HD_INLINE T egnn_phi_draw(T raw, bool tanh_bounded, T C) {
  if (!tanh_bounded) return T(1);
  return C * activation_derivative(Activation::Tanh, raw);
}

// Index of ordered pair e in 0 .. n (n - 1) - 1 of a sample: i = e / (n - 1), and j runs over the others.
NSAMP_HD_INLINE void egnn_pair(std::int64_t e, int n, int& i, int& j) {
  i = int(e / (n - 1));
  const int jj = int(e % (n - 1));
  j = jj + (jj >= i ? 1 : 0);
}

// r = |x_i - x_j|^2 and a = |x0_i - x0_j|^2 for nodes gi, gj of [*, D] rows.
template <class T>
NSAMP_HD_INLINE void egnn_edge_sq(const T* x, const T* x0, std::int64_t gi, std::int64_t gj, int D, T& r,
                                  T& a) {
  r = a = T(0);
  for (int q = 0; q < D; ++q) {
    const T dq = x[gi * D + q] - x[gj * D + q], eq = x0[gi * D + q] - x0[gj * D + q];
    r += dq * dq;
    a += eq * eq;
  }
}

// x_out [B n, D] = x + the coordinate aggregation; agg [B n, H] = sum_j m_ij (may be undefined: the last
// layer needs none). hi, hj [B n, H]; x, x0 [B n, D] (x0: the network's input coordinates). x_out must not
// alias x.
void egnn_pairs(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx);

// Gradients of egnn_pairs: every tensor written (not accumulated), shaped like its forward counterpart.
// x includes the identity path (x_out = x + ...); Wra, b1, ... are the weights' gradients; att_w/att_b are
// written only when the layer has attention.
struct EgnnLayerGrads {
  Tensor hi, hj, x, x0, Wra, b1, W2, b2, att_w, att_b, c1_w, c1_b, c2_w;
};

// g_x_out [B n, D] and g_agg [B n, H] (may be null: the agg output unused) are the gradients of the outputs.
// The grads' tensors must be allocated with the right shapes (checked).
void egnn_pairs_backward(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                         const EgnnLayerWeights& w, const Tensor& g_x_out, const Tensor* g_agg,
                         EgnnLayerGrads& g, Context& ctx);

namespace detail {
void egnn_pairs_backward_cuda(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                              const EgnnLayerWeights& w, const Tensor& g_x_out, const Tensor* g_agg,
                              EgnnLayerGrads& g, Context& ctx);
void egnn_pairs_cuda(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                     const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
