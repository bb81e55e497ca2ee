// Reduction family on the 2-D view [R, C]: sums, means and maxima over each row or each column, squared row
// norms, and the numerically stable row-wise log-sum-exp and softmax.
//
// Conventions for empty reductions: sum 0, mean NaN, max -inf, squared norm 0, log-sum-exp -inf.
// NaN propagates through every reduction. Log-sum-exp of a row of -inf is -inf; a row holding +inf gives
// +inf. Softmax of a row whose log-sum-exp is +-inf is NaN (there is no distribution to return).
#pragma once

#include "nsamp/core/hd.h"
#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

enum class Reduce { Sum, Mean, Max, SqNorm, LogSumExp };

const char* reduce_name(Reduce r);

// ---- element math (host + device): monoids with init / push / merge / result ---------------------------

template <class T>
struct SumAcc {
  T s;
  static NSAMP_HD_INLINE SumAcc init() { return {T(0)}; }
  NSAMP_HD_INLINE void push(T x) { s += x; }
  NSAMP_HD_INLINE void merge(const SumAcc& o) { s += o.s; }
};

template <class T>
struct SqSumAcc {
  T s;
  static NSAMP_HD_INLINE SqSumAcc init() { return {T(0)}; }
  NSAMP_HD_INLINE void push(T x) { s += x * x; }
  NSAMP_HD_INLINE void merge(const SqSumAcc& o) { s += o.s; }
};

template <class T>
struct MaxAcc {
  T m;
  static NSAMP_HD_INLINE MaxAcc init() { return {-hd::infinity<T>()}; }
  // NaN wins: once m is NaN it stays NaN, and a NaN x replaces m.
  NSAMP_HD_INLINE void push(T x) { m = (x > m || hd::is_nan(x)) ? (hd::is_nan(m) ? m : x) : m; }
  NSAMP_HD_INLINE void merge(const MaxAcc& o) { push(o.m); }
};

// Online log-sum-exp: the running maximum m and the sum s of exp(x - m).
template <class T>
struct LseAcc {
  T m, s;
  static NSAMP_HD_INLINE LseAcc init() { return {-hd::infinity<T>(), T(0)}; }
  NSAMP_HD_INLINE void push(T x) {
    if (x > m) {
      s = s * hd::exp_weight(m - x) + T(1);  // exp(-inf) = 0 covers the first element
      m = x;
    } else if (x == m) {
      if (x != -hd::infinity<T>()) s += T(1);  // also keeps +inf rows finite in s
    } else if (x == x) {
      s += hd::exp_weight(x - m);
    } else {  // NaN
      m = x;
      s = x;
    }
  }
  NSAMP_HD_INLINE void merge(const LseAcc& o) {
    if (hd::is_nan(m) || o.m == -hd::infinity<T>()) return;
    if (hd::is_nan(o.m) || m == -hd::infinity<T>()) {
      *this = o;
      return;
    }
    if (o.m > m) {
      s = s * hd::exp_weight(m - o.m) + o.s;
      m = o.m;
    } else if (o.m == m) {
      s += o.s;
    } else {
      s += o.s * hd::exp_weight(o.m - m);
    }
  }
  NSAMP_HD_INLINE T result() const {
    if (m == -hd::infinity<T>() || m == hd::infinity<T>() || hd::is_nan(m)) return m;
    return m + hd::log(s);
  }
};

// One softmax entry from its row's log-sum-exp: NaN for the whole row when there is no distribution (lse
// +-inf).
template <class T>
NSAMP_HD_INLINE T softmax_entry(T x, T lse) {
  return (lse == hd::infinity<T>() || lse == -hd::infinity<T>()) ? hd::quiet_nan<T>() : hd::exp(x - lse);
}

// ---- ops -------------------------------------------------------------------------------------------------

// out[R] (or any shape with R elements) = reduction of each row of x.
void reduce_rows(Reduce r, const Tensor& x, Tensor& out, Context& ctx);
// out[C] (or any shape with C elements) = reduction of each column of x. LogSumExp is not offered per column.
void reduce_cols(Reduce r, const Tensor& x, Tensor& out, Context& ctx);

inline void row_sum(const Tensor& x, Tensor& out, Context& ctx) { reduce_rows(Reduce::Sum, x, out, ctx); }
inline void row_mean(const Tensor& x, Tensor& out, Context& ctx) { reduce_rows(Reduce::Mean, x, out, ctx); }
inline void row_max(const Tensor& x, Tensor& out, Context& ctx) { reduce_rows(Reduce::Max, x, out, ctx); }
inline void row_sq_norm(const Tensor& x, Tensor& out, Context& ctx) {
  reduce_rows(Reduce::SqNorm, x, out, ctx);
}
inline void row_logsumexp(const Tensor& x, Tensor& out, Context& ctx) {
  reduce_rows(Reduce::LogSumExp, x, out, ctx);
}
inline void col_sum(const Tensor& x, Tensor& out, Context& ctx) { reduce_cols(Reduce::Sum, x, out, ctx); }
inline void col_mean(const Tensor& x, Tensor& out, Context& ctx) { reduce_cols(Reduce::Mean, x, out, ctx); }
inline void col_max(const Tensor& x, Tensor& out, Context& ctx) { reduce_cols(Reduce::Max, x, out, ctx); }

// y = softmax of each row of x (y may alias x); one pass for the log-sum-exp, one for the output.
void row_softmax(const Tensor& x, Tensor& y, Context& ctx);

namespace detail {
void reduce_rows_cuda(Reduce r, const Tensor& x, Tensor& out, Context& ctx);
void reduce_cols_cuda(Reduce r, const Tensor& x, Tensor& out, Context& ctx);
void row_softmax_cuda(const Tensor& x, Tensor& y, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
