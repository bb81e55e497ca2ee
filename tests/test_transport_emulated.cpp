// The CUDA transport kernels (kernels/src/transport_kernels.cuh) run on the CPU under
// tests/emu/cuda_emulation.h, a thread per CUDA thread, against the CPU twin (kernels::pairwise_cost,
// sinkhorn_potential, sinkhorn_plan_rows, log_kernel_sum and auction_round on host tensors). Pairwise tiles
// ending part-way in rows, columns and the feature dimension; warp-per-row kernels with rows shorter than a
// warp and longer, grids smaller than the work (grid-stride loops), potentials of -inf and an empty y; and
// whole auctions with epsilon scaling, integer costs that tie, rows of +inf and NaN costs, compared with the
// CPU twin round by round, bit for bit (the round's result must not depend on the device's thread order).
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/transport_kernels.cuh"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/transport.h"

using namespace nsamp;
using namespace nsamp::kernels;
namespace kd = nsamp::kernels::detail;

namespace {

template <class T>
double transport_tol() {
  return sizeof(T) == 8 ? 1e-12 : 2e-5;
}

template <class T>
void check_pairwise(std::int64_t N, std::int64_t M, std::int64_t d) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(N * 1000 + M * 10 + d));
  const std::vector<T> x = emu::as<T>(emu::normal(std::size_t(N * d), g, 1.0)),
                       y = emu::as<T>(emu::normal(std::size_t(M * d), g, 1.0));
  const Tensor tx = emu::host_tensor(emu::as<double>(x), Shape{N, d}, ctx),
               ty = emu::host_tensor(emu::as<double>(y), Shape{M, d}, ctx);
  for (bool sq : {true, false}) {
    Tensor want = Tensor::empty(Shape{N, M}, DType::F64, ctx);
    pairwise_cost(tx, ty, sq ? PairCost::SqEuclidean : PairCost::Euclidean, want, ctx);
    std::vector<T> out(std::size_t(N * M), T(NAN));
    const emu::Dim3 grid{unsigned((M + kd::kTile - 1) / kd::kTile), unsigned((N + kd::kTile - 1) / kd::kTile),
                         1};
    emu::launch(grid, emu::Dim3{unsigned(kd::kTile), unsigned(kd::kTileThreadRows), 1}, 0,
                [&] { kd::pairwise_kernel<T>(x.data(), y.data(), out.data(), N, M, d, sq); });
    emu::check_near(want.to_doubles(ctx), emu::as<double>(out), transport_tol<T>(),
                    sq ? "sqeuclidean" : "euclidean");
  }
}

// Potential, plan sums and the Gaussian kernel sum, each one warp per row, on a grid of `grid` blocks.
template <class T>
void check_rows(std::int64_t N, std::int64_t M, std::int64_t d, int grid, bool g_all_minus_inf) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 gen(std::uint64_t(N * 31 + M * 7 + d + g_all_minus_inf));
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> cd = emu::normal(std::size_t(N * M), gen, 1.0),
                      gd = emu::normal(std::size_t(M), gen, 0.5), fd = emu::normal(std::size_t(N), gen, 0.5);
  for (double& v : cd) v = std::abs(v) * 3;
  if (M > 2) gd[1] = -inf;  // a column a previous update emptied
  if (g_all_minus_inf) std::fill(gd.begin(), gd.end(), -inf);
  const std::vector<T> c = emu::as<T>(cd), gv = emu::as<T>(gd), f = emu::as<T>(fd);
  const Tensor tc = emu::host_tensor(emu::as<double>(c), Shape{N, M}, ctx),
               tg = emu::host_tensor(emu::as<double>(gv), Shape{M}, ctx),
               tf = emu::host_tensor(emu::as<double>(f), Shape{N}, ctx);
  for (double eps : {0.7, 0.05}) {
    CAPTURE(eps);
    const double log_a = -std::log(double(N));
    Tensor want = Tensor::empty(Shape{N}, DType::F64, ctx);
    sinkhorn_potential(tc, tg, log_a, eps, want, ctx);
    std::vector<T> out(std::size_t(N), T(NAN));
    emu::launch(grid, kd::kThreads, 0,
                [&] { kd::potential_kernel<T>(c.data(), gv.data(), T(log_a), T(eps), out.data(), N, M); });
    emu::check_near(want.to_doubles(ctx), emu::as<double>(out), transport_tol<T>(), "potential");

    if (g_all_minus_inf) continue;
    Tensor wm = Tensor::empty(Shape{N}, DType::F64, ctx), wc = Tensor::empty(Shape{N}, DType::F64, ctx);
    sinkhorn_plan_rows(tc, tf, tg, eps, wm, wc, ctx);
    std::vector<T> mass(std::size_t(N), T(NAN)), cost(std::size_t(N), T(NAN));
    emu::launch(grid, kd::kThreads, 0, [&] {
      kd::plan_rows_kernel<T>(c.data(), f.data(), gv.data(), T(eps), mass.data(), cost.data(), N, M);
    });
    // exp((f + g - c) / eps) amplifies the exponent's float32 rounding by up to max|c| / eps.
    const double pt = sizeof(T) == 8 ? 1e-11 : 2e-5 * (1 + 12 / eps);
    emu::check_rel(wm.to_doubles(ctx), emu::as<double>(mass), pt, emu::tiny<T>(), "row mass");
    emu::check_rel(wc.to_doubles(ctx), emu::as<double>(cost), pt, emu::tiny<T>(), "row cost");
  }

  const std::vector<T> x = emu::as<T>(emu::normal(std::size_t(N * d), gen, 1.0)),
                       y = emu::as<T>(emu::normal(std::size_t(M * d), gen, 1.0));
  std::vector<double> sd = emu::normal(std::size_t(N), gen, 1.0);
  for (double& v : sd) v = std::abs(v);
  if (N > 1) sd[0] = 0;  // a zero scale: log M exactly
  const std::vector<T> scale = emu::as<T>(sd);
  for (std::int64_t m : {M, std::int64_t(0)}) {
    CAPTURE(m);
    Tensor want = Tensor::empty(Shape{N}, DType::F64, ctx);
    log_kernel_sum(emu::host_tensor(emu::as<double>(x), Shape{N, d}, ctx),
                   emu::host_tensor(std::vector<double>(y.begin(), y.begin() + m * d), Shape{m, d}, ctx),
                   emu::host_tensor(emu::as<double>(scale), Shape{N}, ctx), want, ctx);
    std::vector<T> out(std::size_t(N), T(NAN));
    emu::launch(grid, kd::kThreads, 0,
                [&] { kd::log_kernel_sum_kernel<T>(x.data(), y.data(), scale.data(), out.data(), N, m, d); });
    emu::check_near(want.to_doubles(ctx), emu::as<double>(out), transport_tol<T>() * 10, "log kernel sum");
  }
}

// The auction's device state as host vectors, driven by the kernels in auction_round_cuda's order, on grids
// of at most `max_grid` blocks of 64 threads: the kernels are grid-stride loops over warps or threads,
// correct for any launch shape, and 256-thread blocks would make the emulation four times slower.
struct EmuAuction {
  std::int64_t n;
  int max_grid;
  std::vector<double> prices, bid, best;
  std::vector<std::int32_t> x, y, who, bcol, win, count;

  EmuAuction(std::int64_t n_, int max_grid_)
      : n(n_),
        max_grid(max_grid_),
        prices(std::size_t(n_), 0.0),
        bid(std::size_t(n_), NAN),
        best(std::size_t(n_), NAN),
        x(std::size_t(n_), -7),
        y(std::size_t(n_), -7),
        who(std::size_t(n_), -7),
        bcol(std::size_t(n_), -7),
        win(std::size_t(n_), -7),
        count(1, -7) {}

  static constexpr int kBlock = 64;
  int grid(std::int64_t work) const { return std::min(kd::grid_for(work, kBlock), max_grid); }

  void begin_phase() {
    emu::launch(grid(n), kBlock, 0, [&] {
      kd::begin_phase_kernel(x.data(), y.data(), who.data(), best.data(), win.data(), count.data(), n);
    });
  }

  template <class T>
  std::int64_t round(const std::vector<T>& c, double eps, std::int64_t m) {
    emu::launch(grid(m * 32), kBlock, 0, [&] {
      kd::bid_kernel<T>(c.data(), prices.data(), who.data(), m, n, eps, bcol.data(), bid.data(), best.data());
    });
    emu::launch(grid(m), kBlock, 0,
                [&] { kd::resolve_kernel(who.data(), bcol.data(), bid.data(), best.data(), win.data(), m); });
    emu::launch(grid(m), kBlock, 0, [&] {
      kd::assign_kernel(who.data(), bcol.data(), best.data(), win.data(), prices.data(), x.data(), y.data(),
                        m);
    });
    emu::launch(grid(m), kBlock, 0, [&] { kd::reset_kernel(bcol.data(), best.data(), win.data(), m); });
    count[0] = 0;
    emu::launch(grid(n), kBlock, 0, [&] { kd::compact_kernel(x.data(), who.data(), count.data(), n); });
    return count[0];
  }
};

template <class T>
void check_auction(std::int64_t n, bool ties, bool bad_row, int max_grid) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(n * 4 + ties * 2 + bad_row));
  std::vector<double> cd = emu::normal(std::size_t(n * n), g, 3.0);
  for (double& v : cd) v = ties ? std::round(std::abs(v)) : std::abs(v);
  if (bad_row) {  // row 1 can never bid a number; row 0 has one NaN column and a +inf one
    for (std::int64_t j = 0; j < n; ++j) cd[std::size_t(n + j)] = std::numeric_limits<double>::infinity();
    cd[0] = std::numeric_limits<double>::quiet_NaN();
    cd[std::size_t(n - 1)] = std::numeric_limits<double>::infinity();
  }
  const std::vector<T> c = emu::as<T>(cd);
  const Tensor tc = emu::host_tensor(emu::as<double>(c), Shape{n, n}, ctx);  // what the kernels see, widened
  AuctionState s = make_auction_state(n, ctx);
  EmuAuction e(n, max_grid);
  int rounds = 0;
  for (double eps : {2.0, 0.3, 0.01}) {
    CAPTURE(eps);
    auction_begin_phase(s, ctx);
    e.begin_phase();
    std::int64_t left = n, left_e = n;
    // A row of +inf never gets an object: the auction does not end, so a fixed number of rounds is compared.
    for (int r = 0; left > 0 && r < (bad_row ? 25 : 100000); ++r) {
      CAPTURE(r);
      left = auction_round(tc, eps, left, s, ctx);
      left_e = e.round(c, eps, left_e);
      ++rounds;
      REQUIRE(left_e == left);
      REQUIRE(e.prices == s.prices.to_vector<double>(ctx));  // bitwise: NaN never enters a price
      REQUIRE(e.x == s.col_of_row.to_vector<std::int32_t>(ctx));
      REQUIRE(e.y == s.row_of_col.to_vector<std::int32_t>(ctx));
      // The same set of bidders, in the order the device's atomics happened to give.
      std::vector<std::int32_t> who(e.who.begin(), e.who.begin() + left_e);
      std::sort(who.begin(), who.end());
      const std::vector<std::int32_t> hw = s.bidders.to_vector<std::int32_t>(ctx);
      REQUIRE(who == std::vector<std::int32_t>(hw.begin(), hw.begin() + left));
    }
    if (!bad_row) REQUIRE(left == 0);
  }
  MESSAGE("n = " << n << ": " << rounds << " rounds compared");
}

}  // namespace

TEST_CASE("transport pairwise-cost kernel (CUDA code emulated on the CPU) matches the CPU twin" *
          doctest::test_suite("cpu")) {
  const std::vector<std::array<std::int64_t, 3>> shapes = {
      {1, 1, 1}, {33, 70, 17}, {64, 32, 40}, {5, 100, 3}};
  for (const auto& [N, M, d] : shapes) {
    CAPTURE(N);
    CAPTURE(M);
    CAPTURE(d);
    check_pairwise<float>(N, M, d);
    check_pairwise<double>(N, M, d);
  }
}

TEST_CASE("Sinkhorn row and Gaussian kernel-sum kernels (CUDA code emulated on the CPU) match the CPU twin" *
          doctest::test_suite("cpu")) {
  // (N, M, d, grid): rows shorter than a warp and longer; one block for more rows than its 8 warps.
  const std::vector<std::array<std::int64_t, 4>> cases = {
      {3, 5, 2, 1}, {20, 77, 3, 1}, {9, 32, 1, 2}, {1, 200, 4, 1}};
  for (const auto& [N, M, d, grid] : cases) {
    CAPTURE(N);
    CAPTURE(M);
    CAPTURE(d);
    check_rows<float>(N, M, d, int(grid), false);
    check_rows<double>(N, M, d, int(grid), false);
  }
  check_rows<double>(6, 40, 2, 1, true);  // every g_j = -inf: +inf potentials, as on the CPU
  check_rows<float>(6, 40, 2, 1, true);
}

TEST_CASE("auction round kernels (CUDA code emulated on the CPU) equal the CPU twin bit for bit" *
          doctest::test_suite("cpu")) {
  for (std::int64_t n : {1, 2, 17, 40})
    for (bool ties : {false, true}) {
      CAPTURE(n);
      CAPTURE(ties);
      check_auction<double>(n, ties, false, n > 20 ? 2 : 1);
      check_auction<float>(n, ties, false, 1);
    }
  for (bool ties : {false, true}) {
    CAPTURE(ties);
    check_auction<double>(12, ties, true, 1);
    check_auction<float>(12, ties, true, 1);
  }
}
