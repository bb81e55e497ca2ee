// The CUDA reduction kernels (kernels/src/reduce_kernels.cuh) run on the CPU under
// tests/emu/cuda_emulation.h, a thread per CUDA thread, against the CPU twin (kernels::reduce_rows /
// reduce_cols / row_softmax on host tensors). Rows shorter than a warp, not a multiple of it, and long enough
// for the block kernels; grids smaller than the work (grid-stride loops); column tiles ending part-way and
// several row chunks; rows of -inf, +inf and NaN, whose conventions (reduce.h) the kernels must keep.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/reduce_kernels.cuh"

#include <doctest/doctest.h>

#include <limits>
#include <random>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/reduce.h"

using namespace nsamp;
using namespace nsamp::kernels;

namespace {

// R x C values, with row 1 all -inf, row 2 holding +inf and row 3 a NaN where the shape has them.
std::vector<double> inputs(std::int64_t R, std::int64_t C, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<double> v = emu::normal(std::size_t(R * C), g, 2.0);
  const double inf = std::numeric_limits<double>::infinity();
  if (R > 3 && C > 1) {
    for (std::int64_t c = 0; c < C; ++c) v[std::size_t(C + c)] = -inf;
    v[std::size_t(2 * C + C / 2)] = inf;
    v[std::size_t(3 * C + C - 1)] = std::numeric_limits<double>::quiet_NaN();
  }
  return v;
}

template <class T>
double tol() {
  return sizeof(T) == 8 ? 1e-12 : 1e-4;
}

template <class Acc, class T>
std::vector<double> rows_emulated(const std::vector<T>& x, std::int64_t R, std::int64_t C, bool mean,
                                  int grid) {
  using namespace nsamp::kernels::detail;
  std::vector<T> out(std::size_t(R), T(NAN));
  if (C <= kWarpRowMaxCols)
    emu::launch(grid, kThreads, 0, [&] { rows_warp_kernel<Acc, T>(x.data(), out.data(), R, C, mean); });
  else
    emu::launch(grid, kRowBlock, 0, [&] { rows_block_kernel<Acc, T>(x.data(), out.data(), R, C, mean); });
  return emu::as<double>(out);
}

template <class Acc, class T>
std::vector<double> cols_emulated(const std::vector<T>& x, std::int64_t R, std::int64_t C, bool mean) {
  using namespace nsamp::kernels::detail;
  const ColsGeometry geo = cols_geometry(R, C);
  std::vector<Acc> part(std::size_t(geo.chunks * C));
  std::vector<T> out(std::size_t(C), T(NAN));
  emu::launch(emu::Dim3{unsigned(geo.col_tiles), unsigned(geo.chunks), 1}, emu::Dim3{kTileCols, kTileRows, 1},
              0, [&] { cols_partial_kernel<Acc, T>(x.data(), part.data(), R, C, geo.rows_per_chunk); });
  emu::launch(1, 64, 0, [&] { cols_finish_kernel<Acc, T>(part.data(), out.data(), geo.chunks, R, C, mean); });
  return emu::as<double>(out);
}

template <class T>
void check_rows(std::int64_t R, std::int64_t C, int grid) {
  Context ctx(Device::cpu(), 1);
  const std::vector<double> xd = inputs(R, C, std::uint64_t(R * 131 + C));
  const std::vector<T> x = emu::as<T>(xd);
  const Tensor tx = Tensor::from_vector(emu::as<double>(x), Shape{R, C}, Device::cpu(), ctx);
  auto want = [&](Reduce r) {
    Tensor out = Tensor::empty(Shape{R}, DType::F64, ctx);
    reduce_rows(r, tx, out, ctx);
    return out.to_doubles(ctx);
  };
  emu::check_near(want(Reduce::Sum), rows_emulated<SumAcc<T>, T>(x, R, C, false, grid), tol<T>(), "sum");
  emu::check_near(want(Reduce::Mean), rows_emulated<SumAcc<T>, T>(x, R, C, true, grid), tol<T>(), "mean");
  emu::check_near(want(Reduce::Max), rows_emulated<MaxAcc<T>, T>(x, R, C, false, grid), tol<T>(), "max");
  emu::check_near(want(Reduce::SqNorm), rows_emulated<SqSumAcc<T>, T>(x, R, C, false, grid), tol<T>(),
                  "sqnorm");
  emu::check_near(want(Reduce::LogSumExp), rows_emulated<LseAcc<T>, T>(x, R, C, false, grid), tol<T>(),
                  "logsumexp");

  Tensor y = Tensor::empty(Shape{R, C}, DType::F64, ctx);
  row_softmax(tx, y, ctx);
  using namespace nsamp::kernels::detail;
  std::vector<T> ey(std::size_t(R * C), T(-1));
  if (C <= kWarpRowMaxCols)
    emu::launch(grid, kThreads, 0, [&] { softmax_warp_kernel<T>(x.data(), ey.data(), R, C); });
  else
    emu::launch(grid, kRowBlock, 0, [&] { softmax_block_kernel<T>(x.data(), ey.data(), R, C); });
  emu::check_near(y.to_doubles(ctx), emu::as<double>(ey), tol<T>(), "softmax");
}

template <class T>
void check_cols(std::int64_t R, std::int64_t C) {
  Context ctx(Device::cpu(), 1);
  const std::vector<double> xd = inputs(R, C, std::uint64_t(R * 17 + C));
  const std::vector<T> x = emu::as<T>(xd);
  const Tensor tx = Tensor::from_vector(emu::as<double>(x), Shape{R, C}, Device::cpu(), ctx);
  auto want = [&](Reduce r) {
    Tensor out = Tensor::empty(Shape{C}, DType::F64, ctx);
    reduce_cols(r, tx, out, ctx);
    return out.to_doubles(ctx);
  };
  emu::check_near(want(Reduce::Sum), cols_emulated<SumAcc<T>, T>(x, R, C, false), tol<T>(), "col sum");
  emu::check_near(want(Reduce::Mean), cols_emulated<SumAcc<T>, T>(x, R, C, true), tol<T>(), "col mean");
  emu::check_near(want(Reduce::Max), cols_emulated<MaxAcc<T>, T>(x, R, C, false), tol<T>(), "col max");
  emu::check_near(want(Reduce::SqNorm), cols_emulated<SqSumAcc<T>, T>(x, R, C, false), tol<T>(),
                  "col sqnorm");
}

}  // namespace

TEST_CASE("reduction kernels (CUDA code emulated on the CPU) match the CPU twin" *
          doctest::test_suite("cpu")) {
  struct RowCase {
    std::int64_t R, C;
    int grid;
  };
  // Warp kernel: 8 rows per block, so grid 1 or 2 strides over the rows. Block kernel: C > 1024.
  for (const RowCase c : {RowCase{5, 1, 1}, RowCase{37, 31, 2}, RowCase{20, 33, 1}, RowCase{9, 100, 2},
                          RowCase{6, 1500, 2}, RowCase{1, 1025, 1}}) {
    CAPTURE(c.R);
    CAPTURE(c.C);
    check_rows<double>(c.R, c.C, c.grid);
    check_rows<float>(c.R, c.C, c.grid);
  }
  struct ColCase {
    std::int64_t R, C;
  };
  // Tiles of 32 columns ending part-way; 70 and 300 rows give several chunks of rows.
  for (const ColCase c : {ColCase{1, 1}, ColCase{70, 33}, ColCase{300, 5}, ColCase{130, 64}}) {
    CAPTURE(c.R);
    CAPTURE(c.C);
    check_cols<double>(c.R, c.C);
    check_cols<float>(c.R, c.C);
  }
}
