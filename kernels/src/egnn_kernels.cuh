// EGNN family: the CUDA kernels (device code only), included by egnn_cuda.cu, which launches them, and by
// tests/test_egnn_emulated.cpp, which runs them on the CPU with a thread per CUDA thread
// (tests/emu/cuda_emulation.h) against the CPU twin. The launch geometry (threads, shared memory) is here
// too, so that both use the same. One block per sample (grid-striding over samples), a thread per hidden
// channel; the ordered pairs are walked in tiles of kEgnnEdgeTile edges whose first-layer and message vectors
// sit in shared memory, so each weight a thread loads serves the whole tile. Reductions over channels (the
// attention logit and phi) are warp shuffles then one shared partial per warp. The coordinate aggregation
// accumulates in shared memory (n D values per sample); the message aggregation in one register per thread,
// flushed when the tile's edges move on to the next particle i (edges are ordered by i). The backward kernel
// recomputes each tile's forward values, runs the chain rule through them with the same layout, writes the
// node and input gradients to the sample's own rows (a block owns its samples, a thread its channel, so no
// atomics), and adds the weight gradients into the block's own slice of a partial buffer that one small
// reduction per weight then sums over blocks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "launch_cuda.cuh"
#include "nsamp/kernels/egnn.h"

namespace nsamp::kernels::detail {

namespace {

constexpr int kET = kEgnnEdgeTile;

template <class T>
struct DevWeights {
  const T *Wra, *b1, *W2, *b2, *att_w, *att_b, *c1_w, *c1_b, *c2_w;
};

template <class T>
__device__ T warp_sum(T v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(kFull, v, m);
  return v;
}

// s_out[t] = sum over the block's threads of v[t], t < NT. Ends with a barrier.
template <int NT, class T>
__device__ void block_sum_tile(T (&v)[NT], T* s_red, T* s_out) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const T s = warp_sum(v[t]);
    if (lane == 0) s_red[t * nwarps + warp] = s;
  }
  __syncthreads();
  if (threadIdx.x < NT) {
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
  NSAMP_DYNAMIC_SHARED(unsigned char, smem_raw);
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
  const std::int64_t E = std::int64_t(n) * (n - 1);
  const T wr = on ? w.Wra[2 * k] : T(0), wa = on ? w.Wra[2 * k + 1] : T(0);
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
            T r, a;
            egnn_edge_sq(x, x0, gi, gj, D, r, a);
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
        block_sum_tile<kET>(v, s_red, s_gate);
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
      block_sum_tile<kET>(c, s_red, s_phi);
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

// ---- backward -------------------------------------------------------------------------------------------
constexpr int kBT = 4;  // edges per tile in the backward pass (more state per edge than the forward)

// Per-block partial sums of the weight gradients, one slice of PartialLayout::size per block.
struct PartialLayout {
  std::int64_t H;
  NSAMP_HD std::int64_t W2() const { return 0; }
  NSAMP_HD std::int64_t Wc1() const { return H * H; }
  NSAMP_HD std::int64_t Wra() const { return 2 * H * H; }
  NSAMP_HD std::int64_t b1() const { return 2 * H * H + 2 * H; }
  NSAMP_HD std::int64_t b2() const { return b1() + H; }
  NSAMP_HD std::int64_t attw() const { return b1() + 2 * H; }
  NSAMP_HD std::int64_t bc1() const { return b1() + 3 * H; }
  NSAMP_HD std::int64_t wc2() const { return b1() + 4 * H; }
  NSAMP_HD std::int64_t attb() const { return b1() + 5 * H; }
  NSAMP_HD std::int64_t size() const { return attb() + 1; }
};

template <class T>
struct DevGrads {
  T *hi, *hj, *x, *x0, *part;
};

template <class T>
__global__ void egnn_pairs_backward_kernel(const T* __restrict__ hi, const T* __restrict__ hj,
                                           const T* __restrict__ x, const T* __restrict__ x0, std::int64_t B,
                                           int n, int D, int H, DevWeights<T> w, Activation act,
                                           bool tanh_bounded, T C, const T* __restrict__ gxo,
                                           const T* __restrict__ gagg, DevGrads<T> g) {
  NSAMP_DYNAMIC_SHARED(unsigned char, smem_raw);
  T* smem = reinterpret_cast<T*>(smem_raw);
  const int nwarps = blockDim.x >> 5;
  T* s_m1 = smem;                  // [kBT][H]
  T* s_m = s_m1 + kBT * H;         // [kBT][H]
  T* s_g = s_m + kBT * H;          // [kBT][H]: dL/dP3, then dL/dP2
  T* s_red = s_g + kBT * H;        // [kBT][nwarps]
  T* s_sc = s_red + kBT * nwarps;  // [kBT]
  T* s_phi = s_sc + kBT;           // [kBT]
  T* s_v1 = s_phi + kBT;           // [kBT]
  T* s_v2 = s_v1 + kBT;            // [kBT]
  T* s_gx = s_v2 + kBT;            // [n D]
  T* s_gx0 = s_gx + n * D;         // [n D]
  const int k = threadIdx.x;
  const bool on = k < H;
  const PartialLayout L{H};
  T* part = g.part + std::int64_t(blockIdx.x) * L.size();
  const std::int64_t E = std::int64_t(n) * (n - 1);
  const T wr = on ? w.Wra[2 * k] : T(0), wa = on ? w.Wra[2 * k + 1] : T(0);
  const T b1 = on ? w.b1[k] : T(0), b2 = on ? w.b2[k] : T(0), c1b = on ? w.c1_b[k] : T(0);
  const T c2 = on ? w.c2_w[k] : T(0), aw = (on && w.att_w) ? w.att_w[k] : T(0);
  const T ab = w.att_b ? w.att_b[0] : T(0);
  T rb1 = 0, rb2 = 0, rattw = 0, rbc1 = 0, rwc2 = 0, rwr = 0, rwa = 0, rattb = 0;
  for (std::int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    const std::int64_t base = b * n;
    for (int q = threadIdx.x; q < n * D; q += blockDim.x) s_gx[q] = s_gx0[q] = T(0);
    __syncthreads();
    for (std::int64_t e0 = 0; e0 < E; e0 += kBT) {
      const int ne = int(E - e0 < kBT ? E - e0 : kBT);
      int ei[kBT], ej[kBT];
      T r[kBT], a[kBT], p1[kBT], p2[kBT], p3[kBT], mt[kBT], gt[kBT], cc[kBT];
      // Forward recomputation of the tile.
#pragma unroll
      for (int t = 0; t < kBT; ++t) {
        ei[t] = ej[t] = 0;
        r[t] = a[t] = p1[t] = T(0);
        if (t < ne) {
          egnn_pair(e0 + t, n, ei[t], ej[t]);
          const std::int64_t gi = base + ei[t], gj = base + ej[t];
          egnn_edge_sq(x, x0, gi, gj, D, r[t], a[t]);
          if (on) p1[t] = hi[gi * H + k] + hj[gj * H + k] + wr * r[t] + wa * a[t] + b1;
        }
        if (on) s_m1[t * H + k] = t < ne ? activation_forward(act, p1[t]) : T(0);
      }
      __syncthreads();
#pragma unroll
      for (int t = 0; t < kBT; ++t) p2[t] = b2;
      if (on) {
        const T* row = w.W2 + std::int64_t(k) * H;
        for (int l = 0; l < H; ++l) {
          const T wl = row[l];
#pragma unroll
          for (int t = 0; t < kBT; ++t) p2[t] += wl * s_m1[t * H + l];
        }
      }
#pragma unroll
      for (int t = 0; t < kBT; ++t) mt[t] = on ? activation_forward(act, p2[t]) : T(0);
      if (w.att_w) {
        T v[kBT];
#pragma unroll
        for (int t = 0; t < kBT; ++t) v[t] = aw * mt[t];
        block_sum_tile<kBT>(v, s_red, s_sc);
#pragma unroll
        for (int t = 0; t < kBT; ++t) gt[t] = sigmoid(s_sc[t] + ab);
      } else {
#pragma unroll
        for (int t = 0; t < kBT; ++t) gt[t] = T(1);
      }
      if (on)
#pragma unroll
        for (int t = 0; t < kBT; ++t) s_m[t * H + k] = mt[t] * gt[t];
      __syncthreads();
#pragma unroll
      for (int t = 0; t < kBT; ++t) p3[t] = c1b;
      if (on) {
        const T* row = w.c1_w + std::int64_t(k) * H;
        for (int l = 0; l < H; ++l) {
          const T wl = row[l];
#pragma unroll
          for (int t = 0; t < kBT; ++t) p3[t] += wl * s_m[t * H + l];
        }
      }
      {
        T v[kBT];
#pragma unroll
        for (int t = 0; t < kBT; ++t) {
          cc[t] = on ? activation_forward(act, p3[t]) : T(0);
          v[t] = c2 * cc[t];
        }
        block_sum_tile<kBT>(v, s_red, s_phi);
      }
      // Backward: dL/dphi_raw per edge (every thread computes the same few scalars), then the coordinate MLP.
      T gphir[kBT];
#pragma unroll
      for (int t = 0; t < kBT; ++t) {
        gphir[t] = T(0);
        if (t < ne) {
          const std::int64_t gi = base + ei[t], gj = base + ej[t];
          T dotd = 0;
          for (int q = 0; q < D; ++q) dotd += gxo[gi * D + q] * (x[gi * D + q] - x[gj * D + q]);
          gphir[t] = egnn_coord_weight(r[t]) * dotd * egnn_phi_draw(s_phi[t], tanh_bounded, C);
        }
      }
      T gm[kBT];
      if (on) {
#pragma unroll
        for (int t = 0; t < kBT; ++t) {
          const T gp3 = gphir[t] * c2 * activation_derivative(act, p3[t]);
          rwc2 += gphir[t] * cc[t];
          rbc1 += gp3;
          s_g[t * H + k] = gp3;
        }
      }
      __syncthreads();
#pragma unroll
      for (int t = 0; t < kBT; ++t) gm[t] = T(0);
      if (on) {
        // Thread k owns column k of the weight gradient (entry (l, k) = sum_t g[t, l] m[t, k]), so that a
        // warp's read-modify-writes of the block's partial are consecutive addresses.
        T* pcol = part + L.Wc1() + k;
        T mk[kBT];
#pragma unroll
        for (int t = 0; t < kBT; ++t) mk[t] = s_m[t * H + k];
        for (int l = 0; l < H; ++l) {
          T acc = 0, wl = w.c1_w[std::int64_t(l) * H + k];
#pragma unroll
          for (int t = 0; t < kBT; ++t) {
            const T gl = s_g[t * H + l];
            acc += gl * mk[t];
            gm[t] += wl * gl;
          }
          pcol[std::int64_t(l) * H] += acc;
        }
#pragma unroll
        for (int t = 0; t < kBT; ++t)
          if (gagg && t < ne) gm[t] += gagg[(base + ei[t]) * H + k];
      }
      __syncthreads();  // s_g is rewritten below
      T gmt[kBT];
      if (w.att_w) {
        T v[kBT];
#pragma unroll
        for (int t = 0; t < kBT; ++t) v[t] = gm[t] * mt[t];
        block_sum_tile<kBT>(v, s_red, s_sc);
#pragma unroll
        for (int t = 0; t < kBT; ++t) {
          const T gs = t < ne ? s_sc[t] * gt[t] * (T(1) - gt[t]) : T(0);
          rattw += gs * mt[t];
          if (threadIdx.x == 0) rattb += gs;
          gmt[t] = gm[t] * gt[t] + gs * aw;
        }
      } else {
#pragma unroll
        for (int t = 0; t < kBT; ++t) gmt[t] = gm[t];
      }
      if (on) {
#pragma unroll
        for (int t = 0; t < kBT; ++t) {
          const T gp2 = t < ne ? gmt[t] * activation_derivative(act, p2[t]) : T(0);
          rb2 += gp2;
          s_g[t * H + k] = gp2;
        }
      }
      __syncthreads();
      T gp1[kBT];
#pragma unroll
      for (int t = 0; t < kBT; ++t) gp1[t] = T(0);
      if (on) {
        T* pcol = part + L.W2() + k;  // column k, as above
        T mk[kBT];
#pragma unroll
        for (int t = 0; t < kBT; ++t) mk[t] = s_m1[t * H + k];
        for (int l = 0; l < H; ++l) {
          T acc = 0, wl = w.W2[std::int64_t(l) * H + k];
#pragma unroll
          for (int t = 0; t < kBT; ++t) {
            const T gl = s_g[t * H + l];
            acc += gl * mk[t];
            gp1[t] += wl * gl;
          }
          pcol[std::int64_t(l) * H] += acc;
        }
#pragma unroll
        for (int t = 0; t < kBT; ++t) {
          gp1[t] = t < ne ? gp1[t] * activation_derivative(act, p1[t]) : T(0);
          rb1 += gp1[t];
          rwr += gp1[t] * r[t];
          rwa += gp1[t] * a[t];
          if (t < ne) {
            g.hi[(base + ei[t]) * H + k] += gp1[t];
            g.hj[(base + ej[t]) * H + k] += gp1[t];
          }
        }
      }
      {
        T v1[kBT], v2[kBT];
#pragma unroll
        for (int t = 0; t < kBT; ++t) {
          v1[t] = wr * gp1[t];
          v2[t] = wa * gp1[t];
        }
        block_sum_tile<kBT>(v1, s_red, s_v1);
        block_sum_tile<kBT>(v2, s_red, s_v2);
      }
      if (threadIdx.x == 0) {
        for (int t = 0; t < ne; ++t) {
          const int i = ei[t], j = ej[t];
          const std::int64_t gi = base + i, gj = base + j;
          const T cw = egnn_coord_weight(r[t]), phi = egnn_phi(s_phi[t], tanh_bounded, C);
          T dotd = 0;
          for (int q = 0; q < D; ++q) dotd += gxo[gi * D + q] * (x[gi * D + q] - x[gj * D + q]);
          const T gr = phi * dotd * egnn_coord_weight_dr(r[t]) + s_v1[t];
          for (int q = 0; q < D; ++q) {
            const T dq = x[gi * D + q] - x[gj * D + q], eq = x0[gi * D + q] - x0[gj * D + q];
            const T gd = gxo[gi * D + q] * cw * phi + T(2) * dq * gr;
            s_gx[i * D + q] += gd;
            s_gx[j * D + q] -= gd;
            s_gx0[i * D + q] += T(2) * eq * s_v2[t];
            s_gx0[j * D + q] -= T(2) * eq * s_v2[t];
          }
        }
      }
      __syncthreads();
    }
    for (int q = threadIdx.x; q < n * D; q += blockDim.x) {
      g.x[base * D + q] = gxo[base * D + q] + s_gx[q];
      g.x0[base * D + q] = s_gx0[q];
    }
    __syncthreads();
  }
  if (on) {
    part[L.b1() + k] = rb1;
    part[L.b2() + k] = rb2;
    part[L.attw() + k] = rattw;
    part[L.bc1() + k] = rbc1;
    part[L.wc2() + k] = rwc2;
    part[L.Wra() + 2 * k] = rwr;
    part[L.Wra() + 2 * k + 1] = rwa;
  }
  if (threadIdx.x == 0) part[L.attb()] = rattb;
}

// out[q] = sum over blocks of part[b * stride + offset + q].
template <class T>
__global__ void reduce_partials_kernel(const T* __restrict__ part, int blocks, std::int64_t stride,
                                       std::int64_t offset, std::int64_t count, T* __restrict__ out) {
  NSAMP_GRID_STRIDE(q, count) {
    T s = 0;
    for (int b = 0; b < blocks; ++b) s += part[std::int64_t(b) * stride + offset + q];
    out[q] = s;
  }
}

// Launch geometry: a thread per hidden channel, rounded up to whole warps; the dynamic shared memory of each
// kernel (what its NSAMP_DYNAMIC_SHARED carve-up takes).
inline int egnn_threads(int H) { return (H + 31) / 32 * 32; }
template <class T>
std::size_t egnn_forward_smem(int H, int n, int D) {
  const int nwarps = egnn_threads(H) / 32;
  return sizeof(T) *
         (std::size_t(2 * kET * H) + std::size_t(kET * nwarps) + 2 * kET + std::size_t(n) * std::size_t(D));
}
template <class T>
std::size_t egnn_backward_smem(int H, int n, int D) {
  const int nwarps = egnn_threads(H) / 32;
  return sizeof(T) * (std::size_t(3 * kBT * H) + std::size_t(kBT * nwarps) + 4 * kBT +
                      2 * std::size_t(n) * std::size_t(D));
}

}  // namespace

}  // namespace nsamp::kernels::detail
