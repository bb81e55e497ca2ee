// The CUDA optimiser kernels (kernels/src/optim_kernels.cuh) run on the CPU under tests/emu/cuda_emulation.h,
// a thread per CUDA thread, against the CPU twin (kernels::adam_update with host scalars and with the
// device-side state, adam_prepare and ema_update on host tensors of the same dtype): several steps in a row,
// weight decay and clipping, skipped steps (non-finite loss in each of its three forms), grids smaller than
// the parameters. The element math is shared, so the results must be equal.
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
  for (int step = 1; step <= 6; ++step) {
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

    // Device-side state: the squared norm as float32 and float64 partial sums, the loss as a value, a float32
    // tensor or a float64 one (the kernel's pointer choices); a NaN loss skips steps 3, 4 and 5, one of each
    // form (the kernel gets a finite decoy value where the loss comes from a tensor).
    double sq = 0;
    for (T x : grad) sq += double(x) * double(x);
    const std::vector<float> sq32{float(sq / 4)};
    const std::vector<double> sq64{sq - double(sq32[0])};
    const bool skip = step >= 3 && step <= 5;
    const double loss = skip ? NAN : 1.5;
    const std::vector<float> loss32{float(loss)};
    const std::vector<double> loss64{loss};
    const Tensor tsq32 = emu::host_tensor(sq32, Shape{1}, ctx), tsq64 = emu::host_tensor(sq64, Shape{1}, ctx),
                 tl32 = emu::host_tensor(loss32, Shape{1}, ctx),
                 tl64 = emu::host_tensor(loss64, Shape{1}, ctx);
    const int form = step % 3;  // 1: value, 2: float32 tensor, 0: float64 tensor
    adam_prepare(&tsq32, &tsq64, form == 1 ? nullptr : form == 2 ? &tl32 : &tl64, loss, h, state, ctx);
    emu::launch(1, 1, 0, [&] {
      kd::adam_prepare_kernel(sq32.data(), 1, sq64.data(), 1, form == 2 ? loss32.data() : nullptr,
                              form == 0 ? loss64.data() : nullptr, form == 1 ? loss : -1.0, h, st.data());
    });
    REQUIRE(st == state.to_vector<double>(ctx));
    CHECK(st[kAdamApply] == (skip ? 0.0 : 1.0));
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
  CHECK(st[kAdamSkipped] == 3.0);
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
