// The CUDA iDEM / IW-SM kernels (kernels/src/idem_kernels.cuh) run on the CPU under
// tests/emu/cuda_emulation.h, a thread per CUDA thread, against the CPU twin (kernels::idem_noise_levels,
// idem_loss_weights, buffer_indices and idem_accumulate on host tensors of the same dtype). The weights'
// block loops over more rows than its 512 threads, with non-finite log-weights and with none finite; grids
// smaller than the batch for the elementwise kernels.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/idem_kernels.cuh"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/idem.h"

using namespace nsamp;
using namespace nsamp::kernels;
namespace kd = nsamp::kernels::detail;

namespace {

template <class T>
void check_levels(std::int64_t B, int grid, std::int64_t groups = 0) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(static_cast<std::uint64_t>(B));
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::vector<double> t(static_cast<std::size_t>(B));
  for (double& v : t) v = u01(g);
  VeLevels v;
  v.sigma_min = 1e-3;
  v.sigma_max = 3.0;
  v.coord_scale = 2.5;
  v.d_eff = 6;
  v.buffer_rows = 777;
  v.lambda_eps = 0.1;
  v.time_groups = groups;
  const DType dt = sizeof(T) == 4 ? DType::F32 : DType::F64;
  Tensor tc = Tensor::empty(Shape{B, 1}, dt, ctx), sg = Tensor::empty(Shape{B, 1}, dt, ctx),
         sx = Tensor::empty(Shape{B}, dt, ctx), sc = Tensor::empty(Shape{B}, dt, ctx),
         sh = Tensor::empty(Shape{B}, DType::F64, ctx), la = Tensor::empty(Shape{B}, DType::F64, ctx);
  idem_noise_levels(emu::host_tensor(t, Shape{B}, ctx), v, tc, sg, sx, sc, sh, la, ctx);
  std::vector<T> etc(std::size_t(B), T(NAN)), esg = etc, esx = etc, esc = etc;
  std::vector<double> esh(std::size_t(B), NAN), ela = esh;
  emu::launch(grid, kd::kThreads, 0, [&] {
    kd::noise_levels_kernel<T>(t.data(), v, etc.data(), esg.data(), esx.data(), esc.data(), esh.data(),
                               ela.data(), B);
  });
  // The same double formulas rounded once: equal, up to the libm's last bit on the device.
  const double tol = 1e-15;
  emu::check_near(tc.to_doubles(ctx), emu::as<double>(etc), tol, "t");
  emu::check_rel(sg.to_doubles(ctx), emu::as<double>(esg), sizeof(T) == 4 ? 1e-7 : tol, emu::tiny<double>(),
                 "sigma");
  emu::check_rel(sx.to_doubles(ctx), emu::as<double>(esx), sizeof(T) == 4 ? 1e-7 : tol, emu::tiny<double>(),
                 "sigma_x");
  emu::check_rel(sc.to_doubles(ctx), emu::as<double>(esc), sizeof(T) == 4 ? 1e-7 : tol, emu::tiny<double>(),
                 "scale");
  emu::check_rel(sh.to_doubles(ctx), esh, tol, emu::tiny<double>(), "shift");
  emu::check_rel(la.to_doubles(ctx), ela, tol, emu::tiny<double>(), "lambda");
}

template <class T>
void check_weights(std::int64_t B, bool iw, bool none_finite, std::int64_t groups = 0, double mix = 0) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(B * 4 + iw * 2 + none_finite));
  std::vector<T> lp = emu::as<T>(emu::normal(std::size_t(B), g, 2.0)),
                 ks = emu::as<T>(emu::normal(std::size_t(B), g, 2.0));
  const std::vector<double> sh = emu::normal(std::size_t(B), g, 1.0);
  std::vector<double> lam(static_cast<std::size_t>(B));
  for (std::size_t i = 0; i < lam.size(); ++i) lam[i] = 0.1 + 0.01 * double(i % 17);
  if (B > 10) {
    lp[3] = T(NAN);
    lp[10] = -std::numeric_limits<T>::infinity();
    ks[7] = -std::numeric_limits<T>::infinity();  // l = +inf: not finite, weighs 0
  }
  if (none_finite)
    for (T& v : lp) v = T(NAN);
  const double dim = 5;
  const DType dt = sizeof(T) == 4 ? DType::F32 : DType::F64;
  const Tensor LP = emu::host_tensor(lp, Shape{B}, ctx), KS = emu::host_tensor(ks, Shape{B}, ctx);
  Tensor coef = Tensor::empty(Shape{B}, dt, ctx), ess = Tensor::empty(Shape{1}, DType::F64, ctx);
  idem_loss_weights(iw ? &LP : nullptr, iw ? &KS : nullptr, emu::host_tensor(sh, Shape{B}, ctx),
                    emu::host_tensor(lam, Shape{B}, ctx), dim, coef, ess, ctx, groups, mix);
  std::vector<T> ecoef(std::size_t(B), T(-7));
  std::vector<double> eess(1, -7);
  emu::launch(1, kd::kWThreads, 0, [&] {
    kd::loss_weights_kernel<T>(iw ? lp.data() : nullptr, iw ? ks.data() : nullptr, sh.data(), lam.data(), dim,
                               B, groups, mix, ecoef.data(), eess.data());
  });
  // The block sums in another order than the CPU loop: float64 rounding, then the dtype's.
  const double tol = sizeof(T) == 4 ? 1e-6 : 1e-12;
  emu::check_rel(coef.to_doubles(ctx), emu::as<double>(ecoef), tol, emu::tiny<double>(), "coef");
  emu::check_near(ess.to_doubles(ctx), eess, 1e-12, "ess");
  if (none_finite && iw)
    for (T c : ecoef) CHECK(std::isnan(c));
}

}  // namespace

TEST_CASE("idem noise-level and buffer-index kernels (CUDA code emulated on the CPU) match the CPU twin" *
          doctest::test_suite("cpu")) {
  const std::vector<std::pair<std::int64_t, int>> cases = {{1, 1}, {300, 1}, {1000, 2}};
  for (const auto& [B, grid] : cases) {
    CAPTURE(B);
    check_levels<float>(B, grid);
    check_levels<double>(B, grid);
  }
  check_levels<float>(1000, 2, 8);  // stratified times shared by groups
  check_levels<double>(300, 1, 300);
  Context ctx(Device::cpu(), 1);
  const std::vector<double> u{0.0, 1e-9, 0.4999, 0.5, 0.99999999, 1.0 - 1e-17, 0.731, 1.0};
  const std::int64_t n = std::int64_t(u.size());
  for (std::int64_t size : {1, 10, 1000003}) {
    CAPTURE(size);
    Tensor idx = Tensor::empty(Shape{n}, DType::I32, ctx);
    buffer_indices(emu::host_tensor(u, Shape{n}, ctx), size, idx, ctx);
    std::vector<std::int32_t> got(u.size(), -1);
    emu::launch(1, 32, 0, [&] { kd::buffer_indices_kernel(u.data(), size, got.data(), n); });
    CHECK(got == idx.to_vector<std::int32_t>(ctx));
  }
}

TEST_CASE("IW-SM loss-weight kernel (CUDA code emulated on the CPU) matches the CPU twin" *
          doctest::test_suite("cpu")) {
  for (std::int64_t B : {1, 37, 700, 1500})
    for (bool iw : {true, false}) {
      CAPTURE(B);
      CAPTURE(iw);
      check_weights<float>(B, iw, false);
      check_weights<double>(B, iw, false);
    }
  check_weights<float>(40, true, true);  // no finite log-weight: NaN weights, as on the CPU
  check_weights<double>(40, true, true);
  // Time groups: a warp per group, fewer groups than warps, more (warps taking several), groups larger than
  // a warp (lanes taking several members), and one group per point.
  for (const auto& [B, groups] : std::vector<std::pair<std::int64_t, std::int64_t>>{
           {37, 2}, {700, 8}, {700, 40}, {1500, 3}, {64, 64}}) {
    CAPTURE(B);
    CAPTURE(groups);
    check_weights<float>(B, true, false, groups);
    check_weights<double>(B, true, false, groups);
  }
  check_weights<double>(40, true, true, 4);
  // The uniform mixture, over the whole batch and in groups; no finite log-weight stays NaN.
  for (const auto& [B, groups] : std::vector<std::pair<std::int64_t, std::int64_t>>{{700, 0}, {700, 8}}) {
    CAPTURE(B);
    CAPTURE(groups);
    check_weights<float>(B, true, false, groups, 0.5);
    check_weights<double>(B, true, false, groups, 0.25);
  }
  check_weights<double>(40, true, true, 4, 0.5);
}

TEST_CASE("idem running-sums kernel (CUDA code emulated on the CPU) matches the CPU twin" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 1);
  Tensor acc = Tensor::zeros(Shape{4}, DType::F64, ctx);
  std::vector<double> eacc(4, 0.0);
  for (double l : {1.5, 2.25, double(NAN), 0.125, double(INFINITY)}) {
    const std::vector<float> loss{float(l)};
    const std::vector<double> ess{0.5 + l / 8};
    idem_accumulate(emu::host_tensor(loss, Shape{1}, ctx), emu::host_tensor(ess, Shape{1}, ctx), acc, ctx);
    emu::launch(1, 1, 0, [&] { kd::accumulate_kernel<float>(loss.data(), ess.data(), eacc.data()); });
  }
  CHECK(std::isnan(eacc[0]));  // the log's mean shows a non-finite step
  CHECK(eacc[3] == 3.0);
  emu::check_near(acc.to_vector<double>(ctx), eacc, 0.0, "running sums");  // NaN where the CPU has NaN
}
