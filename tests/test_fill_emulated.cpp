// The CUDA fill kernels (core/src/fill_kernels.cuh) run on the CPU under tests/emu/cuda_emulation.h, a thread
// per CUDA thread, against the CPU path (detail::fill_random_cpu on host tensors of the same dtype): uniform
// and normal draws, sizes that end part-way through a Philox counter, grids smaller than the counters, an
// offset given directly and one read from memory (a device counter). Element k must come from the same
// counter on both backends, so the draws are compared bit for bit.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../core/src/fill_kernels.cuh"

#include <doctest/doctest.h>

#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/fill.h"
#include "nsamp/core/tensor.h"

using namespace nsamp;

namespace {

template <class T>
void check(std::int64_t n, bool normal, bool offset_in_memory, int grid) {
  Context ctx(Device::cpu(), 1);
  const std::uint64_t seed = 1234, base = 99991, offset = 17;
  const double a = normal ? 0.5 : 3.0, b = normal ? -1.0 : 2.0;  // N(-1, 0.25) and U(2, 5)
  Tensor want = Tensor::empty(Shape{n}, sizeof(T) == 4 ? DType::F32 : DType::F64, ctx);
  nsamp::detail::fill_random_cpu(want,
                                 normal ? nsamp::detail::FillKind::Normal : nsamp::detail::FillKind::Uniform,
                                 seed, base + offset, a, b);
  const philox::Offset at = offset_in_memory ? philox::Offset(offset, &base) : philox::Offset(base + offset);
  std::vector<T> got(static_cast<std::size_t>(n), T(-7));
  emu::launch(grid, nsamp::detail::kFillThreads, 0,
              [&] { nsamp::detail::random_kernel<T>(got.data(), n, normal, seed, at, T(a), T(b)); });
  CHECK(got == want.to_vector<T>(ctx));
}

}  // namespace

TEST_CASE("fill kernels (CUDA code emulated on the CPU) draw the CPU path's numbers" *
          doctest::test_suite("cpu")) {
  for (std::int64_t n : {1, 3, 5, 1023, 4099})
    for (bool normal : {false, true})
      for (bool in_memory : {false, true}) {
        CAPTURE(n);
        CAPTURE(normal);
        CAPTURE(in_memory);
        check<float>(n, normal, in_memory, n > 2000 ? 2 : 1);
        check<double>(n, normal, in_memory, n > 2000 ? 3 : 1);
      }
  std::vector<double> c(37, -7.0);
  emu::launch(1, 32, 0, [&] { nsamp::detail::constant_kernel<double>(c.data(), 37, 2.5); });
  CHECK(c == std::vector<double>(37, 2.5));
  std::uint64_t counter = 5;
  emu::launch(1, 1, 0, [&] { nsamp::detail::counter_kernel(&counter, true, 7); });
  CHECK(counter == 12);
  emu::launch(1, 1, 0, [&] { nsamp::detail::counter_kernel(&counter, false, 3); });
  CHECK(counter == 3);
}
