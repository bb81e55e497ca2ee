// The CUDA EGNN kernels (kernels/src/egnn_kernels.cuh) run on the CPU under tests/emu/cuda_emulation.h, a
// thread per CUDA thread, against the CPU twin (kernels::egnn_pairs / egnn_pairs_backward on host tensors):
// so that the device code is checked where no GPU is at hand. Widths below, at and above a warp and not a
// multiple of it, pair tiles ending part-way, grids smaller than the batch (a block takes several samples),
// attention, tanh and the message aggregation on and off, every activation; shared memory poisoned.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/egnn_kernels.cuh"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/egnn.h"

using namespace nsamp;
using namespace nsamp::kernels;
using nsamp::emu::as;
using nsamp::emu::check_near;
using nsamp::emu::normal;

namespace {

struct Case {
  int n, D, H, B, grid_fwd, grid_bwd;
  bool att, tanh, agg;
  Activation act;
};

template <class T>
void run_case(const Case& c) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(c.n) * 1000 + std::uint64_t(c.H) * 7 + std::uint64_t(c.B));
  const int n = c.n, D = c.D, H = c.H;
  const std::int64_t N = std::int64_t(c.B) * n;
  const std::size_t NH = std::size_t(N) * std::size_t(H), ND = std::size_t(N) * std::size_t(D);
  const std::size_t HH = std::size_t(H) * std::size_t(H);
  const std::vector<double> hi = normal(NH, g, 0.5), hj = normal(NH, g, 0.5), x = normal(ND, g, 1.2),
                            x0 = normal(ND, g, 1.2), Wra = normal(2 * std::size_t(H), g, 0.2),
                            b1 = normal(std::size_t(H), g, 0.2), W2 = normal(HH, g, 0.7 / std::sqrt(H)),
                            b2 = normal(std::size_t(H), g, 0.2), attw = normal(std::size_t(H), g, 0.5),
                            attb = normal(1, g, 0.5), c1w = normal(HH, g, 0.7 / std::sqrt(H)),
                            c1b = normal(std::size_t(H), g, 0.2), c2w = normal(std::size_t(H), g, 0.5),
                            gxo = normal(ND, g, 1.0), gagg = normal(NH, g, 1.0);

  // The CPU twin in float64: the reference.
  auto host = [&](const std::vector<double>& v, Shape s) {
    return Tensor::from_vector(v, s, Device::cpu(), ctx);
  };
  EgnnLayerWeights w;
  w.Wra = host(Wra, Shape{H, 2});
  w.b1 = host(b1, Shape{H});
  w.W2 = host(W2, Shape{H, H});
  w.b2 = host(b2, Shape{H});
  w.c1_w = host(c1w, Shape{H, H});
  w.c1_b = host(c1b, Shape{H});
  w.c2_w = host(c2w, Shape{1, H});
  if (c.att) {
    w.att_w = host(attw, Shape{1, H});
    w.att_b = host(attb, Shape{1});
  }
  w.act = c.act;
  w.tanh = c.tanh;
  w.coords_range = c.tanh ? 0.7 : 1.0;
  const Tensor thi = host(hi, Shape{N, H}), thj = host(hj, Shape{N, H}), tx = host(x, Shape{N, D}),
               tx0 = host(x0, Shape{N, D});
  Tensor xo = Tensor::empty(Shape{N, D}, DType::F64, ctx), ag = Tensor::empty(Shape{N, H}, DType::F64, ctx);
  egnn_pairs(thi, thj, tx, tx0, n, w, xo, c.agg ? &ag : nullptr, ctx);
  const Tensor tgxo = host(gxo, Shape{N, D}), tgagg = host(gagg, Shape{N, H});
  auto like = [&](const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), ctx); };
  EgnnLayerGrads G;
  G.hi = like(thi);
  G.hj = like(thj);
  G.x = like(tx);
  G.x0 = like(tx0);
  G.Wra = like(w.Wra);
  G.b1 = like(w.b1);
  G.W2 = like(w.W2);
  G.b2 = like(w.b2);
  G.c1_w = like(w.c1_w);
  G.c1_b = like(w.c1_b);
  G.c2_w = like(w.c2_w);
  if (c.att) {
    G.att_w = like(w.att_w);
    G.att_b = like(w.att_b);
  }
  egnn_pairs_backward(thi, thj, tx, tx0, n, w, tgxo, c.agg ? &tgagg : nullptr, G, ctx);

  // The kernels, emulated, in T, with the launchers' geometry and buffer conventions.
  using namespace nsamp::kernels::detail;
  const std::vector<T> Thi = as<T>(hi), Thj = as<T>(hj), Tx = as<T>(x), Tx0 = as<T>(x0), TWra = as<T>(Wra),
                       Tb1 = as<T>(b1), TW2 = as<T>(W2), Tb2 = as<T>(b2), Tattw = as<T>(attw),
                       Tattb = as<T>(attb), Tc1w = as<T>(c1w), Tc1b = as<T>(c1b), Tc2w = as<T>(c2w),
                       Tgxo = as<T>(gxo), Tgagg = as<T>(gagg);
  const DevWeights<T> dw{TWra.data(),
                         Tb1.data(),
                         TW2.data(),
                         Tb2.data(),
                         c.att ? Tattw.data() : nullptr,
                         c.att ? Tattb.data() : nullptr,
                         Tc1w.data(),
                         Tc1b.data(),
                         Tc2w.data()};
  const int threads = egnn_threads(H);
  std::vector<T> exo(ND, T(NAN)), eag(NH, T(NAN));
  emu::launch(c.grid_fwd, threads, egnn_forward_smem<T>(H, n, D), [&] {
    egnn_pairs_kernel<T>(Thi.data(), Thj.data(), Tx.data(), Tx0.data(), c.B, n, D, H, dw, c.act, c.tanh,
                         T(w.coords_range), exo.data(), c.agg ? eag.data() : nullptr);
  });
  const PartialLayout L{H};
  std::vector<T> part(std::size_t(c.grid_bwd) * std::size_t(L.size()), T(0)), ghi(NH, T(0)), ghj(NH, T(0)),
      gx(ND, T(NAN)), gx0(ND, T(NAN));
  const DevGrads<T> dg{ghi.data(), ghj.data(), gx.data(), gx0.data(), part.data()};
  emu::launch(c.grid_bwd, threads, egnn_backward_smem<T>(H, n, D), [&] {
    egnn_pairs_backward_kernel<T>(Thi.data(), Thj.data(), Tx.data(), Tx0.data(), c.B, n, D, H, dw, c.act,
                                  c.tanh, T(w.coords_range), Tgxo.data(), c.agg ? Tgagg.data() : nullptr, dg);
  });
  auto reduced = [&](std::int64_t offset, std::int64_t count) {
    std::vector<T> out(std::size_t(count), T(NAN));
    emu::launch(
        2, 32, 0,  // a small grid: the grid-stride loop covers every entry
        [&] { reduce_partials_kernel<T>(part.data(), c.grid_bwd, L.size(), offset, count, out.data()); });
    return std::vector<double>(out.begin(), out.end());
  };
  auto d64 = [](const std::vector<T>& v) { return std::vector<double>(v.begin(), v.end()); };
  const double tol = sizeof(T) == 8 ? 1e-11 : 2e-4;
  check_near(xo.to_doubles(ctx), d64(exo), tol, "x_out");
  if (c.agg) check_near(ag.to_doubles(ctx), d64(eag), tol, "agg");
  check_near(G.hi.to_doubles(ctx), d64(ghi), tol, "grad hi");
  check_near(G.hj.to_doubles(ctx), d64(ghj), tol, "grad hj");
  check_near(G.x.to_doubles(ctx), d64(gx), tol, "grad x");
  check_near(G.x0.to_doubles(ctx), d64(gx0), tol, "grad x0");
  check_near(G.W2.to_doubles(ctx), reduced(L.W2(), std::int64_t(H) * H), tol, "grad W2");
  check_near(G.c1_w.to_doubles(ctx), reduced(L.Wc1(), std::int64_t(H) * H), tol, "grad c1_w");
  check_near(G.Wra.to_doubles(ctx), reduced(L.Wra(), 2 * std::int64_t(H)), tol, "grad Wra");
  check_near(G.b1.to_doubles(ctx), reduced(L.b1(), H), tol, "grad b1");
  check_near(G.b2.to_doubles(ctx), reduced(L.b2(), H), tol, "grad b2");
  check_near(G.c1_b.to_doubles(ctx), reduced(L.bc1(), H), tol, "grad c1_b");
  check_near(G.c2_w.to_doubles(ctx), reduced(L.wc2(), H), tol, "grad c2_w");
  if (c.att) {
    check_near(G.att_w.to_doubles(ctx), reduced(L.attw(), H), tol, "grad att_w");
    check_near(G.att_b.to_doubles(ctx), reduced(L.attb(), 1), tol, "grad att_b");
  }
}

}  // namespace

TEST_CASE("egnn kernels (CUDA code emulated on the CPU) match the CPU twin - forward and backward" *
          doctest::test_suite("cpu")) {
  // Kept small: every CUDA thread is a host thread and every shuffle two barriers.
  const Case cases[] = {
      {4, 2, 20, 5, 3, 2, true, true, true, Activation::SiLU},
      {5, 3, 40, 4, 3, 1, false, false, true, Activation::SiLU},
      {7, 2, 16, 3, 1, 2, true, false, false, Activation::GELU},
      {2, 1, 33, 3, 2, 3, true, true, true, Activation::Tanh},
  };
  for (const Case& c : cases) {
    CAPTURE(c.n);
    CAPTURE(c.D);
    CAPTURE(c.H);
    CAPTURE(c.B);
    CAPTURE(int(c.act));
    run_case<double>(c);
  }
  run_case<float>(Case{7, 3, 40, 3, 2, 2, true, true, true, Activation::Softplus});
}
