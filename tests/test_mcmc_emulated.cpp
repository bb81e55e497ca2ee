// The CUDA MCMC kernels (kernels/src/mcmc_kernels.cuh) run on the CPU under tests/emu/cuda_emulation.h, a
// thread per CUDA thread, against the CPU twin (kernels::langevin_propose, mala_accept, metropolis_accept and
// tilt_energy on host tensors of the same dtype). Chains shorter than a warp, not a multiple of it and
// longer; grids smaller than the batch; with and without DiKL's Gaussian tilt; a fixed step and one read from
// memory; NaN energies and uniforms, which must reject. A MALA decision sums the row in another order on the
// device, so a chain whose log ratio lies within rounding of log u could differ: the inputs keep every
// chain's margin wide (checked), and the accepted rows must then be copied bit for bit.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/mcmc_kernels.cuh"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/mcmc.h"

using namespace nsamp;
using namespace nsamp::kernels;
namespace kd = nsamp::kernels::detail;

namespace {

template <class T>
double mcmc_tol() {
  return sizeof(T) == 8 ? 1e-13 : 1e-6;
}

// A quadratic energy E(x) = |x|^2 / 2 per row (grad E = x), so that MALA moves are realistic.
template <class T>
std::vector<T> half_sq(const std::vector<T>& x, std::int64_t B, std::int64_t d) {
  std::vector<T> e(static_cast<std::size_t>(B), T(0));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < d; ++j)
      e[std::size_t(b)] += x[std::size_t(b * d + j)] * x[std::size_t(b * d + j)] / 2;
  return e;
}

template <class T>
void check_mala(std::int64_t B, std::int64_t d, bool tilted, bool step_in_memory, int grid) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(B * 101 + d * 3 + tilted * 2 + step_in_memory));
  const std::size_t n = std::size_t(B * d);
  const std::vector<T> x = emu::as<T>(emu::normal(n, g, 1.0)), z = emu::as<T>(emu::normal(n, g, 1.0)),
                       xt = emu::as<T>(emu::normal(n, g, 1.0));
  std::vector<double> ad = emu::normal(std::size_t(B), g, 0.3), cd = emu::normal(std::size_t(B), g, 0.5);
  for (std::size_t b = 0; b < ad.size(); ++b) ad[b] = 0.8 + std::abs(ad[b]), cd[b] = 0.2 + std::abs(cd[b]);
  const std::vector<T> a = emu::as<T>(ad), c = emu::as<T>(cd);
  GaussianTilt tilt;
  if (tilted) {
    tilt.xt = emu::host_tensor(xt, Shape{B, d}, ctx);
    tilt.a = emu::host_tensor(a, Shape{B}, ctx);
    tilt.c = emu::host_tensor(c, Shape{B}, ctx);
    tilt.beta = 0.7;
  }
  const TiltView<T> view = tilt_view<T>(tilt);
  const double eta = (tilted ? 0.6 : 1.5) / std::cbrt(double(d));  // acceptance well inside (0, 1)
  const StepSize step = step_in_memory ? StepSize(&eta) : StepSize(eta);
  const std::vector<T> e = half_sq(x, B, d);

  // The proposal.
  const Tensor tx = emu::host_tensor(x, Shape{B, d}, ctx), tz = emu::host_tensor(z, Shape{B, d}, ctx);
  Tensor ty = Tensor::empty(Shape{B, d}, tx.dtype(), ctx);
  langevin_propose(tx, tx, tz, step, ty, ctx, tilt);
  std::vector<T> y(n, T(NAN));
  emu::launch(grid, kd::kThreads, 0, [&] {
    kd::propose_kernel<T>(x.data(), x.data(), z.data(), step, y.data(), view, std::int64_t(n), d);
  });
  emu::check_near(ty.to_doubles(ctx), emu::as<double>(y), mcmc_tol<T>(), "proposal");

  // U and grad U of the tilt at x (the op exists for tilted chains only).
  if (tilted) {
    Tensor eu = Tensor::empty(Shape{B}, tx.dtype(), ctx), gu = Tensor::empty(Shape{B, d}, tx.dtype(), ctx);
    const Tensor te = emu::host_tensor(e, Shape{B}, ctx);
    tilt_energy(tx, te, &tx, tilt, eu, &gu, ctx);
    std::vector<T> eu_e(std::size_t(B), T(NAN)), gu_e(n, T(NAN));
    emu::launch(grid, kd::kThreads, 0, [&] {
      kd::tilt_kernel<T>(x.data(), e.data(), x.data(), view, eu_e.data(), gu_e.data(), B, d);
    });
    emu::check_near(eu.to_doubles(ctx), emu::as<double>(eu_e), mcmc_tol<T>() * 10, "tilt U");
    emu::check_near(gu.to_doubles(ctx), emu::as<double>(gu_e), mcmc_tol<T>(), "tilt grad U");
    Tensor eu2 = Tensor::empty(Shape{B}, tx.dtype(), ctx);  // U alone
    tilt_energy(tx, te, nullptr, tilt, eu2, nullptr, ctx);
    std::vector<T> eu2_e(std::size_t(B), T(NAN));
    emu::launch(grid, kd::kThreads, 0,
                [&] { kd::tilt_kernel<T>(x.data(), e.data(), nullptr, view, eu2_e.data(), nullptr, B, d); });
    emu::check_near(eu2.to_doubles(ctx), emu::as<double>(eu2_e), mcmc_tol<T>() * 10, "tilt U alone");
  }

  // The decision, from the CPU twin's y (the same numbers as the kernel's up to rounding).
  const std::vector<T> yv = ty.to_vector<T>(ctx);
  std::vector<T> ey = half_sq(yv, B, d);
  std::uniform_real_distribution<double> u01(1e-12, 1.0);
  std::vector<T> log_u(static_cast<std::size_t>(B));
  for (T& v : log_u) v = T(std::log(u01(g)));
  if (B > 3) {
    ey[1] = T(NAN);                                          // a proposal whose energy failed: rejected
    log_u[2] = T(NAN);                                       // a NaN uniform: rejected
    log_u[3] = T(-std::numeric_limits<double>::infinity());  // accepts anything finite
  }
  // Keep every chain's margin |log u - log alpha| wide against the device's other summation order.
  {
    for (std::int64_t b = 0; b < B; ++b) {
      double fwd = 0, bwd = 0;
      for (std::int64_t j = 0; j < d; ++j) {
        const std::size_t k = std::size_t(b * d + j);
        const double f = double(yv[k]) - x[k] + eta * view.du(b, d, j, x[k], x[k]);
        const double r = double(x[k]) - yv[k] + eta * view.du(b, d, j, yv[k], yv[k]);
        fwd += f * f;
        bwd += r * r;
      }
      const double la =
          mala_log_ratio<double>(view.u(b, d, x.data() + b * d, e[std::size_t(b)]),
                                 view.u(b, d, yv.data() + b * d, ey[std::size_t(b)]), fwd, bwd, eta);
      if (std::isfinite(la) && std::isfinite(double(log_u[std::size_t(b)])) &&
          std::abs(la - log_u[std::size_t(b)]) < 1e-3)
        log_u[std::size_t(b)] = T(la - 0.01);
    }
  }
  const std::vector<T> acc0(std::size_t(B), T(2));
  Tensor cx = emu::host_tensor(x, Shape{B, d}, ctx), ce = emu::host_tensor(e, Shape{B}, ctx),
         cg = emu::host_tensor(x, Shape{B, d}, ctx), cacc = emu::host_tensor(acc0, Shape{B}, ctx);
  mala_accept(cx, ce, cg, ty, emu::host_tensor(ey, Shape{B}, ctx), ty, emu::host_tensor(log_u, Shape{B}, ctx),
              step, cacc, ctx, tilt);
  std::vector<T> ex = x, ee = e, eg = x, eacc = acc0;
  emu::launch(grid, kd::kThreads, 0, [&] {
    kd::accept_kernel<T>(ex.data(), ee.data(), eg.data(), yv.data(), ey.data(), yv.data(), log_u.data(), step,
                         eacc.data(), view, B, d);
  });
  const std::vector<T> want_acc = cacc.to_vector<T>(ctx);
  REQUIRE(eacc == want_acc);
  // Both outcomes among the chains with drawn uniforms (1, 2 and 3 are decided by their NaN or -inf), so
  // that a kernel which accepted or rejected too often would differ.
  std::int64_t taken = 0;
  for (std::size_t b = 0; b < want_acc.size(); ++b) taken += (b < 1 || b > 3) && want_acc[b] > T(2);
  MESSAGE("B = " << B << ", d = " << d << ": " << taken << " of " << B - 3 << " accepted");
  CHECK(taken > 0);
  CHECK(taken < B - 3);
  CHECK(ex == cx.to_vector<T>(ctx));
  CHECK(eg == cg.to_vector<T>(ctx));
  const std::vector<T> want_e = ce.to_vector<T>(ctx);
  REQUIRE(ee.size() == want_e.size());
  for (std::size_t b = 0; b < ee.size(); ++b)
    CHECK(((std::isnan(ee[b]) && std::isnan(want_e[b])) || ee[b] == want_e[b]));
}

template <class T>
void check_select(std::int64_t B, std::int64_t d, int grid) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(B * 7 + d));
  const std::size_t n = std::size_t(B * d);
  const std::vector<T> x = emu::as<T>(emu::normal(n, g, 1.0)), y = emu::as<T>(emu::normal(n, g, 1.0)),
                       gx = emu::as<T>(emu::normal(n, g, 1.0)), gy = emu::as<T>(emu::normal(n, g, 1.0)),
                       e = emu::as<T>(emu::normal(std::size_t(B), g, 1.0)),
                       ey = emu::as<T>(emu::normal(std::size_t(B), g, 1.0));
  std::vector<T> log_alpha = emu::as<T>(emu::normal(std::size_t(B), g, 1.0)),
                 log_u = emu::as<T>(emu::normal(std::size_t(B), g, 1.0));
  if (B > 2) {
    log_alpha[0] = T(NAN);
    log_alpha[1] = T(-std::numeric_limits<double>::infinity());
    log_u[2] = T(NAN);
  }
  const std::vector<T> acc0(std::size_t(B), T(0));
  Tensor cx = emu::host_tensor(x, Shape{B, d}, ctx), ce = emu::host_tensor(e, Shape{B}, ctx),
         cg = emu::host_tensor(gx, Shape{B, d}, ctx), cacc = emu::host_tensor(acc0, Shape{B}, ctx);
  metropolis_accept(cx, ce, cg, emu::host_tensor(y, Shape{B, d}, ctx), emu::host_tensor(ey, Shape{B}, ctx),
                    emu::host_tensor(gy, Shape{B, d}, ctx), emu::host_tensor(log_alpha, Shape{B}, ctx),
                    emu::host_tensor(log_u, Shape{B}, ctx), cacc, ctx);
  std::vector<T> ex = x, ee = e, eg = gx, eacc = acc0;
  emu::launch(grid, kd::kThreads, 0, [&] {
    kd::select_kernel<T>(ex.data(), ee.data(), eg.data(), y.data(), ey.data(), gy.data(), log_alpha.data(),
                         log_u.data(), eacc.data(), B, d);
  });
  CHECK(eacc == cacc.to_vector<T>(ctx));
  CHECK(ex == cx.to_vector<T>(ctx));
  CHECK(eg == cg.to_vector<T>(ctx));
  CHECK(ee == ce.to_vector<T>(ctx));
}

}  // namespace

TEST_CASE(
    "MALA proposal and accept kernels with and without the tilt (CUDA code emulated on the CPU) match the "
    "CPU twin" *
    doctest::test_suite("cpu")) {
  // (B, d, grid): chains shorter than a warp, not a multiple of it, longer; more warps than chains (as the
  // launcher's grids end), one block for more chains than its 8 warps (grid-stride).
  const std::vector<std::array<std::int64_t, 3>> cases = {{24, 3, 4}, {37, 40, 1}, {30, 70, 2}, {64, 1, 3}};
  for (const auto& [B, d, grid] : cases)
    for (bool tilted : {false, true})
      for (bool in_memory : {false, true}) {
        CAPTURE(B);
        CAPTURE(d);
        CAPTURE(tilted);
        CAPTURE(in_memory);
        check_mala<float>(B, d, tilted, in_memory, int(grid));
        check_mala<double>(B, d, tilted, in_memory, int(grid));
      }
}

TEST_CASE("Metropolis select kernel (CUDA code emulated on the CPU) matches the CPU twin" *
          doctest::test_suite("cpu")) {
  const std::vector<std::array<std::int64_t, 3>> cases = {{4, 3, 1}, {30, 33, 1}, {17, 100, 2}};
  for (const auto& [B, d, grid] : cases) {
    CAPTURE(B);
    CAPTURE(d);
    check_select<float>(B, d, int(grid));
    check_select<double>(B, d, int(grid));
  }
}
