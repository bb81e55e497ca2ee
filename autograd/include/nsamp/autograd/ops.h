// Differentiable ops. Each computes its forward pass with the kernel families and, when the tape records and
// an input requires a gradient, pushes one node with its backward rule. Shapes follow the kernels'
// conventions: broadcasting of a row vector [C], a column vector [R, 1] or a scalar against the other
// operand; "rows" are the 2-D view's rows (all leading dimensions); reductions to a scalar return shape []
// (one element).
#pragma once

#include <vector>

#include "nsamp/autograd/tape.h"
#include "nsamp/kernels/elementwise.h"

namespace nsamp::ag {

using kernels::Activation;
using kernels::UnaryOp;

// ---- arithmetic -------------------------------------------------------------------------------------------
Var add(Tape& t, const Var& a, const Var& b);
Var sub(Tape& t, const Var& a, const Var& b);
Var mul(Tape& t, const Var& a, const Var& b);
Var div(Tape& t, const Var& a, const Var& b);
Var affine(Tape& t, const Var& a, double alpha, double beta);  // alpha * a + beta
inline Var scale(Tape& t, const Var& a, double s) { return affine(t, a, s, 0.0); }
inline Var add_scalar(Tape& t, const Var& a, double s) { return affine(t, a, 1.0, s); }
inline Var neg(Tape& t, const Var& a) { return affine(t, a, -1.0, 0.0); }

// ---- pointwise functions
// ------------------------------------------------------------------------------------
Var unary(Tape& t, UnaryOp op, const Var& x);
inline Var exp(Tape& t, const Var& x) { return unary(t, UnaryOp::Exp, x); }
inline Var log(Tape& t, const Var& x) { return unary(t, UnaryOp::Log, x); }
inline Var sqrt(Tape& t, const Var& x) { return unary(t, UnaryOp::Sqrt, x); }
inline Var square(Tape& t, const Var& x) { return unary(t, UnaryOp::Square, x); }
inline Var sin(Tape& t, const Var& x) { return unary(t, UnaryOp::Sin, x); }
inline Var cos(Tape& t, const Var& x) { return unary(t, UnaryOp::Cos, x); }
Var activation(Tape& t, Activation act, const Var& x);
Var clamp(Tape& t, const Var& x, double lo, double hi);

// ---- linear algebra
// ----------------------------------------------------------------------------------------- op(a) op(b) for
// 2-D a, b.
Var matmul(Tape& t, const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);
// act(x W^T + bias) as one node: one GEMM and one fused bias+activation pass forward; the activation
// derivative, two GEMMs and one column sum backward. bias may be undefined.
Var linear(Tape& t, const Var& x, const Var& W, const Var& bias, Activation act = Activation::Identity);
// A whole multilayer perceptron as one node: layers l = 0..L-1 compute act_l(h W_l^T + b_l) with `hidden` on
// all layers but the last and `output` on the last. biases[l] may be undefined.
Var mlp(Tape& t, const Var& x, const std::vector<Var>& weights, const std::vector<Var>& biases,
        Activation hidden, Activation output = Activation::Identity);

// ---- shape
// ----------------------------------------------------------------------------------------------------
Var reshape(Tape& t, const Var& x, const Shape& shape);
Var concat_cols(Tape& t, const std::vector<Var>& parts);  // along the last dimension, equal rows
std::vector<Var> split_cols(Tape& t, const Var& x, const std::vector<std::int64_t>& widths);

// ---- reductions
// ----------------------------------------------------------------------------------------------
Var sum(Tape& t, const Var& x);             // -> []
Var mean(Tape& t, const Var& x);            // -> []
Var sum_rows(Tape& t, const Var& x);        // -> [R]
Var mean_rows(Tape& t, const Var& x);       // -> [R]
Var logsumexp_rows(Tape& t, const Var& x);  // -> [R]
Var sq_norm_rows(Tape& t, const Var& x);    // -> [R]

// ---- indexing
// ------------------------------------------------------------------------------------------------- out[i] =
// x[idx[i]] (idx int32 [M] on x's device).
Var gather_rows(Tape& t, const Var& x, const Tensor& idx);
// out [n, C] = zeros, then out[idx[i]] += src[i].
Var index_add_rows(Tape& t, const Var& src, const Tensor& idx, std::int64_t n);
// The rows of x whose mask entry is true, in order. The mask lives on the host; building the index is a
// host-to-device copy.
Var masked_select_rows(Tape& t, const Var& x, const std::vector<bool>& mask);

}  // namespace nsamp::ag
