// The CUDA index kernels (kernels/src/index_kernels.cuh) run on the CPU under tests/emu/cuda_emulation.h, a
// thread per CUDA thread, against the CPU twin (kernels::gather_rows and index_add_rows on host tensors of
// the same dtype): repeated and empty index sets, rows narrower and wider than a block, grids smaller than
// the work; and the device's rule for an invalid index (the CPU path throws instead): a gathered row of NaN,
// a scatter-add entry dropped.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/index_kernels.cuh"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/index.h"

using namespace nsamp;
using namespace nsamp::kernels;
namespace kd = nsamp::kernels::detail;

namespace {

template <class T>
void check(std::int64_t N, std::int64_t M, std::int64_t C, int grid) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(static_cast<std::uint64_t>(N * 100 + M * 10 + C));
  std::uniform_int_distribution<std::int32_t> pick(0, std::int32_t(N - 1));
  std::vector<std::int32_t> idx(static_cast<std::size_t>(M));
  for (std::int32_t& i : idx) i = pick(g);
  if (M > 3) idx[1] = idx[2] = idx[3];  // repeated rows accumulate
  const std::vector<T> x = emu::as<T>(emu::normal(std::size_t(N * C), g, 1.0)),
                       src = emu::as<T>(emu::normal(std::size_t(M * C), g, 1.0)),
                       out0 = emu::as<T>(emu::normal(std::size_t(N * C), g, 1.0));
  const Tensor ti = emu::host_tensor(idx, Shape{M}, ctx);

  Tensor want = Tensor::empty(Shape{M, C}, emu::host_tensor(x, Shape{N, C}, ctx).dtype(), ctx);
  gather_rows(emu::host_tensor(x, Shape{N, C}, ctx), ti, want, ctx);
  std::vector<T> got(std::size_t(M * C), T(-7));
  emu::launch(grid, kd::kThreads, 0,
              [&] { kd::gather_rows_kernel<T>(x.data(), idx.data(), got.data(), M * C, C, N); });
  emu::check_near(want.to_doubles(ctx), emu::as<double>(got), 0.0, "gather");  // copies: exact

  Tensor acc = emu::host_tensor(out0, Shape{N, C}, ctx);
  index_add_rows(emu::host_tensor(src, Shape{M, C}, ctx), ti, acc, ctx);
  std::vector<T> eacc = out0;
  emu::launch(grid, kd::kThreads, 0,
              [&] { kd::index_add_rows_kernel<T>(src.data(), idx.data(), eacc.data(), M * C, C, N); });
  // Atomics add in thread order, the CPU in row order: rows hit more than once may differ in the last bit.
  emu::check_near(acc.to_doubles(ctx), emu::as<double>(eacc), sizeof(T) == 8 ? 1e-15 : 1e-6, "index_add");
}

}  // namespace

TEST_CASE("index kernels (CUDA code emulated on the CPU) match the CPU twin" * doctest::test_suite("cpu")) {
  // (N, M, C, grid): columns narrower than a warp and wider than a block, more and fewer rows than N.
  const std::vector<std::array<std::int64_t, 4>> cases = {
      {5, 12, 3, 1}, {40, 9, 300, 2}, {7, 0, 4, 1}, {1, 3, 1, 1}, {64, 200, 17, 3}};
  for (const auto& [N, M, C, grid] : cases) {
    CAPTURE(N);
    CAPTURE(M);
    CAPTURE(C);
    check<float>(N, M, C, int(grid));
    check<double>(N, M, C, int(grid));
  }
}

TEST_CASE("index kernels (CUDA code emulated on the CPU) never touch memory for an invalid index" *
          doctest::test_suite("cpu")) {
  const std::int64_t N = 4, M = 3, C = 5;
  const std::vector<double> x(std::size_t(N * C), 1.0), src(std::size_t(M * C), 2.0);
  const std::vector<std::int32_t> idx{2, -1, 4};  // one below, one past the end
  std::vector<double> got(std::size_t(M * C), -7.0), acc(std::size_t(N * C), 0.0);
  emu::launch(1, 32, 0,
              [&] { kd::gather_rows_kernel<double>(x.data(), idx.data(), got.data(), M * C, C, N); });
  emu::launch(1, 32, 0,
              [&] { kd::index_add_rows_kernel<double>(src.data(), idx.data(), acc.data(), M * C, C, N); });
  for (std::int64_t c = 0; c < C; ++c) {
    CHECK(got[std::size_t(c)] == 1.0);
    CHECK(std::isnan(got[std::size_t(C + c)]));
    CHECK(std::isnan(got[std::size_t(2 * C + c)]));
    for (std::int64_t r = 0; r < N; ++r) CHECK(acc[std::size_t(r * C + c)] == (r == 2 ? 2.0 : 0.0));
  }
}
