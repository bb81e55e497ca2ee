#include "nsamp/samplers/egnn.h"

#include "nsamp/core/fill.h"
#include "nsamp/kernels/egnn.h"

namespace nsamp::samplers {

EgnnConfig egnn_config(std::int64_t hidden, int layers, ag::Activation act, EgnnConfig::Output output) {
  EgnnConfig c;
  c.hidden = hidden;
  c.layers = layers;
  c.act = act;
  c.output = output;
  return c;
}

Egnn::Egnn(const targets::Particles& p, const EgnnConfig& config, DType dtype, Context& ctx,
           const std::string& name)
    : p_(p), cfg_(config), dtype_(dtype), mean_free_(p, dtype, ctx) {
  NSAMP_CHECK(p.n >= 2 && p.spatial >= 1, "EGNN '", name,
              "': needs at least 2 particles in >= 1 dimensions, got ", p.n, " x ", p.spatial);
  NSAMP_CHECK(cfg_.hidden >= 1 && cfg_.layers >= 1 && cfg_.coords_range > 0, "EGNN '", name, "': hidden ",
              cfg_.hidden, ", layers ", cfg_.layers, " and coords_range ", cfg_.coords_range,
              " must be positive");
  const std::int64_t H = cfg_.hidden;
  const auto def = ag::Init::PyTorchDefault;
  embed_ = ag::Linear(1, H, true, def, dtype, ctx, name + ".embed");
  for (int l = 0; l < cfg_.layers; ++l) {
    const std::string pre = name + ".layers." + std::to_string(l) + ".";
    Layer L;
    L.edge1 = ag::Linear(2 * H + 2, H, true, def, dtype, ctx, pre + "edge1");
    L.edge2 = ag::Linear(H, H, true, def, dtype, ctx, pre + "edge2");
    if (cfg_.attention) L.att = ag::Linear(H, 1, true, def, dtype, ctx, pre + "att");
    L.coord1 = ag::Linear(H, H, true, def, dtype, ctx, pre + "coord1");
    L.coord2 = ag::Linear(H, 1, false, ag::Init::Xavier, dtype, ctx, pre + "coord2", 0.001);
    if (l + 1 < cfg_.layers) {
      L.node1 = ag::Linear(2 * H, H, true, def, dtype, ctx, pre + "node1");
      L.node2 = ag::Linear(H, H, true, def, dtype, ctx, pre + "node2");
    }
    layers_.push_back(std::move(L));
  }
}

const Egnn::Graph& Egnn::graph(std::int64_t B, bool edges, Context& ctx) const {
  const std::int64_t n = p_.n, E = B * n * (n - 1);
  // One entry per batch size, kept for the network's life: a step captured as a CUDA graph keeps addressing
  // the indices it was captured with, even after an evaluation at another batch size.
  Graph& graph_ = graphs_[B];
  if (graph_.batch != B || graph_.node_sample.device() != ctx.device()) {
    NSAMP_CHECK(E < (std::int64_t(1) << 31), "EGNN: batch ", B, " of ", n, " particles has ", E,
                " edges, beyond int32 indices");
    std::vector<std::int32_t> ns(static_cast<std::size_t>(B * n));
    for (std::int64_t q = 0; q < B * n; ++q) ns[std::size_t(q)] = std::int32_t(q / n);
    graph_ = Graph{};
    graph_.batch = B;
    graph_.node_sample = Tensor::from_vector(ns, Shape{B * n}, ctx.device(), ctx);
  }
  if (edges && !graph_.row.defined()) {  // the composed path's pair indices, built on first use
    std::vector<std::int32_t> row(static_cast<std::size_t>(E)), col(static_cast<std::size_t>(E));
    std::size_t e = 0;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < n; ++j)
          if (j != i) {
            row[e] = std::int32_t(b * n + i);
            col[e] = std::int32_t(b * n + j);
            ++e;
          }
    graph_.row = Tensor::from_vector(row, Shape{E}, ctx.device(), ctx);
    graph_.col = Tensor::from_vector(col, Shape{E}, ctx.device(), ctx);
  }
  return graph_;
}

ag::Var Egnn::forward(ag::Tape& tp, const ag::Var& feature, const ag::Var& x) const {
  const std::int64_t n = p_.n, D = p_.spatial, H = cfg_.hidden;
  NSAMP_CHECK(x.defined() && x.value().rank() == 2 && x.shape().cols() == n * D && x.dtype() == dtype_,
              "EGNN: x must be [B, ", n * D, "] ", dtype_name(dtype_), ", got ",
              x.defined() ? x.value().desc() : std::string("undefined"));
  const std::int64_t B = x.shape().rows(), N = B * n, E = N * (n - 1);
  Context& ctx = tp.ctx();
  bool fused = cfg_.impl == EgnnConfig::Impl::Fused;
  if (cfg_.impl == EgnnConfig::Impl::Auto) {
    // About a dozen [E, H] tensors per layer live on the composed path's tape.
    const double edge_bytes = 12.0 * double(E) * double(H) * double(dtype_size(dtype_)) * cfg_.layers;
    fused = !tp.recording() || ctx.device().is_cuda() || edge_bytes > double(1 << 30);
  }
  const Graph& g = graph(B, !fused, ctx);
  using ag::Var;
  Var f;
  if (feature.defined()) {
    NSAMP_CHECK(feature.value().rank() == 2 && feature.shape().rows() == B && feature.shape().cols() == 1 &&
                    feature.dtype() == dtype_,
                "EGNN: the node feature must be [", B, ", 1] ", dtype_name(dtype_), ", got ",
                feature.value().desc());
    f = ag::gather_rows(tp, feature, g.node_sample);
  } else {
    Tensor ones = Tensor::empty(Shape{N, 1}, dtype_, ctx);
    fill_constant(ones, 1.0, ctx);
    f = Var::leaf(ones);
  }
  Var h = embed_.forward(tp, f);
  if (fused) return forward_fused(tp, h, x);
  const Var xs = ag::reshape(tp, x, Shape{N, D});
  Var d = ag::sub(tp, ag::gather_rows(tp, xs, g.row), ag::gather_rows(tp, xs, g.col));
  const Var a = ag::reshape(tp, ag::sq_norm_rows(tp, d), Shape{E, 1});
  Var r = a, xc = xs;
  const double C = cfg_.coords_range / cfg_.layers;
  for (int l = 0; l < cfg_.layers; ++l) {
    const Layer& L = layers_[std::size_t(l)];
    if (l > 0) {
      d = ag::sub(tp, ag::gather_rows(tp, xc, g.row), ag::gather_rows(tp, xc, g.col));
      r = ag::reshape(tp, ag::sq_norm_rows(tp, d), Shape{E, 1});
    }
    const std::vector<Var> w1 = ag::split_cols(tp, L.edge1.weight(), {H, H, 2});
    const Var hi = ag::linear(tp, h, w1[0], Var()), hj = ag::linear(tp, h, w1[1], Var());
    const Var pre = ag::add(tp, ag::add(tp, ag::gather_rows(tp, hi, g.row), ag::gather_rows(tp, hj, g.col)),
                            ag::linear(tp, ag::concat_cols(tp, {r, a}), w1[2], L.edge1.bias()));
    Var m = L.edge2.forward(tp, ag::activation(tp, cfg_.act, pre), cfg_.act);
    if (cfg_.attention) m = ag::mul(tp, m, L.att.forward(tp, m, ag::Activation::Sigmoid));
    Var phi = L.coord2.forward(tp, L.coord1.forward(tp, m, cfg_.act),
                               cfg_.tanh ? ag::Activation::Tanh : ag::Activation::Identity);
    if (cfg_.tanh) phi = ag::scale(tp, phi, C);
    const Var norm = ag::add_scalar(tp, ag::sqrt(tp, ag::add_scalar(tp, r, 1e-8)), 1.0);
    const Var trans = ag::mul(tp, ag::div(tp, d, norm), phi);
    const Var x_next = ag::add(tp, xc, ag::index_add_rows(tp, trans, g.row, N));
    if (l + 1 < cfg_.layers) {
      const Var agg = ag::index_add_rows(tp, m, g.row, N);
      const Var upd = L.node2.forward(tp, L.node1.forward(tp, ag::concat_cols(tp, {h, agg}), cfg_.act));
      h = ag::add(tp, h, upd);
    }
    xc = x_next;
  }
  const Var out = cfg_.output == EgnnConfig::Output::Displacement ? ag::sub(tp, xc, xs) : xc;
  return mean_free_.apply(tp, ag::reshape(tp, out, Shape{B, n * D}));
}

// The fused forward: node-level ops as in the composed path, the pair part of each layer one tape node over
// kernels::egnn_pairs whose backward is kernels::egnn_pairs_backward (it recomputes the edges, so the tape
// keeps only node-sized tensors).
ag::Var Egnn::forward_fused(ag::Tape& tp, const ag::Var& h0, const ag::Var& x) const {
  const std::int64_t n = p_.n, D = p_.spatial, H = cfg_.hidden, B = x.shape().rows(), N = B * n;
  Context& ctx = tp.ctx();
  using ag::Var;
  const Var xs = ag::reshape(tp, x, Shape{N, D});
  Var xc = xs, h = h0;
  for (int l = 0; l < cfg_.layers; ++l) {
    const Layer& L = layers_[std::size_t(l)];
    const std::vector<Var> w1 = ag::split_cols(tp, L.edge1.weight(), {H, H, 2});
    const Var hi = ag::linear(tp, h, w1[0], Var()), hj = ag::linear(tp, h, w1[1], Var());
    std::vector<Var> in{hi,
                        hj,
                        xc,
                        xs,
                        w1[2],
                        L.edge1.bias(),
                        L.edge2.weight(),
                        L.edge2.bias(),
                        L.coord1.weight(),
                        L.coord1.bias(),
                        L.coord2.weight()};
    kernels::EgnnLayerWeights w;
    w.Wra = w1[2].value();
    w.b1 = L.edge1.bias().value();
    w.W2 = L.edge2.weight().value();
    w.b2 = L.edge2.bias().value();
    w.c1_w = L.coord1.weight().value();
    w.c1_b = L.coord1.bias().value();
    w.c2_w = L.coord2.weight().value();
    if (cfg_.attention) {
      w.att_w = L.att.weight().value();
      w.att_b = L.att.bias().value();
      in.push_back(L.att.weight());
      in.push_back(L.att.bias());
    }
    w.act = cfg_.act;
    w.tanh = cfg_.tanh;
    w.coords_range = cfg_.tanh ? cfg_.coords_range / cfg_.layers : 1.0;
    const bool last = l + 1 == cfg_.layers;
    Tensor x_next = Tensor::empty(Shape{N, D}, dtype_, ctx), agg;
    if (!last) agg = Tensor::empty(Shape{N, H}, dtype_, ctx);
    const Tensor hv = hi.value(), hjv = hj.value(), xv = xc.value(), x0v = xs.value();
    kernels::egnn_pairs(hv, hjv, xv, x0v, int(n), w, x_next, last ? nullptr : &agg, ctx);
    std::vector<Tensor> outs;
    outs.reserve(2);
    outs.push_back(x_next);
    if (!last) outs.push_back(agg);
    const int nn = int(n);
    const bool att = cfg_.attention;
    std::vector<Var> o = tp.record_multi(
        "egnn_pairs", in, std::move(outs), [hv, hjv, xv, x0v, w, nn, last, att](ag::NodeGrads& g) {
          Context& c = g.ctx();
          const DType dt = xv.dtype();
          Tensor gxo = g.has_out(0) ? g.out(0) : Tensor::zeros(xv.shape(), dt, c);
          const Tensor* gagg = !last && g.has_out(1) ? &g.out(1) : nullptr;
          kernels::EgnnLayerGrads G;
          auto like = [&c](const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), c); };
          G.hi = like(hv);
          G.hj = like(hjv);
          G.x = like(xv);
          G.x0 = like(x0v);
          G.Wra = like(w.Wra);
          G.b1 = like(w.b1);
          G.W2 = like(w.W2);
          G.b2 = like(w.b2);
          G.c1_w = like(w.c1_w);
          G.c1_b = like(w.c1_b);
          G.c2_w = like(w.c2_w);
          if (att) {
            G.att_w = like(w.att_w);
            G.att_b = like(w.att_b);
          }
          kernels::egnn_pairs_backward(hv, hjv, xv, x0v, nn, w, gxo, gagg, G, c);
          Tensor* order[] = {&G.hi, &G.hj,   &G.x,    &G.x0,   &G.Wra,   &G.b1,   &G.W2,
                             &G.b2, &G.c1_w, &G.c1_b, &G.c2_w, &G.att_w, &G.att_b};
          const std::size_t count = att ? 13 : 11;
          for (std::size_t k = 0; k < count; ++k)
            if (g.needs(k)) g.add(k, std::move(*order[k]));
        });
    if (!last) {
      const Var upd = L.node2.forward(tp, L.node1.forward(tp, ag::concat_cols(tp, {h, o[1]}), cfg_.act));
      h = ag::add(tp, h, upd);
    }
    xc = o[0];
  }
  const Var out = cfg_.output == EgnnConfig::Output::Displacement ? ag::sub(tp, xc, xs) : xc;
  return mean_free_.apply(tp, ag::reshape(tp, out, Shape{B, n * D}));
}

std::vector<ag::Var> Egnn::parameters() const {
  std::vector<ag::Var> p = embed_.parameters();
  auto add = [&p](const ag::Linear& l) {
    if (l.weight().defined())
      for (const ag::Var& v : l.parameters()) p.push_back(v);
  };
  for (const Layer& L : layers_) {
    for (const ag::Linear* l : {&L.edge1, &L.edge2, &L.att, &L.coord1, &L.coord2, &L.node1, &L.node2})
      add(*l);
  }
  return p;
}

double Egnn::flops_per_sample() const {
  const double n = p_.n, E = n * (n - 1), H = double(cfg_.hidden), D = p_.spatial;
  double f = n * H;  // embedding
  for (int l = 0; l < cfg_.layers; ++l) {
    f += 2 * n * H * H + E * (2 * H + H * H + (cfg_.attention ? H : 0) + H * H + H + 2 * D);
    if (l + 1 < cfg_.layers) f += n * (2 * H * H + H * H);
  }
  return 2 * f;  // multiply-adds count twice
}

}  // namespace nsamp::samplers
