// EGNN family: checks, dispatch and the CPU launcher (the forward: a thread per group of samples; the
// backward: a thread per sample; their pair messages in small per-thread buffers).
#include <algorithm>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "activation_cpu.h"
#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/egnn.h"
#include "nsamp/kernels/operands.h"

namespace nsamp::kernels {

namespace {

template <class T>
struct Weights {
  const T *Wra, *b1, *W2, *b2, *att_w, *att_b, *c1_w, *c1_b, *c2_w;
};

template <class T>
struct EgnnGradPtrs {
  T *hi, *hj, *x, *x0, *Wra, *b1, *W2, *b2, *att_w, *att_b, *c1_w, *c1_b, *c2_w;
};

template <class T>
EgnnGradPtrs<T> grads_of(EgnnLayerGrads& g) {
  auto p = [](Tensor& t) { return t.defined() ? t.data<T>() : static_cast<T*>(nullptr); };
  return {p(g.hi), p(g.hj),    p(g.x),     p(g.x0),   p(g.Wra),  p(g.b1),  p(g.W2),
          p(g.b2), p(g.att_w), p(g.att_b), p(g.c1_w), p(g.c1_b), p(g.c2_w)};
}

template <class T>
Weights<T> weights_of(const EgnnLayerWeights& w) {
  auto p = [](const Tensor& t) { return t.defined() ? t.data<T>() : static_cast<const T*>(nullptr); };
  return {p(w.Wra), p(w.b1), p(w.W2), p(w.b2), p(w.att_w), p(w.att_b), p(w.c1_w), p(w.c1_b), p(w.c2_w)};
}

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// act(p[0, n)) in place: float32 through the vectorised activation loops that the composed ops use, float64
// one element at a time (the reference dtype keeps the scalar C library). pairs_backward_cpu recomputes the
// forward with the scalar functions, so in float32 its gradient is that of a function a few ulps away from
// this one's (the composed ops use the vector loops both ways).
template <class T>
void activate(Activation act, std::int64_t n, T* p) {
  if constexpr (std::is_same_v<T, float>) {
    detail::activation_forward_f32_serial(act, n, p, p);  // inside pairs_cpu's OpenMP region
  } else {
    with_activation(act, [&](auto a) {
      for (std::int64_t q = 0; q < n; ++q) p[q] = activation_forward(decltype(a)::value, p[q]);
    });
  }
}

// The edges of kGroupRows / E consecutive samples (at least one) go through the layer together, in chunks of
// at most kGroupRows rows, so that the two H x H layers run as GEMMs (Eigen, single-threaded inside the
// OpenMP loop over groups) of a useful height even for DW-4's 12 edges per sample, and every activation runs
// over a whole [rows, H] block. Groups are fixed by B and n, not by the thread count, so results do not
// depend on it; a row's last bits can depend on where it falls in its chunk (Eigen's GEMM treats the rows
// past its last full panel with other kernels), so on B, as in the composed ops' GEMMs over all B n (n - 1)
// rows. Only [kGroupRows, H] buffers per thread; the coordinate sums go straight into x_out (which
// does not alias x).
template <class T>
void pairs_cpu(const T* hi, const T* hj, const T* x, const T* x0, std::int64_t B, int n, int D, int H,
               const Weights<T>& w, const EgnnLayerWeights& cfg, T* x_out, T* agg) {
  constexpr std::int64_t kGroupRows = 256;
  const T C = T(cfg.coords_range);
  const std::int64_t E = std::int64_t(n) * (n - 1);
  const std::int64_t G = std::max<std::int64_t>(1, kGroupRows / E), groups = (B + G - 1) / G;
  const Eigen::Map<const RowMat<T>> W2(w.W2, H, H), Wc1(w.c1_w, H, H);
  using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  const Eigen::Map<const Vec> b2(w.b2, H), c1_b(w.c1_b, H), c2_w(w.c2_w, H);
  std::vector<T> wr(static_cast<std::size_t>(H)), wa(static_cast<std::size_t>(H));
  for (int k = 0; k < H; ++k) {
    wr[std::size_t(k)] = w.Wra[2 * k];
    wa[std::size_t(k)] = w.Wra[2 * k + 1];
  }
#pragma omp parallel
  {
    const std::int64_t rows_max = std::min(kGroupRows, G * E);
    RowMat<T> m1(rows_max, H), m(rows_max, H), c(rows_max, H);
    Vec s(rows_max), phi(rows_max);
    std::vector<T> rr(static_cast<std::size_t>(rows_max));
    std::vector<std::int64_t> ni(static_cast<std::size_t>(rows_max)), nj(static_cast<std::size_t>(rows_max));
#pragma omp for schedule(static)
    for (std::int64_t grp = 0; grp < groups; ++grp) {
      const std::int64_t b0 = grp * G, b1 = std::min(B, b0 + G);
      for (std::int64_t q = b0 * n * D; q < b1 * n * D; ++q) x_out[q] = x[q];
      if (agg)
        for (std::int64_t q = b0 * n * H; q < b1 * n * H; ++q) agg[q] = T(0);
      // Edges in sample order, and within a sample in egnn_pair order: each node's sums run in the order of
      // the per-sample kernel.
      for (std::int64_t g0 = b0 * E; g0 < b1 * E; g0 += kGroupRows) {
        const std::int64_t ne = std::min(kGroupRows, b1 * E - g0);
        for (std::int64_t t = 0; t < ne; ++t) {
          const std::int64_t ge = g0 + t, b = ge / E;
          int i, j;
          egnn_pair(ge - b * E, n, i, j);
          const std::int64_t gi = b * n + i, gj = b * n + j;
          T r, a;
          egnn_edge_sq(x, x0, gi, gj, D, r, a);
          rr[std::size_t(t)] = r;
          ni[std::size_t(t)] = gi;
          nj[std::size_t(t)] = gj;
          T* row = &m1(t, 0);
          const T *hr = hi + gi * H, *hc = hj + gj * H;
          for (int k = 0; k < H; ++k)
            row[k] = hr[k] + hc[k] + wr[std::size_t(k)] * r + wa[std::size_t(k)] * a + w.b1[k];
        }
        activate(cfg.act, ne * H, m1.data());
        m.topRows(ne).noalias() = m1.topRows(ne) * W2.transpose();
        m.topRows(ne).rowwise() += b2.transpose();
        activate(cfg.act, ne * H, m.data());
        if (w.att_w) {
          s.head(ne).noalias() = m.topRows(ne) * Eigen::Map<const Vec>(w.att_w, H);
          if (w.att_b) s.head(ne).array() += w.att_b[0];
          activate(Activation::Sigmoid, ne, s.data());
          m.topRows(ne).array().colwise() *= s.head(ne).array();
        }
        if (agg)
          for (std::int64_t t = 0; t < ne; ++t) {
            T* dst = agg + ni[std::size_t(t)] * H;
            const T* src = &m(t, 0);
            for (int k = 0; k < H; ++k) dst[k] += src[k];
          }
        c.topRows(ne).noalias() = m.topRows(ne) * Wc1.transpose();
        c.topRows(ne).rowwise() += c1_b.transpose();
        activate(cfg.act, ne * H, c.data());
        phi.head(ne).noalias() = c.topRows(ne) * c2_w;
        for (std::int64_t t = 0; t < ne; ++t) {
          const std::int64_t gi = ni[std::size_t(t)], gj = nj[std::size_t(t)];
          const T f = egnn_phi(phi[t], cfg.tanh, C) * egnn_coord_weight(rr[std::size_t(t)]);
          for (int k = 0; k < D; ++k) x_out[gi * D + k] += (x[gi * D + k] - x[gj * D + k]) * f;
        }
      }
    }
  }
}

// The backward pass, chunk by chunk as the forward: recompute the chunk's pre-activations and messages, then
// the chain rule back through them. Node and input gradients go to the sample's own rows; weight gradients to
// per-thread partial sums, added up at the end.
template <class T>
void pairs_backward_cpu(const T* hi, const T* hj, const T* x, const T* x0, std::int64_t B, int n, int D,
                        int H, const Weights<T>& w, const EgnnLayerWeights& cfg, const T* gxo, const T* gagg,
                        const EgnnGradPtrs<T>& g) {
  constexpr std::int64_t kChunk = 64;
  const T C = T(cfg.coords_range);
  const std::int64_t E = std::int64_t(n) * (n - 1), HH = std::int64_t(H) * H;
  const Eigen::Map<const RowMat<T>> W2(w.W2, H, H), Wc1(w.c1_w, H, H);
  const Activation act = cfg.act;
  const bool att = w.att_w != nullptr;
#pragma omp parallel
  {
    RowMat<T> P1(kChunk, H), M1(kChunk, H), P2(kChunk, H), Mt(kChunk, H), M(kChunk, H), P3(kChunk, H),
        Cc(kChunk, H), G(kChunk, H), G2(kChunk, H);
    RowMat<T> gW2 = RowMat<T>::Zero(H, H), gWc1 = RowMat<T>::Zero(H, H);
    std::vector<T> gWra(static_cast<std::size_t>(2 * H), T(0)), gb1(static_cast<std::size_t>(H), T(0)),
        gb2(static_cast<std::size_t>(H), T(0)), gattw(static_cast<std::size_t>(H), T(0)),
        gbc1(static_cast<std::size_t>(H), T(0)), gwc2(static_cast<std::size_t>(H), T(0));
    T gattb = 0;
    std::vector<int> ei(static_cast<std::size_t>(kChunk)), ej(static_cast<std::size_t>(kChunk));
    std::vector<T> rr(static_cast<std::size_t>(kChunk)), aa(static_cast<std::size_t>(kChunk)),
        gate(static_cast<std::size_t>(kChunk)), phir(static_cast<std::size_t>(kChunk));
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t base = b * n;
      for (std::int64_t q = base * H; q < (base + n) * H; ++q) g.hi[q] = g.hj[q] = T(0);
      for (std::int64_t q = base * D; q < (base + n) * D; ++q) {
        g.x[q] = gxo[q];
        g.x0[q] = T(0);
      }
      for (std::int64_t e0 = 0; e0 < E; e0 += kChunk) {
        const std::int64_t ne = std::min(kChunk, E - e0);
        // Forward recomputation.
        for (std::int64_t t = 0; t < ne; ++t) {
          int i, j;
          egnn_pair(e0 + t, n, i, j);
          ei[std::size_t(t)] = i;
          ej[std::size_t(t)] = j;
          const std::int64_t gi = base + i, gj = base + j;
          T r, a;
          egnn_edge_sq(x, x0, gi, gj, D, r, a);
          rr[std::size_t(t)] = r;
          aa[std::size_t(t)] = a;
          for (int k = 0; k < H; ++k) {
            P1(t, k) = hi[gi * H + k] + hj[gj * H + k] + w.Wra[2 * k] * r + w.Wra[2 * k + 1] * a + w.b1[k];
            M1(t, k) = activation_forward(act, P1(t, k));
          }
        }
        P2.topRows(ne).noalias() = M1.topRows(ne) * W2.transpose();
        for (std::int64_t t = 0; t < ne; ++t) {
          for (int k = 0; k < H; ++k) {
            P2(t, k) += w.b2[k];
            Mt(t, k) = activation_forward(act, P2(t, k));
          }
          T gt = 1;
          if (att) {
            T s = w.att_b[0];
            for (int k = 0; k < H; ++k) s += w.att_w[k] * Mt(t, k);
            gt = sigmoid(s);
          }
          gate[std::size_t(t)] = gt;
          for (int k = 0; k < H; ++k) M(t, k) = Mt(t, k) * gt;
        }
        P3.topRows(ne).noalias() = M.topRows(ne) * Wc1.transpose();
        for (std::int64_t t = 0; t < ne; ++t) {
          T phi = 0;
          for (int k = 0; k < H; ++k) {
            P3(t, k) += w.c1_b[k];
            Cc(t, k) = activation_forward(act, P3(t, k));
            phi += w.c2_w[k] * Cc(t, k);
          }
          phir[std::size_t(t)] = phi;
        }
        // Backward: phi, then the coordinate MLP (G = dL/dP3).
        std::vector<T> gr(static_cast<std::size_t>(ne)), gd(static_cast<std::size_t>(ne * D));
        for (std::int64_t t = 0; t < ne; ++t) {
          const std::int64_t gi = base + ei[std::size_t(t)], gj = base + ej[std::size_t(t)];
          T dotd = 0;
          for (int k = 0; k < D; ++k) dotd += gxo[gi * D + k] * (x[gi * D + k] - x[gj * D + k]);
          const T r = rr[std::size_t(t)], cw = egnn_coord_weight(r), pr = phir[std::size_t(t)];
          const T phi = egnn_phi(pr, cfg.tanh, C);
          const T gphir = cw * dotd * egnn_phi_draw(pr, cfg.tanh, C);
          gr[std::size_t(t)] = phi * dotd * egnn_coord_weight_dr(r);
          for (int k = 0; k < D; ++k) gd[std::size_t(t * D + k)] = gxo[gi * D + k] * cw * phi;
          for (int k = 0; k < H; ++k) {
            gwc2[std::size_t(k)] += gphir * Cc(t, k);
            G(t, k) = gphir * w.c2_w[k] * activation_derivative(act, P3(t, k));
            gbc1[std::size_t(k)] += G(t, k);
          }
        }
        gWc1.noalias() += G.topRows(ne).transpose() * M.topRows(ne);
        G2.topRows(ne).noalias() = G.topRows(ne) * Wc1;  // dL/dM
        for (std::int64_t t = 0; t < ne; ++t) {
          const std::int64_t gi = base + ei[std::size_t(t)];
          if (gagg)
            for (int k = 0; k < H; ++k) G2(t, k) += gagg[gi * H + k];
          const T gt = gate[std::size_t(t)];
          T gs = 0;
          if (att) {
            T gg = 0;
            for (int k = 0; k < H; ++k) gg += G2(t, k) * Mt(t, k);
            gs = gg * gt * (T(1) - gt);
            gattb += gs;
          }
          for (int k = 0; k < H; ++k) {
            T gm = G2(t, k) * gt;
            if (att) {
              gattw[std::size_t(k)] += gs * Mt(t, k);
              gm += gs * w.att_w[k];
            }
            G(t, k) = gm * activation_derivative(act, P2(t, k));  // dL/dP2
            gb2[std::size_t(k)] += G(t, k);
          }
        }
        gW2.noalias() += G.topRows(ne).transpose() * M1.topRows(ne);
        G2.topRows(ne).noalias() = G.topRows(ne) * W2;  // dL/dM1
        for (std::int64_t t = 0; t < ne; ++t) {
          const int i = ei[std::size_t(t)], j = ej[std::size_t(t)];
          const std::int64_t gi = base + i, gj = base + j;
          T gra = 0, ga = 0;
          for (int k = 0; k < H; ++k) {
            const T gp = G2(t, k) * activation_derivative(act, P1(t, k));
            gb1[std::size_t(k)] += gp;
            gWra[std::size_t(2 * k)] += gp * rr[std::size_t(t)];
            gWra[std::size_t(2 * k + 1)] += gp * aa[std::size_t(t)];
            g.hi[gi * H + k] += gp;
            g.hj[gj * H + k] += gp;
            gra += gp * w.Wra[2 * k];
            ga += gp * w.Wra[2 * k + 1];
          }
          const T grt = gr[std::size_t(t)] + gra;
          for (int k = 0; k < D; ++k) {
            const T dk = x[gi * D + k] - x[gj * D + k], ek = x0[gi * D + k] - x0[gj * D + k];
            const T gdk = gd[std::size_t(t * D + k)] + T(2) * dk * grt;
            g.x[gi * D + k] += gdk;
            g.x[gj * D + k] -= gdk;
            g.x0[gi * D + k] += T(2) * ek * ga;
            g.x0[gj * D + k] -= T(2) * ek * ga;
          }
        }
      }
    }
#pragma omp critical
    {
      for (std::int64_t q = 0; q < HH; ++q) {
        g.W2[q] += gW2.data()[q];
        g.c1_w[q] += gWc1.data()[q];
      }
      for (int k = 0; k < H; ++k) {
        g.Wra[2 * k] += gWra[std::size_t(2 * k)];
        g.Wra[2 * k + 1] += gWra[std::size_t(2 * k + 1)];
        g.b1[k] += gb1[std::size_t(k)];
        g.b2[k] += gb2[std::size_t(k)];
        g.c1_b[k] += gbc1[std::size_t(k)];
        g.c2_w[k] += gwc2[std::size_t(k)];
        if (att) g.att_w[k] += gattw[std::size_t(k)];
      }
      if (att) g.att_b[0] += gattb;
    }
  }
}

void check_layer(const char* op, const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                 const EgnnLayerWeights& w, Context& ctx) {
  check_operands(op, ctx,
                 {{"x", &x},
                  {"hi", &hi},
                  {"hj", &hj},
                  {"x0", &x0},
                  {"Wra", &w.Wra},
                  {"b1", &w.b1},
                  {"W2", &w.W2},
                  {"b2", &w.b2},
                  {"c1_w", &w.c1_w},
                  {"c1_b", &w.c1_b},
                  {"c2_w", &w.c2_w}});
  NSAMP_CHECK(n >= 2 && x.rank() == 2 && x.rows() % n == 0 && x.cols() >= 1 && x.cols() <= 8, op,
              ": x must be [B n, D] with n >= 2 and D <= 8, got ", x.desc(), " for n = ", n);
  const std::int64_t N = x.rows(), H = hi.cols();
  check_shape(op, x0, "x0", x.shape());
  check_shape(op, hi, "hi", Shape{N, H});
  check_shape(op, hj, "hj", Shape{N, H});
  check_shape(op, w.Wra, "Wra", Shape{H, 2});
  check_shape(op, w.b1, "b1", Shape{H});
  check_shape(op, w.W2, "W2", Shape{H, H});
  check_shape(op, w.b2, "b2", Shape{H});
  check_shape(op, w.c1_w, "c1_w", Shape{H, H});
  check_shape(op, w.c1_b, "c1_b", Shape{H});
  check_shape(op, w.c2_w, "c2_w", Shape{1, H});
  NSAMP_CHECK(w.att_w.defined() == w.att_b.defined(), op, ": the attention needs both its weight and bias");
  if (w.att_w.defined()) {
    check_operands(op, ctx, {{"x", &x}, {"att_w", &w.att_w}, {"att_b", &w.att_b}});
    check_shape(op, w.att_w, "att_w", Shape{1, H});
    check_shape(op, w.att_b, "att_b", Shape{1});
  }
}

}  // namespace

void egnn_pairs(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx) {
  const char* op = "egnn_pairs";
  check_layer(op, hi, hj, x, x0, n, w, ctx);
  const std::int64_t N = x.rows(), D = x.cols(), H = hi.cols();
  check_operands(op, ctx, {{"x", &x}, {"x_out", &x_out}});
  check_shape(op, x_out, "x_out", x.shape());
  if (agg) {
    check_operands(op, ctx, {{"x", &x}, {"agg", agg}});
    check_shape(op, *agg, "agg", Shape{N, H});
  }
  NSAMP_CHECK(!x_out.same_storage(x) && !x_out.same_storage(x0), op,
              ": x_out must not share memory with x or x0");
  if (N == 0) return;
  if (x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("egnn/egnn_pairs");
      detail::egnn_pairs_cuda(hi, hj, x, x0, n, w, x_out, agg, ctx);
    }
    return;
  }
  const std::int64_t B = N / n;
  if (x.dtype() == DType::F32)
    pairs_cpu(hi.data<float>(), hj.data<float>(), x.data<float>(), x0.data<float>(), B, n, int(D), int(H),
              weights_of<float>(w), w, x_out.data<float>(), agg ? agg->data<float>() : nullptr);
  else
    pairs_cpu(hi.data<double>(), hj.data<double>(), x.data<double>(), x0.data<double>(), B, n, int(D), int(H),
              weights_of<double>(w), w, x_out.data<double>(), agg ? agg->data<double>() : nullptr);
}

void egnn_pairs_backward(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                         const EgnnLayerWeights& w, const Tensor& g_x_out, const Tensor* g_agg,
                         EgnnLayerGrads& g, Context& ctx) {
  const char* op = "egnn_pairs_backward";
  check_layer(op, hi, hj, x, x0, n, w, ctx);
  const std::int64_t N = x.rows(), D = x.cols(), H = hi.cols();
  check_operands(op, ctx,
                 {{"x", &x},
                  {"g_x_out", &g_x_out},
                  {"g.hi", &g.hi},
                  {"g.hj", &g.hj},
                  {"g.x", &g.x},
                  {"g.x0", &g.x0},
                  {"g.Wra", &g.Wra},
                  {"g.b1", &g.b1},
                  {"g.W2", &g.W2},
                  {"g.b2", &g.b2},
                  {"g.c1_w", &g.c1_w},
                  {"g.c1_b", &g.c1_b},
                  {"g.c2_w", &g.c2_w}});
  check_shape(op, g_x_out, "g_x_out", x.shape());
  check_shape(op, g.hi, "g.hi", Shape{N, H});
  check_shape(op, g.hj, "g.hj", Shape{N, H});
  check_shape(op, g.x, "g.x", x.shape());
  check_shape(op, g.x0, "g.x0", x.shape());
  check_shape(op, g.Wra, "g.Wra", w.Wra.shape());
  check_shape(op, g.b1, "g.b1", w.b1.shape());
  check_shape(op, g.W2, "g.W2", w.W2.shape());
  check_shape(op, g.b2, "g.b2", w.b2.shape());
  check_shape(op, g.c1_w, "g.c1_w", w.c1_w.shape());
  check_shape(op, g.c1_b, "g.c1_b", w.c1_b.shape());
  check_shape(op, g.c2_w, "g.c2_w", w.c2_w.shape());
  if (w.att_w.defined()) {
    check_operands(op, ctx, {{"x", &x}, {"g.att_w", &g.att_w}, {"g.att_b", &g.att_b}});
    check_shape(op, g.att_w, "g.att_w", w.att_w.shape());
    check_shape(op, g.att_b, "g.att_b", w.att_b.shape());
  }
  if (g_agg) {
    check_operands(op, ctx, {{"x", &x}, {"g_agg", g_agg}});
    check_shape(op, *g_agg, "g_agg", Shape{N, H});
  }
  for (Tensor* t : {&g.Wra, &g.b1, &g.W2, &g.b2, &g.c1_w, &g.c1_b, &g.c2_w}) zero(*t, ctx);
  if (w.att_w.defined()) {
    zero(g.att_w, ctx);
    zero(g.att_b, ctx);
  }
  if (N == 0) return;
  if (x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("egnn/egnn_pairs_backward");
      detail::egnn_pairs_backward_cuda(hi, hj, x, x0, n, w, g_x_out, g_agg, g, ctx);
    }
    return;
  }
  const std::int64_t B = N / n;
  if (x.dtype() == DType::F32)
    pairs_backward_cpu(hi.data<float>(), hj.data<float>(), x.data<float>(), x0.data<float>(), B, n, int(D),
                       int(H), weights_of<float>(w), w, g_x_out.data<float>(),
                       g_agg ? g_agg->data<float>() : nullptr, grads_of<float>(g));
  else
    pairs_backward_cpu(hi.data<double>(), hj.data<double>(), x.data<double>(), x0.data<double>(), B, n,
                       int(D), int(H), weights_of<double>(w), w, g_x_out.data<double>(),
                       g_agg ? g_agg->data<double>() : nullptr, grads_of<double>(g));
}

}  // namespace nsamp::kernels
