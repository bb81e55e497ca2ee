// EGNN family: checks, dispatch and the CPU launcher (a thread per sample, its pair messages in small
// per-thread buffers).
#include <algorithm>
#include <vector>

#include <Eigen/Core>

#include "nsamp/core/config.h"
#include "nsamp/kernels/egnn.h"
#include "nsamp/kernels/operands.h"

namespace nsamp::kernels {

namespace {

template <class T>
struct Weights {
  const T *W1, *b1, *W2, *b2, *att_w, *att_b, *c1_w, *c1_b, *c2_w;
};

template <class T>
Weights<T> weights_of(const EgnnLayerWeights& w) {
  auto p = [](const Tensor& t) { return t.defined() ? t.data<T>() : static_cast<const T*>(nullptr); };
  return {p(w.W1), p(w.b1), p(w.W2), p(w.b2), p(w.att_w), p(w.att_b), p(w.c1_w), p(w.c1_b), p(w.c2_w)};
}

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Per sample, the edges in chunks of kChunk rows: the first layer per edge, then both H x H layers as one
// small GEMM per chunk (Eigen, single-threaded inside the per-sample OpenMP loop), then the per-edge gate,
// aggregations and coordinate update. Only [kChunk, H] buffers per thread.
template <class T>
void pairs_cpu(const T* hi, const T* hj, const T* x, const T* x0, std::int64_t B, int n, int D, int H,
               const Weights<T>& w, const EgnnLayerWeights& cfg, T* x_out, T* agg) {
  constexpr std::int64_t kChunk = 64;
  const T C = T(cfg.coords_range);
  const std::int64_t ld1 = 2 * std::int64_t(H) + 2, E = std::int64_t(n) * (n - 1);
  const Eigen::Map<const RowMat<T>> W2(w.W2, H, H), Wc1(w.c1_w, H, H);
#pragma omp parallel
  {
    RowMat<T> m1(kChunk, H), m(kChunk, H), c(kChunk, H);
    std::vector<T> xa(static_cast<std::size_t>(n * D)), rr(static_cast<std::size_t>(kChunk));
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t base = b * n;
      for (int q = 0; q < n * D; ++q) xa[std::size_t(q)] = x[base * D + q];
      if (agg)
        for (std::int64_t q = 0; q < std::int64_t(n) * H; ++q) agg[base * H + q] = T(0);
      for (std::int64_t e0 = 0; e0 < E; e0 += kChunk) {
        const std::int64_t ne = std::min(kChunk, E - e0);
        for (std::int64_t t = 0; t < ne; ++t) {
          int i, j;
          egnn_pair(e0 + t, n, i, j);
          const std::int64_t gi = base + i, gj = base + j;
          T r = 0, a = 0;
          for (int k = 0; k < D; ++k) {
            const T dk = x[gi * D + k] - x[gj * D + k], ek = x0[gi * D + k] - x0[gj * D + k];
            r += dk * dk;
            a += ek * ek;
          }
          rr[std::size_t(t)] = r;
          for (int k = 0; k < H; ++k)
            m1(t, k) =
                activation_forward(cfg.act, hi[gi * H + k] + hj[gj * H + k] + w.W1[k * ld1 + 2 * H] * r +
                                                w.W1[k * ld1 + 2 * H + 1] * a + w.b1[k]);
        }
        m.topRows(ne).noalias() = m1.topRows(ne) * W2.transpose();
        for (std::int64_t t = 0; t < ne; ++t) {
          for (int k = 0; k < H; ++k) m(t, k) = activation_forward(cfg.act, m(t, k) + w.b2[k]);
          if (w.att_w) {
            T s = w.att_b ? w.att_b[0] : T(0);
            for (int k = 0; k < H; ++k) s += w.att_w[k] * m(t, k);
            const T g = sigmoid(s);
            for (int k = 0; k < H; ++k) m(t, k) *= g;
          }
          if (agg) {
            int i, j;
            egnn_pair(e0 + t, n, i, j);
            for (int k = 0; k < H; ++k) agg[(base + i) * H + k] += m(t, k);
          }
        }
        c.topRows(ne).noalias() = m.topRows(ne) * Wc1.transpose();
        for (std::int64_t t = 0; t < ne; ++t) {
          T phi = 0;
          for (int k = 0; k < H; ++k) phi += w.c2_w[k] * activation_forward(cfg.act, c(t, k) + w.c1_b[k]);
          int i, j;
          egnn_pair(e0 + t, n, i, j);
          const T f = egnn_phi(phi, cfg.tanh, C) * egnn_coord_weight(rr[std::size_t(t)]);
          for (int k = 0; k < D; ++k)
            xa[std::size_t(i * D + k)] += (x[(base + i) * D + k] - x[(base + j) * D + k]) * f;
        }
      }
      for (int q = 0; q < n * D; ++q) x_out[base * D + q] = xa[std::size_t(q)];
    }
  }
}

}  // namespace

void egnn_pairs(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx) {
  const char* op = "egnn_pairs";
  check_operands(op, ctx,
                 {{"x_out", &x_out},
                  {"hi", &hi},
                  {"hj", &hj},
                  {"x", &x},
                  {"x0", &x0},
                  {"W1", &w.W1},
                  {"b1", &w.b1},
                  {"W2", &w.W2},
                  {"b2", &w.b2},
                  {"c1_w", &w.c1_w},
                  {"c1_b", &w.c1_b},
                  {"c2_w", &w.c2_w}});
  NSAMP_CHECK(n >= 2 && x.rank() == 2 && x.rows() % n == 0 && x.cols() >= 1 && x.cols() <= 8, op,
              ": x must be [B n, D] with n >= 2 and D <= 8, got ", x.desc(), " for n = ", n);
  const std::int64_t N = x.rows(), D = x.cols(), H = hi.cols();
  check_shape(op, x0, "x0", x.shape());
  check_shape(op, x_out, "x_out", x.shape());
  check_shape(op, hi, "hi", Shape{N, H});
  check_shape(op, hj, "hj", Shape{N, H});
  check_shape(op, w.W1, "W1", Shape{H, 2 * H + 2});
  check_shape(op, w.b1, "b1", Shape{H});
  check_shape(op, w.W2, "W2", Shape{H, H});
  check_shape(op, w.b2, "b2", Shape{H});
  check_shape(op, w.c1_w, "c1_w", Shape{H, H});
  check_shape(op, w.c1_b, "c1_b", Shape{H});
  check_shape(op, w.c2_w, "c2_w", Shape{1, H});
  NSAMP_CHECK(w.att_w.defined() == w.att_b.defined(), op, ": the attention needs both its weight and bias");
  if (w.att_w.defined()) {
    check_operands(op, ctx, {{"x_out", &x_out}, {"att_w", &w.att_w}, {"att_b", &w.att_b}});
    check_shape(op, w.att_w, "att_w", Shape{1, H});
    check_shape(op, w.att_b, "att_b", Shape{1});
  }
  if (agg) {
    check_operands(op, ctx, {{"x_out", &x_out}, {"agg", agg}});
    check_shape(op, *agg, "agg", Shape{N, H});
  }
  NSAMP_CHECK(!x_out.same_storage(x) && !x_out.same_storage(x0), op,
              ": x_out must not share memory with x or x0");
  if (N == 0) return;
  if (x.device().is_cuda()) {
    if constexpr (kCudaBuilt) detail::egnn_pairs_cuda(hi, hj, x, x0, n, w, x_out, agg, ctx);
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

}  // namespace nsamp::kernels
