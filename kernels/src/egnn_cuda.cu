// EGNN family: CUDA launcher. One block per sample (grid-striding over samples), a thread per hidden
// channel; the ordered pairs are walked in tiles of kEgnnEdgeTile edges whose first-layer and message vectors
// sit in shared memory, so each weight a thread loads serves the whole tile. Reductions over channels (the
// attention logit and phi) are warp shuffles then one shared partial per warp. The coordinate aggregation
// accumulates in shared memory (n D values per sample); the message aggregation in one register per thread,
// flushed when the tile's edges move on to the next particle i (edges are ordered by i).
#include <algorithm>

#include "launch_cuda.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/kernels/egnn.h"

namespace nsamp::kernels::detail {

namespace {

constexpr int kET = kEgnnEdgeTile;
constexpr unsigned kFull = 0xffffffffu;

template <class T>
struct DevWeights {
  const T *W1, *b1, *W2, *b2, *att_w, *att_b, *c1_w, *c1_b, *c2_w;
};

template <class T>
__device__ T warp_sum(T v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(kFull, v, m);
  return v;
}

// s_out[t] = sum over the block's threads of v[t], t < kET. Ends with a barrier.
template <class T>
__device__ void block_sum_tile(T (&v)[kET], T* s_red, T* s_out) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
  for (int t = 0; t < kET; ++t) {
    const T s = warp_sum(v[t]);
    if (lane == 0) s_red[t * nwarps + warp] = s;
  }
  __syncthreads();
  if (threadIdx.x < kET) {
    T s = 0;
    for (int w = 0; w < nwarps; ++w) s += s_red[threadIdx.x * nwarps + w];
    s_out[threadIdx.x] = s;
  }
  __syncthreads();
}

template <class T>
__global__ void egnn_pairs_kernel(const T* __restrict__ hi, const T* __restrict__ hj, const T* __restrict__ x,
                                  const T* __restrict__ x0, std::int64_t B, int n, int D, int H,
                                  DevWeights<T> w, Activation act, bool tanh_bounded, T C,
                                  T* __restrict__ x_out, T* __restrict__ agg) {
  extern __shared__ unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const int nwarps = blockDim.x >> 5;
  T* s_m1 = smem;                    // [kET][H]
  T* s_m = s_m1 + kET * H;           // [kET][H]
  T* s_red = s_m + kET * H;          // [kET][nwarps]
  T* s_gate = s_red + kET * nwarps;  // [kET]
  T* s_phi = s_gate + kET;           // [kET]
  T* s_x = s_phi + kET;              // [n D]
  const int k = threadIdx.x;
  const bool on = k < H;
  const std::int64_t ld1 = 2 * std::int64_t(H) + 2;
  const std::int64_t E = std::int64_t(n) * (n - 1);
  const T wr = on ? w.W1[k * ld1 + 2 * H] : T(0), wa = on ? w.W1[k * ld1 + 2 * H + 1] : T(0);
  const T b1 = on ? w.b1[k] : T(0), b2 = on ? w.b2[k] : T(0), c1b = on ? w.c1_b[k] : T(0);
  const T c2 = on ? w.c2_w[k] : T(0), aw = (on && w.att_w) ? w.att_w[k] : T(0);
  const T ab = w.att_b ? w.att_b[0] : T(0);
  for (std::int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    const std::int64_t base = b * n;
    for (int q = threadIdx.x; q < n * D; q += blockDim.x) s_x[q] = x[base * D + q];
    int cur_i = -1;
    T agg_acc = 0;
    __syncthreads();
    for (std::int64_t e0 = 0; e0 < E; e0 += kET) {
      const int ne = int(E - e0 < kET ? E - e0 : kET);
      // The edge MLP's first layer for the tile.
      if (on) {
#pragma unroll
        for (int t = 0; t < kET; ++t) {
          T v = 0;
          if (t < ne) {
            int i, j;
            egnn_pair(e0 + t, n, i, j);
            const std::int64_t gi = base + i, gj = base + j;
            T r = 0, a = 0;
            for (int q = 0; q < D; ++q) {
              const T dq = x[gi * D + q] - x[gj * D + q], eq = x0[gi * D + q] - x0[gj * D + q];
              r += dq * dq;
              a += eq * eq;
            }
            v = activation_forward(act, hi[gi * H + k] + hj[gj * H + k] + wr * r + wa * a + b1);
          }
          s_m1[t * H + k] = v;
        }
      }
      __syncthreads();
      // m = act(W2 m1 + b2): one weight load per l serves the tile.
      T m[kET];
#pragma unroll
      for (int t = 0; t < kET; ++t) m[t] = b2;
      if (on) {
        const T* row = w.W2 + std::int64_t(k) * H;
        for (int l = 0; l < H; ++l) {
          const T wl = row[l];
#pragma unroll
          for (int t = 0; t < kET; ++t) m[t] += wl * s_m1[t * H + l];
        }
      }
#pragma unroll
      for (int t = 0; t < kET; ++t) m[t] = on ? activation_forward(act, m[t]) : T(0);
      if (w.att_w) {
        T v[kET];
#pragma unroll
        for (int t = 0; t < kET; ++t) v[t] = aw * m[t];
        block_sum_tile(v, s_red, s_gate);
#pragma unroll
        for (int t = 0; t < kET; ++t) m[t] *= sigmoid(s_gate[t] + ab);
      }
      if (on) {
#pragma unroll
        for (int t = 0; t < kET; ++t) {
          s_m[t * H + k] = m[t];
          if (t < ne && agg) {
            int i, j;
            egnn_pair(e0 + t, n, i, j);
            if (i != cur_i) {
              if (cur_i >= 0) agg[(base + cur_i) * H + k] = agg_acc;
              cur_i = i;
              agg_acc = 0;
            }
            agg_acc += m[t];
          }
        }
      }
      __syncthreads();
      // phi = wc2 . act(Wc1 m + bc1).
      T c[kET];
#pragma unroll
      for (int t = 0; t < kET; ++t) c[t] = c1b;
      if (on) {
        const T* row = w.c1_w + std::int64_t(k) * H;
        for (int l = 0; l < H; ++l) {
          const T wl = row[l];
#pragma unroll
          for (int t = 0; t < kET; ++t) c[t] += wl * s_m[t * H + l];
        }
      }
#pragma unroll
      for (int t = 0; t < kET; ++t) c[t] = on ? c2 * activation_forward(act, c[t]) : T(0);
      block_sum_tile(c, s_red, s_phi);
      // The coordinate update, one thread for the tile (edges of the same i would race).
      if (threadIdx.x == 0) {
        for (int t = 0; t < ne; ++t) {
          int i, j;
          egnn_pair(e0 + t, n, i, j);
          const std::int64_t gi = base + i, gj = base + j;
          T r = 0, d[8];
          for (int q = 0; q < D; ++q) {
            d[q] = x[gi * D + q] - x[gj * D + q];
            r += d[q] * d[q];
          }
          const T f = egnn_phi(s_phi[t], tanh_bounded, C) * egnn_coord_weight(r);
          for (int q = 0; q < D; ++q) s_x[i * D + q] += d[q] * f;
        }
      }
      __syncthreads();
    }
    if (on && agg && cur_i >= 0) agg[(base + cur_i) * H + k] = agg_acc;
    for (int q = threadIdx.x; q < n * D; q += blockDim.x) x_out[base * D + q] = s_x[q];
    __syncthreads();
  }
}

template <class T>
void launch(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
            const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx) {
  const std::int64_t N = x.rows(), B = N / n;
  const int D = int(x.cols()), H = int(hi.cols());
  NSAMP_CHECK(H <= 1024, "egnn_pairs: width ", H, " exceeds the 1024 threads of a block");
  const int threads = (H + 31) / 32 * 32, nwarps = threads / 32;
  const std::size_t smem = sizeof(T) * (std::size_t(2 * kET * H) + std::size_t(kET * nwarps) + 2 * kET +
                                        std::size_t(n) * std::size_t(D));
  NSAMP_CHECK(smem <= 48 * 1024, "egnn_pairs: ", n, " particles x width ", H, " need ", smem,
              " bytes of shared memory per block, over 48 KiB");
  auto p = [](const Tensor& t) { return t.defined() ? t.data<T>() : static_cast<const T*>(nullptr); };
  const DevWeights<T> dw{p(w.W1),    p(w.b1),   p(w.W2),   p(w.b2),  p(w.att_w),
                         p(w.att_b), p(w.c1_w), p(w.c1_b), p(w.c2_w)};
  const int grid = int(std::min<std::int64_t>(B, 132 * 16));
  egnn_pairs_kernel<T><<<grid, threads, smem, ctx.stream()>>>(
      hi.data<T>(), hj.data<T>(), x.data<T>(), x0.data<T>(), B, n, D, H, dw, w.act, w.tanh, T(w.coords_range),
      x_out.data<T>(), agg ? agg->data<T>() : nullptr);
  NSAMP_CUDA_CHECK_LAUNCH("egnn_pairs " + x.desc() + " width " + std::to_string(H));
}

}  // namespace

void egnn_pairs_cuda(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                     const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx) {
  if (x.dtype() == DType::F32)
    launch<float>(hi, hj, x, x0, n, w, x_out, agg, ctx);
  else
    launch<double>(hi, hj, x, x0, n, w, x_out, agg, ctx);
}

}  // namespace nsamp::kernels::detail
