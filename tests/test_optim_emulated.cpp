// The CUDA optimiser kernels (kernels/src/optim_kernels.cuh) run on the CPU under tests/emu/cuda_emulation.h,
// a thread per CUDA thread, against the CPU twin (kernels::adam_update with host scalars and with the
// device-side state, adam_prepare and ema_update on host tensors of the same dtype): several steps in a row,
// weight decay and clipping, a skipped step (non-finite loss), grids smaller than the parameters. The element
// math is shared, so the results must be equal.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/optim_kernels.cuh"

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/optim.h"

using namespace nsamp;
using namespace nsamp::kernels;
namespace kd = nsamp::kernels::detail;

namespace {

template <class T>
void check(std::int64_t n, int grid) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(static_cast<std::uint64_t>(n));
  const std::vector<T> p0 = emu::as<T>(emu::normal(std::size_t(n), g, 1.0));
  std::vector<T> ep = p0, em(std::size_t(n), T(0)), ev = em, sp = p0, sm = em, sv = em, ee = p0;
  Tensor p = emu::host_tensor(p0, Shape{n}, ctx), m = emu::host_tensor(em, Shape{n}, ctx), v = m.clone(ctx);
  Tensor ps = p.clone(ctx), ms = m.clone(ctx), vs = m.clone(ctx), ema = p.clone(ctx);
  std::vector<double> st(kAdamStateSize, 0.0);
  st[kAdamLr] = 3e-3;
  Tensor state = emu::host_tensor(st, Shape{kAdamStateSize}, ctx);
  AdamHyper h;
  h.weight_decay = 0.01;
  h.clip_norm = 2.0;
  for (int step = 1; step <= 4; ++step) {
    CAPTURE(step);
    const std::vector<T> grad = emu::as<T>(emu::normal(std::size_t(n), g, step == 2 ? 10.0 : 0.5));
    const Tensor tg = emu::host_tensor(grad, Shape{n}, ctx);

    // Host scalars.
    AdamStep s;
    s.lr = 1e-2;
    s.weight_decay = 0.05;
    s.step = step;
    s.grad_scale = 0.7;
    adam_update(p, tg, m, v, s, ctx);
    emu::launch(grid, kd::kThreads, 0, [&] {
      kd::adam_kernel<T>(ep.data(), grad.data(), em.data(), ev.data(), adam_coeffs<T>(s), n);
    });
    REQUIRE(ep == p.to_vector<T>(ctx));
    REQUIRE(em == m.to_vector<T>(ctx));
    REQUIRE(ev == v.to_vector<T>(ctx));

    // Device-side state: the squared norm in float64 (one tensor's sum), a NaN loss at step 3 skips.
    double sq = 0;
    for (T x : grad) sq += double(x) * double(x);
    const std::vector<double> sq64{sq};
    const double loss = step == 3 ? NAN : 1.5;
    const Tensor tsq = emu::host_tensor(sq64, Shape{1}, ctx);
    adam_prepare(nullptr, &tsq, nullptr, loss, h, state, ctx);
    emu::launch(1, 1, 0, [&] {
      kd::adam_prepare_kernel(nullptr, 0, sq64.data(), 1, nullptr, nullptr, loss, h, st.data());
    });
    REQUIRE(st == state.to_vector<double>(ctx));
    CHECK(st[kAdamApply] == (step == 3 ? 0.0 : 1.0));
    adam_update(ps, tg, ms, vs, state, ctx);
    emu::launch(grid, kd::kThreads, 0, [&] {
      kd::adam_state_kernel<T>(sp.data(), grad.data(), sm.data(), sv.data(), st.data(), n);
    });
    REQUIRE(sp == ps.to_vector<T>(ctx));
    REQUIRE(sm == ms.to_vector<T>(ctx));
    REQUIRE(sv == vs.to_vector<T>(ctx));

    ema_update(ema, p, 0.9, ctx);
    emu::launch(grid, kd::kThreads, 0,
                [&] { kd::ema_kernel<T>(ee.data(), ep.data(), T(0.9), T(1.0 - 0.9), n); });
    REQUIRE(ee == ema.to_vector<T>(ctx));
  }
  CHECK(st[kAdamSteps] == 3.0);
  CHECK(st[kAdamSkipped] == 1.0);
  CHECK(sp != p0);
}

}  // namespace

TEST_CASE("optimiser kernels (CUDA code emulated on the CPU) match the CPU twin" *
          doctest::test_suite("cpu")) {
  for (std::int64_t n : {1, 300, 1000}) {
    CAPTURE(n);
    check<float>(n, n > 500 ? 2 : 1);
    check<double>(n, 1);
  }
}
