// Forward passes and backward rules of the differentiable ops.
#include "nsamp/autograd/ops.h"

#include "nsamp/core/fill.h"
#include "nsamp/kernels/gemm.h"
#include "nsamp/kernels/index.h"
#include "nsamp/kernels/reduce.h"

namespace nsamp::ag {

namespace k = nsamp::kernels;

namespace {

Tensor empty_like(const Tensor& t, Context& ctx) {
  return Tensor::empty(t.shape(), t.dtype(), t.device(), ctx);
}
Tensor empty_as(const Shape& s, const Tensor& like, Context& ctx) {
  return Tensor::empty(s, like.dtype(), like.device(), ctx);
}

// How an operand broadcasts against an output (the kernels' rule, in the same order).
enum class Form { Same, Scalar, Row, Col };

Form form_of(const char* op, const Tensor& x, const Shape& out) {
  if (x.shape() == out) return Form::Same;
  if (x.numel() == 1) return Form::Scalar;
  if (x.numel() == out.cols() && x.cols() == out.cols() && x.rows() == 1) return Form::Row;
  if (x.cols() == 1 && x.rows() == out.rows() && x.rank() >= 2) return Form::Col;
  NSAMP_FAIL(op, ": ", x.desc(), " does not broadcast to ", out.str());
}

// The gradient of a broadcast operand: g summed over the broadcast axes, shaped like the operand.
Tensor sum_to(const Tensor& g, const Tensor& operand, Form f, Context& ctx) {
  Tensor out = empty_like(operand, ctx);
  switch (f) {
    case Form::Same:
      copy(g, out, ctx);
      break;
    case Form::Scalar:
      k::row_sum(g.reshape(Shape{1, g.numel()}), out, ctx);
      break;
    case Form::Row:
      k::col_sum(g.reshape(Shape{g.rows(), g.cols()}), out, ctx);
      break;
    case Form::Col:
      k::row_sum(g, out, ctx);
      break;
  }
  return out;
}

Shape broadcast_shape(const char* op, const Var& a, const Var& b) {
  const Tensor &x = a.value(), &y = b.value();
  NSAMP_CHECK(x.dtype() == y.dtype() && x.device() == y.device(), op, ": operands differ: ", x.desc(),
              " and ", y.desc());
  const Shape& out = x.numel() >= y.numel() ? x.shape() : y.shape();
  try {
    (void)form_of(op, x, out);
    (void)form_of(op, y, out);
  } catch (const Error&) {
    NSAMP_FAIL(op, ": shapes ", x.shape().str(), " and ", y.shape().str(),
               " do not broadcast (one must be the ",
               "other's shape, a row vector [C], a column vector [R, 1] or a scalar)");
  }
  return out;
}

}  // namespace

// ---- arithmetic -------------------------------------------------------------------------------------------

Var add(Tape& t, const Var& a, const Var& b) {
  Context& ctx = t.ctx();
  const Shape s = broadcast_shape("add", a, b);
  Tensor out = empty_as(s, a.value(), ctx);
  k::add(a.value(), b.value(), out, ctx);
  const Form fa = form_of("add", a.value(), s), fb = form_of("add", b.value(), s);
  return t.record("add", {a, b}, out, [ta = a.value(), tb = b.value(), fa, fb](NodeGrads& g) {
    if (g.needs(0)) g.add(0, sum_to(g.out(), ta, fa, g.ctx()));
    if (g.needs(1)) g.add(1, sum_to(g.out(), tb, fb, g.ctx()));
  });
}

Var sub(Tape& t, const Var& a, const Var& b) {
  Context& ctx = t.ctx();
  const Shape s = broadcast_shape("sub", a, b);
  Tensor out = empty_as(s, a.value(), ctx);
  k::sub(a.value(), b.value(), out, ctx);
  const Form fa = form_of("sub", a.value(), s), fb = form_of("sub", b.value(), s);
  return t.record("sub", {a, b}, out, [ta = a.value(), tb = b.value(), fa, fb](NodeGrads& g) {
    if (g.needs(0)) g.add(0, sum_to(g.out(), ta, fa, g.ctx()));
    if (g.needs(1)) {
      Tensor gb = sum_to(g.out(), tb, fb, g.ctx());
      k::affine(gb, -1.0, 0.0, gb, g.ctx());
      g.add(1, gb);
    }
  });
}

Var mul(Tape& t, const Var& a, const Var& b) {
  Context& ctx = t.ctx();
  const Shape s = broadcast_shape("mul", a, b);
  Tensor out = empty_as(s, a.value(), ctx);
  k::mul(a.value(), b.value(), out, ctx);
  const Form fa = form_of("mul", a.value(), s), fb = form_of("mul", b.value(), s);
  return t.record("mul", {a, b}, out, [ta = a.value(), tb = b.value(), fa, fb](NodeGrads& g) {
    Context& c = g.ctx();
    // A fresh product per input: a same-shaped operand takes it as its gradient without a copy.
    if (g.needs(0)) {
      Tensor ga = empty_like(g.out(), c);
      k::mul(g.out(), tb, ga, c);
      g.add(0, fa == Form::Same ? ga : sum_to(ga, ta, fa, c));
    }
    if (g.needs(1)) {
      Tensor gb = empty_like(g.out(), c);
      k::mul(g.out(), ta, gb, c);
      g.add(1, fb == Form::Same ? gb : sum_to(gb, tb, fb, c));
    }
  });
}

Var div(Tape& t, const Var& a, const Var& b) {
  Context& ctx = t.ctx();
  const Shape s = broadcast_shape("div", a, b);
  Tensor out = empty_as(s, a.value(), ctx);
  k::div(a.value(), b.value(), out, ctx);
  const Form fa = form_of("div", a.value(), s), fb = form_of("div", b.value(), s);
  return t.record("div", {a, b}, out, [ta = a.value(), tb = b.value(), y = out, fa, fb](NodeGrads& g) {
    Context& c = g.ctx();
    Tensor tmp = empty_like(g.out(), c);
    k::div(g.out(), tb, tmp, c);  // g / b
    if (g.needs(1)) {             // d(a/b)/db = -(a/b) / b
      Tensor tb_grad = empty_like(g.out(), c);
      k::mul(tmp, y, tb_grad, c);
      k::affine(tb_grad, -1.0, 0.0, tb_grad, c);
      g.add(1, sum_to(tb_grad, tb, fb, c));
    }
    if (g.needs(0)) g.add(0, fa == Form::Same ? tmp : sum_to(tmp, ta, fa, c));
  });
}

Var affine(Tape& t, const Var& a, double alpha, double beta) {
  Tensor out = empty_like(a.value(), t.ctx());
  k::affine(a.value(), alpha, beta, out, t.ctx());
  return t.record("affine", {a}, out, [alpha](NodeGrads& g) {
    Tensor ga = empty_like(g.out(), g.ctx());
    k::affine(g.out(), alpha, 0.0, ga, g.ctx());
    g.add(0, ga);
  });
}

// ---- pointwise functions
// ------------------------------------------------------------------------------------

Var unary(Tape& t, UnaryOp op, const Var& x) {
  Tensor out = empty_like(x.value(), t.ctx());
  k::unary_forward(op, x.value(), out, t.ctx());
  return t.record(k::unary_op_name(op), {x}, out, [op, tx = x.value()](NodeGrads& g) {
    Tensor gx = empty_like(tx, g.ctx());
    k::unary_backward(op, tx, g.out(), gx, g.ctx());
    g.add(0, gx);
  });
}

Var activation(Tape& t, Activation act, const Var& x) {
  Tensor out = empty_like(x.value(), t.ctx());
  k::activation_forward(act, x.value(), out, t.ctx());
  return t.record(k::activation_name(act), {x}, out, [act, tx = x.value()](NodeGrads& g) {
    Tensor gx = empty_like(tx, g.ctx());
    k::activation_backward(act, tx, g.out(), gx, g.ctx());
    g.add(0, gx);
  });
}

Var clamp(Tape& t, const Var& x, double lo, double hi) {
  NSAMP_CHECK(lo <= hi, "clamp: lo ", lo, " > hi ", hi);
  Tensor out = empty_like(x.value(), t.ctx());
  k::clamp_forward(x.value(), lo, hi, out, t.ctx());
  return t.record("clamp", {x}, out, [lo, hi, tx = x.value()](NodeGrads& g) {
    Tensor gx = empty_like(tx, g.ctx());
    k::clamp_backward(tx, lo, hi, g.out(), gx, g.ctx());
    g.add(0, gx);
  });
}

// ---- linear algebra
// -----------------------------------------------------------------------------------------

Var matmul(Tape& t, const Var& a, const Var& b, bool ta, bool tb) {
  const Tensor &A = a.value(), &B = b.value();
  NSAMP_CHECK(A.rank() == 2 && B.rank() == 2, "matmul: needs 2-D operands, got ", A.desc(), " and ",
              B.desc());
  const std::int64_t M = ta ? A.dim(1) : A.dim(0), N = tb ? B.dim(0) : B.dim(1);
  Tensor out = empty_as(Shape{M, N}, A, t.ctx());
  k::gemm(A, ta, B, tb, out, 1.0, 0.0, t.ctx());
  return t.record("matmul", {a, b}, out, [A, B, ta, tb](NodeGrads& g) {
    Context& c = g.ctx();
    if (g.needs(0)) {
      Tensor gA = empty_like(A, c);
      if (!ta)
        k::gemm(g.out(), false, B, !tb, gA, 1.0, 0.0, c);
      else
        k::gemm(B, tb, g.out(), true, gA, 1.0, 0.0, c);
      g.add(0, gA);
    }
    if (g.needs(1)) {
      Tensor gB = empty_like(B, c);
      if (!tb)
        k::gemm(A, !ta, g.out(), false, gB, 1.0, 0.0, c);
      else
        k::gemm(g.out(), true, A, ta, gB, 1.0, 0.0, c);
      g.add(1, gB);
    }
  });
}

namespace {

struct LayerSaved {
  Tensor input, pre;  // h_l and z_l = h_l W^T + b
};

// act(h W^T + b) into fresh tensors; returns (pre-activation, activation); they are one buffer for identity.
std::pair<Tensor, Tensor> layer_forward(const Tensor& h, const Tensor& W, const Tensor& b, Activation act,
                                        Context& ctx) {
  NSAMP_CHECK(W.rank() == 2 && h.rank() == 2 && h.dim(1) == W.dim(1), "linear: input ", h.desc(),
              " does not match the weight ", W.desc(), " ([out, in])");
  Tensor z = empty_as(Shape{h.dim(0), W.dim(0)}, h, ctx);
  k::gemm(h, false, W, true, z, 1.0, 0.0, ctx);
  if (act == Activation::Identity) {
    if (b.defined()) k::add(z, b, z, ctx);
    return {z, z};
  }
  Tensor a = empty_like(z, ctx);
  if (b.defined())
    k::bias_activation_forward(act, b, z, a, ctx);
  else
    k::activation_forward(act, z, a, ctx);
  return {z, a};
}

// From the gradient of a layer's output: the gradients of its input, weight and bias.
void layer_backward(const Tensor& g_out, const LayerSaved& s, const Tensor& W, Activation act,
                    bool need_input, Tensor* g_in, Tensor* gW, Tensor* gb, Context& ctx) {
  Tensor gz = g_out;
  if (act != Activation::Identity) {
    gz = empty_like(g_out, ctx);
    k::activation_backward(act, s.pre, g_out, gz, ctx);
  }
  if (gW) {
    *gW = empty_like(W, ctx);
    k::gemm(gz, true, s.input, false, *gW, 1.0, 0.0, ctx);
  }
  if (gb) {
    *gb = Tensor::empty(Shape{W.dim(0)}, W.dtype(), W.device(), ctx);
    k::col_sum(gz, *gb, ctx);
  }
  if (need_input) {
    *g_in = empty_like(s.input, ctx);
    k::gemm(gz, false, W, false, *g_in, 1.0, 0.0, ctx);
  }
}

}  // namespace

Var linear(Tape& t, const Var& x, const Var& W, const Var& bias, Activation act) {
  NSAMP_CHECK(W.defined(), "linear: undefined weight");
  const Tensor b = bias.defined() ? bias.value() : Tensor();
  if (b.defined())
    NSAMP_CHECK(b.numel() == W.value().dim(0), "linear: bias ", b.desc(), " does not match the weight ",
                W.value().desc());
  auto [z, a] = layer_forward(x.value(), W.value(), b, act, t.ctx());
  std::vector<Var> inputs{x, W};
  if (bias.defined()) inputs.push_back(bias);
  const bool has_bias = bias.defined();
  LayerSaved saved{x.value(), z};
  return t.record("linear", inputs, a, [saved, Wt = W.value(), act, has_bias](NodeGrads& g) {
    Tensor gx, gW, gb;
    layer_backward(g.out(), saved, Wt, act, g.needs(0), &gx, g.needs(1) ? &gW : nullptr,
                   has_bias && g.needs(2) ? &gb : nullptr, g.ctx());
    g.add(0, gx);
    g.add(1, gW);
    if (has_bias) g.add(2, gb);
  });
}

Var mlp(Tape& t, const Var& x, const std::vector<Var>& weights, const std::vector<Var>& biases,
        Activation hidden, Activation output) {
  const std::size_t L = weights.size();
  NSAMP_CHECK(L >= 1 && biases.size() == L, "mlp: ", L, " weights and ", biases.size(), " biases");
  std::vector<LayerSaved> saved(L);
  std::vector<Activation> acts(L, hidden);
  acts[L - 1] = output;
  std::vector<Tensor> Ws(L);
  std::vector<bool> has_bias(L);
  std::vector<Var> inputs{x};
  Tensor h = x.value();
  for (std::size_t l = 0; l < L; ++l) {
    NSAMP_CHECK(weights[l].defined(), "mlp: weight ", l, " is undefined");
    Ws[l] = weights[l].value();
    has_bias[l] = biases[l].defined();
    auto [z, a] = layer_forward(h, Ws[l], has_bias[l] ? biases[l].value() : Tensor(), acts[l], t.ctx());
    saved[l] = {h, z};
    h = a;
    inputs.push_back(weights[l]);
    if (has_bias[l]) inputs.push_back(biases[l]);
  }
  return t.record("mlp", inputs, h, [saved, Ws, acts, has_bias](NodeGrads& g) {
    // Input slots: 0 = x, then W_0, [b_0], W_1, [b_1], ...
    std::vector<std::size_t> w_slot(Ws.size()), b_slot(Ws.size());
    std::size_t slot = 1;
    for (std::size_t l = 0; l < Ws.size(); ++l) {
      w_slot[l] = slot++;
      b_slot[l] = has_bias[l] ? slot++ : 0;
    }
    Tensor grad = g.out();
    for (std::size_t l = Ws.size(); l-- > 0;) {
      const bool need_in = l > 0 || g.needs(0);
      Tensor gin, gW, gb;
      layer_backward(grad, saved[l], Ws[l], acts[l], need_in, &gin, g.needs(w_slot[l]) ? &gW : nullptr,
                     has_bias[l] && g.needs(b_slot[l]) ? &gb : nullptr, g.ctx());
      g.add(w_slot[l], gW);
      if (has_bias[l]) g.add(b_slot[l], gb);
      if (l == 0) g.add(0, gin);
      grad = gin;
    }
  });
}

// ---- shape
// ----------------------------------------------------------------------------------------------------

Var reshape(Tape& t, const Var& x, const Shape& shape) {
  Tensor out = x.value().reshape(shape);
  return t.record("reshape", {x}, out,
                  [xs = x.value().shape()](NodeGrads& g) { g.add(0, g.out().clone(g.ctx()).reshape(xs)); });
}

Var concat_cols(Tape& t, const std::vector<Var>& parts) {
  NSAMP_CHECK(!parts.empty(), "concat_cols: no inputs");
  const Tensor& first = parts[0].value();
  std::int64_t C = 0;
  std::vector<std::int64_t> widths;
  for (const Var& p : parts) {
    const Tensor& v = p.value();
    NSAMP_CHECK(v.rows() == first.rows() && v.dtype() == first.dtype() && v.device() == first.device(),
                "concat_cols: ", v.desc(), " does not match ", first.desc(),
                " (same rows, dtype and device)");
    widths.push_back(v.cols());
    C += v.cols();
  }
  Tensor out = empty_as(Shape{first.rows(), C}, first, t.ctx());
  std::int64_t c0 = 0;
  for (const Var& p : parts) {
    k::copy_cols(p.value().reshape(Shape{first.rows(), p.value().cols()}), 0, out, c0, p.value().cols(),
                 t.ctx());
    c0 += p.value().cols();
  }
  std::vector<Shape> shapes;
  for (const Var& p : parts) shapes.push_back(p.value().shape());
  return t.record("concat_cols", parts, out, [widths, shapes](NodeGrads& g) {
    std::int64_t col = 0;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      if (g.needs(i)) {
        Tensor gi =
            Tensor::empty(Shape{g.out().rows(), widths[i]}, g.out().dtype(), g.out().device(), g.ctx());
        k::copy_cols(g.out(), col, gi, 0, widths[i], g.ctx());
        g.add(i, gi.reshape(shapes[i]));
      }
      col += widths[i];
    }
  });
}

std::vector<Var> split_cols(Tape& t, const Var& x, const std::vector<std::int64_t>& widths) {
  const Tensor& v = x.value();
  std::int64_t total = 0;
  for (std::int64_t w : widths) {
    NSAMP_CHECK(w >= 0, "split_cols: negative width ", w);
    total += w;
  }
  NSAMP_CHECK(total == v.cols(), "split_cols: widths sum to ", total, " but ", v.desc(), " has ", v.cols(),
              " columns");
  const Tensor x2 = v.reshape(Shape{v.rows(), v.cols()});
  std::vector<Tensor> outs;
  std::int64_t c0 = 0;
  for (std::int64_t w : widths) {
    Tensor o = empty_as(Shape{v.rows(), w}, v, t.ctx());
    k::copy_cols(x2, c0, o, 0, w, t.ctx());
    outs.push_back(o);
    c0 += w;
  }
  return t.record_multi("split_cols", {x}, outs, [widths, xs = v.shape()](NodeGrads& g) {
    const std::int64_t R = xs.rows();
    Tensor gx;  // zeros where an output received no gradient
    bool init = false;
    std::int64_t col = 0;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      if (g.has_out(i)) {
        if (!init) {
          gx = Tensor::zeros(Shape{R, xs.cols()}, g.out(i).dtype(), g.out(i).device(), g.ctx());
          init = true;
        }
        k::copy_cols(g.out(i), 0, gx, col, widths[i], g.ctx());
      }
      col += widths[i];
    }
    if (init) g.add(0, gx.reshape(xs));
  });
}

// ---- reductions
// ----------------------------------------------------------------------------------------------

namespace {
Var reduce_all(Tape& t, const Var& x, bool mean) {
  const Tensor& v = x.value();
  Tensor out = empty_as(Shape{}, v, t.ctx());
  k::reduce_rows(mean ? k::Reduce::Mean : k::Reduce::Sum, v.reshape(Shape{1, v.numel()}), out, t.ctx());
  const double alpha = mean ? 1.0 / static_cast<double>(v.numel()) : 1.0;
  return t.record(mean ? "mean" : "sum", {x}, out, [alpha, v](NodeGrads& g) {
    Tensor gx = empty_like(v, g.ctx());
    k::broadcast_to(g.out(), alpha, gx, g.ctx());
    g.add(0, gx);
  });
}

Var reduce_each_row(Tape& t, const Var& x, bool mean) {
  const Tensor& v = x.value();
  Tensor out = empty_as(Shape{v.rows()}, v, t.ctx());
  k::reduce_rows(mean ? k::Reduce::Mean : k::Reduce::Sum, v, out, t.ctx());
  const double alpha = mean ? 1.0 / static_cast<double>(v.cols()) : 1.0;
  return t.record(mean ? "mean_rows" : "sum_rows", {x}, out, [alpha, v](NodeGrads& g) {
    Tensor gx = empty_like(v, g.ctx());
    k::broadcast_to(g.out().reshape(Shape{v.rows(), 1}), alpha, gx, g.ctx());
    g.add(0, gx);
  });
}
}  // namespace

Var sum(Tape& t, const Var& x) { return reduce_all(t, x, false); }
Var mean(Tape& t, const Var& x) { return reduce_all(t, x, true); }
Var sum_rows(Tape& t, const Var& x) { return reduce_each_row(t, x, false); }
Var mean_rows(Tape& t, const Var& x) { return reduce_each_row(t, x, true); }

Var logsumexp_rows(Tape& t, const Var& x) {
  const Tensor& v = x.value();
  Tensor out = empty_as(Shape{v.rows()}, v, t.ctx());
  k::row_logsumexp(v, out, t.ctx());
  return t.record("logsumexp_rows", {x}, out, [v](NodeGrads& g) {
    Tensor gx = empty_like(v, g.ctx());
    k::row_softmax(v, gx, g.ctx());
    k::mul(gx, g.out().reshape(Shape{v.rows(), 1}), gx, g.ctx());
    g.add(0, gx);
  });
}

Var sq_norm_rows(Tape& t, const Var& x) {
  const Tensor& v = x.value();
  Tensor out = empty_as(Shape{v.rows()}, v, t.ctx());
  k::row_sq_norm(v, out, t.ctx());
  return t.record("sq_norm_rows", {x}, out, [v](NodeGrads& g) {
    Tensor gx = empty_like(v, g.ctx());
    k::mul(v, g.out().reshape(Shape{v.rows(), 1}), gx, g.ctx());
    k::affine(gx, 2.0, 0.0, gx, g.ctx());
    g.add(0, gx);
  });
}

// ---- indexing
// -------------------------------------------------------------------------------------------------

Var gather_rows(Tape& t, const Var& x, const Tensor& idx) {
  const Tensor& v = x.value();
  Tensor out = empty_as(Shape{idx.numel(), v.cols()}, v, t.ctx());
  k::gather_rows(v.reshape(Shape{v.rows(), v.cols()}), idx, out, t.ctx());
  return t.record("gather_rows", {x}, out, [idx, xs = v.shape()](NodeGrads& g) {
    Tensor gx = Tensor::zeros(Shape{xs.rows(), xs.cols()}, g.out().dtype(), g.out().device(), g.ctx());
    k::index_add_rows(g.out(), idx, gx, g.ctx());
    g.add(0, gx.reshape(xs));
  });
}

Var index_add_rows(Tape& t, const Var& src, const Tensor& idx, std::int64_t n) {
  const Tensor& v = src.value();
  NSAMP_CHECK(n >= 0, "index_add_rows: negative row count ", n);
  Tensor out = Tensor::zeros(Shape{n, v.cols()}, v.dtype(), v.device(), t.ctx());
  k::index_add_rows(v.reshape(Shape{v.rows(), v.cols()}), idx, out, t.ctx());
  return t.record("index_add_rows", {src}, out, [idx, xs = v.shape()](NodeGrads& g) {
    Tensor gs = Tensor::empty(Shape{xs.rows(), xs.cols()}, g.out().dtype(), g.out().device(), g.ctx());
    k::gather_rows(g.out(), idx, gs, g.ctx());
    g.add(0, gs.reshape(xs));
  });
}

Var masked_select_rows(Tape& t, const Var& x, const std::vector<bool>& mask) {
  NSAMP_CHECK(static_cast<std::int64_t>(mask.size()) == x.value().rows(), "masked_select_rows: mask of ",
              mask.size(), " entries for ", x.value().desc(), " (", x.value().rows(), " rows)");
  std::vector<std::int32_t> rows;
  for (std::size_t i = 0; i < mask.size(); ++i)
    if (mask[i]) rows.push_back(static_cast<std::int32_t>(i));
  const Tensor idx =
      Tensor::from_vector(rows, Shape{static_cast<std::int64_t>(rows.size())}, x.device(), t.ctx());
  return gather_rows(t, x, idx);
}

}  // namespace nsamp::ag
