// The CUDA DiKL kernels (kernels/src/dikl_kernels.cuh) run on the CPU under tests/emu/cuda_emulation.h, a
// thread per CUDA thread, against the CPU twin (kernels::dikl_levels, dikl_proposals, tilt_coefficient,
// gumbel_max_rows, mala_adapt and record_scalar on host tensors of the same dtype). Grids smaller than the
// work; Gumbel groups of -inf and NaN log-weights and an offset read from memory; the acceptance block over
// more chains than its threads, with the adaptive step rising, falling and holding.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/dikl_kernels.cuh"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/dikl.h"

using namespace nsamp;
using namespace nsamp::kernels;
namespace kd = nsamp::kernels::detail;

namespace {

template <class T>
constexpr DType dtype_of() {
  return sizeof(T) == 4 ? DType::F32 : DType::F64;
}

template <class T>
void check_levels(std::int64_t B, int L, int grid) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(B * 3 + L));
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::vector<double> u(static_cast<std::size_t>(B)), tab = emu::normal(std::size_t(3 * L), g, 1.0);
  for (double& v : u) v = u01(g);
  if (B > 2) u[0] = 1e-300, u[1] = 1 - 0x1p-53, u[2] = 1.0 / double(L - 1);  // ends and a boundary
  constexpr DType dt = dtype_of<T>();
  Tensor tm = Tensor::empty(Shape{B, 1}, dt, ctx), al = tm.clone(ctx), sg = tm.clone(ctx), wt = tm.clone(ctx);
  dikl_levels(emu::host_tensor(u, Shape{B}, ctx), emu::host_tensor(tab, Shape{3, L}, ctx), tm, al, sg, wt,
              ctx);
  std::vector<T> etm(std::size_t(B), T(NAN)), eal = etm, esg = etm, ewt = etm;
  emu::launch(grid, kd::kThreads, 0, [&] {
    kd::levels_kernel<T>(u.data(), tab.data(), L, etm.data(), eal.data(), esg.data(), ewt.data(), B);
  });
  CHECK(etm == tm.to_vector<T>(ctx));  // table lookups: exact
  CHECK(eal == al.to_vector<T>(ctx));
  CHECK(esg == sg.to_vector<T>(ctx));
  CHECK(ewt == wt.to_vector<T>(ctx));
}

template <class T>
void check_proposals(std::int64_t B, std::int64_t d, std::int64_t n, int grid) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(B * 100 + d * 10 + n));
  const std::int64_t P = B * n;
  const std::vector<T> xt = emu::as<T>(emu::normal(std::size_t(B * d), g, 300.0)),
                       xi = emu::as<T>(emu::normal(std::size_t(P * d), g, 1.0));
  std::vector<T> a(static_cast<std::size_t>(B)), s(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) {
    a[std::size_t(b)] = T(0.05 + 0.9 * double(b) / double(B));  // small a: proposals past +-1000 get clipped
    s[std::size_t(b)] = T(0.1 + 2.0 * double(b % 5) / 5);
  }
  constexpr DType dt = dtype_of<T>();
  Tensor x0 = Tensor::empty(Shape{P, d}, dt, ctx), xr = x0.clone(ctx), ar = Tensor::empty(Shape{P}, dt, ctx),
         cr = ar.clone(ctx), c = Tensor::empty(Shape{B}, dt, ctx);
  dikl_proposals(emu::host_tensor(xt, Shape{B, d}, ctx), emu::host_tensor(a, Shape{B}, ctx),
                 emu::host_tensor(s, Shape{B}, ctx), emu::host_tensor(xi, Shape{P, d}, ctx), n, x0, xr, ar,
                 cr, ctx);
  tilt_coefficient(emu::host_tensor(s, Shape{B}, ctx), c, ctx);
  std::vector<T> ex0(std::size_t(P * d), T(NAN)), exr = ex0, ear(std::size_t(P), T(NAN)), ecr = ear,
                                                  ec(std::size_t(B), T(NAN));
  emu::launch(grid, kd::kThreads, 0, [&] {
    kd::proposals_kernel<T>(xt.data(), a.data(), s.data(), xi.data(), n, d, ex0.data(), exr.data(),
                            ear.data(), ecr.data(), P * d);
  });
  emu::launch(grid, kd::kThreads, 0, [&] { kd::tilt_coef_kernel<T>(s.data(), ec.data(), B); });
  // The same double formula rounded once (nvcc may fuse a multiply-add: the last bit).
  const double tol = sizeof(T) == 4 ? 1e-7 : 1e-15;
  emu::check_near(x0.to_doubles(ctx), emu::as<double>(ex0), tol, "x0");
  CHECK(exr == xr.to_vector<T>(ctx));
  CHECK(ear == ar.to_vector<T>(ctx));
  emu::check_near(cr.to_doubles(ctx), emu::as<double>(ecr), tol, "c_rep");
  emu::check_near(c.to_doubles(ctx), emu::as<double>(ec), tol, "tilt coefficient");
}

template <class T>
void check_gumbel(std::int64_t G, std::int64_t n, bool offset_in_memory, int grid) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(G * 10 + n + offset_in_memory));
  std::vector<T> lw = emu::as<T>(emu::normal(std::size_t(G * n), g, 3.0));
  if (G > 2) {
    for (std::int64_t i = 0; i < n; ++i) lw[std::size_t(i)] = -std::numeric_limits<T>::infinity();
    for (std::int64_t i = 0; i < n; ++i) lw[std::size_t(n + i)] = T(NAN);  // keeps its first particle
    lw[std::size_t(2 * n + n / 2)] = T(NAN);                               // one NaN among numbers
  }
  const std::uint64_t seed = 99, base = 1234567;
  const philox::Offset off = offset_in_memory ? philox::Offset(11, &base) : philox::Offset(11 + base);
  Tensor rows = Tensor::empty(Shape{G}, DType::I32, ctx);
  gumbel_max_rows(emu::host_tensor(lw, Shape{G * n}, ctx), n, seed, off, rows, ctx);
  std::vector<std::int32_t> er(std::size_t(G), -1);
  emu::launch(grid, kd::kThreads, 0, [&] { kd::gumbel_kernel<T>(lw.data(), n, seed, off, er.data(), G); });
  const std::vector<std::int32_t> want = rows.to_vector<std::int32_t>(ctx);
  CHECK(er == want);
  if (G > 2) {
    CHECK(want[0] == 0);
    CHECK(want[1] == n);
  }
}

template <class T>
void check_adapt(std::int64_t B, std::int64_t steps, double mean_rate, bool adaptive) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(B + steps));
  std::binomial_distribution<int> accepts(int(steps), mean_rate);
  std::vector<T> acc(static_cast<std::size_t>(B));
  for (T& v : acc) v = T(accepts(g));
  const std::vector<double> step0{0.02};
  Tensor step = emu::host_tensor(step0, Shape{1}, ctx), rate = Tensor::empty(Shape{1}, DType::F64, ctx);
  mala_adapt(emu::host_tensor(acc, Shape{B}, ctx), steps, adaptive, step, rate, ctx);
  std::vector<double> estep = step0, erate(1, NAN);
  emu::launch(1, kd::kAThreads, 0,
              [&] { kd::adapt_kernel<T>(acc.data(), B, steps, adaptive, estep.data(), erate.data()); });
  // Sums of integers: exact in either order.
  CHECK(erate == rate.to_vector<double>(ctx));
  CHECK(estep == step.to_vector<double>(ctx));
  MESSAGE("rate " << erate[0] << ", step 0.02 -> " << estep[0]);
}

}  // namespace

TEST_CASE("dikl level and stage-A proposal kernels (CUDA code emulated on the CPU) match the CPU twin" *
          doctest::test_suite("cpu")) {
  for (int L : {2, 30}) {
    CAPTURE(L);
    check_levels<float>(700, L, 1);
    check_levels<double>(700, L, 2);
    check_levels<double>(1, L, 1);
  }
  check_proposals<float>(37, 5, 7, 1);
  check_proposals<double>(37, 5, 7, 2);
  check_proposals<double>(3, 1, 1, 1);
}

TEST_CASE("dikl Gumbel-max kernel (CUDA code emulated on the CPU) matches the CPU twin" *
          doctest::test_suite("cpu")) {
  for (bool in_memory : {false, true}) {
    CAPTURE(in_memory);
    check_gumbel<float>(300, 5, in_memory, 1);
    check_gumbel<double>(40, 33, in_memory, 1);
    check_gumbel<double>(1, 1, in_memory, 1);
  }
}

TEST_CASE("dikl adaptive-step and record kernels (CUDA code emulated on the CPU) match the CPU twin" *
          doctest::test_suite("cpu")) {
  check_adapt<float>(1000, 20, 0.8, true);   // rises
  check_adapt<double>(300, 20, 0.3, true);   // falls
  check_adapt<double>(257, 40, 0.55, true);  // holds
  check_adapt<float>(5, 3, 0.9, false);
  Context ctx(Device::cpu(), 1);
  Tensor stats = Tensor::zeros(Shape{3}, DType::F64, ctx);
  std::vector<double> es(3, 0.0);
  for (bool accumulate : {false, true, true}) {
    const std::vector<float> v{1.25f + float(accumulate)};
    record_scalar(emu::host_tensor(v, Shape{1}, ctx), stats, 1, accumulate, ctx);
    emu::launch(1, 1, 0, [&] { kd::record_kernel<float>(v.data(), es.data() + 1, accumulate); });
  }
  CHECK(es == stats.to_vector<double>(ctx));
  CHECK(es[1] == 1.25 + 2 * 2.25);
}
