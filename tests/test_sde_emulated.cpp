// The CUDA SDE kernels (kernels/src/sde_kernels.cuh) run on the CPU under tests/emu/cuda_emulation.h, a
// thread per CUDA thread, against the CPU twin (kernels::sde_step, truncated_normal_rows, log_variance_loss,
// kl_path_loss on host tensors of the same dtype, so that the Philox draws are the same numbers). Paths
// shorter than a warp, not a multiple of it and longer; grids smaller than the batch; the time network per
// row and shared; the lv cotangent on and off; loss inputs with non-finite and dropped paths and groups with
// fewer than two usable paths.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/sde_kernels.cuh"

#include <doctest/doctest.h>

#include <limits>
#include <random>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/sde.h"

using namespace nsamp;
using namespace nsamp::kernels;
namespace kd = nsamp::kernels::detail;

namespace {

template <class T>
double tol() {
  return sizeof(T) == 8 ? 1e-12 : 1e-5;
}

template <class T>
void check_step(std::int64_t B, std::int64_t d, bool nt_per_row, bool with_cot, int grid) {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 g(std::uint64_t(B * 1009 + d * 7 + nt_per_row * 2 + with_cot));
  const std::size_t n = std::size_t(B * d);
  const std::int64_t ntn = nt_per_row ? B : 1;
  // nn and the score argument exceed the clip now and then (clip 2).
  const std::vector<T> x = emu::as<T>(emu::normal(n, g, 1.5)), nn = emu::as<T>(emu::normal(n, g, 1.5)),
                       ge = emu::as<T>(emu::normal(n, g, 2.0)),
                       nt = emu::as<T>(emu::normal(std::size_t(ntn), g, 1.5)),
                       R0 = emu::as<T>(emu::normal(std::size_t(B), g, 1.0)),
                       cot = emu::as<T>(emu::normal(std::size_t(B), g, 1.0));
  SdeStepCoef k;
  k.h = 0.013;
  k.diffusion = 1.7;
  k.decay = 0.98;
  k.clip = 2;
  k.score_x = -0.4;
  k.score_g = -1;
  k.score_scale = 0.9;
  k.ref = 0.3;
  k.constant = 0.25;
  const std::uint64_t seed = 77, offset = 12345;

  auto host = [&](const std::vector<T>& v, Shape s) { return Tensor::from_vector(v, s, Device::cpu(), ctx); };
  const Tensor tx = host(x, Shape{B, d}), tnn = host(nn, Shape{B, d}), tge = host(ge, Shape{B, d}),
               tnt = host(nt, Shape{ntn}), tcot = host(cot, Shape{B});
  Tensor txn = Tensor::empty(Shape{B, d}, tx.dtype(), ctx), tR = host(R0, Shape{B}),
         tug = Tensor::empty(Shape{B, d}, tx.dtype(), ctx);
  sde_step(tx, tnn, tnt, tge, k, seed, philox::Offset(offset), txn, tR, with_cot ? &tcot : nullptr,
           with_cot ? &tug : nullptr, ctx);

  // The kernel: x_next written over x itself (allowed), the offset through a device-side base.
  std::vector<T> xe = x, R = R0, ug(n, T(NAN));
  const std::uint64_t base = offset - 45;
  emu::launch(grid, kd::kThreads, 0, [&] {
    kd::sde_step_kernel<T>(xe.data(), nn.data(), nt.data(), nt_per_row && B > 1, ge.data(), SdeCoef<T>(k),
                           T(k.constant), seed, philox::Offset(45, &base), xe.data(), R.data(),
                           with_cot ? cot.data() : nullptr, with_cot ? ug.data() : nullptr, B, d);
  });
  emu::check_near(txn.to_doubles(ctx), emu::as<double>(xe), tol<T>(), "x_next");
  emu::check_near(tR.to_doubles(ctx), emu::as<double>(R), tol<T>(), "R");
  if (with_cot) emu::check_near(tug.to_doubles(ctx), emu::as<double>(ug), tol<T>(), "u_grad");
}

template <class T>
void check_truncated(std::int64_t rows, std::int64_t d, std::int64_t repeats) {
  Context ctx(Device::cpu(), 1);
  const std::uint64_t seed = 5, offset = 1000, stride = 64;
  const int rounds = 3;
  const double a = 0.8, scale = 2.5;  // a small bound: every path through the rounds and the clamp is taken
  Tensor t = Tensor::empty(Shape{rows, d}, std::is_same<T, float>::value ? DType::F32 : DType::F64,
                           Device::cpu(), ctx);
  truncated_normal_rows(t, seed, philox::Offset(offset), stride, rounds, a, repeats, scale, ctx);
  std::vector<T> e(std::size_t(rows * d), T(NAN));
  emu::launch(2, 64, 0, [&] {
    kd::truncated_normal_kernel<T>(e.data(), rows * d, d, seed, philox::Offset(offset), stride, rounds, T(a),
                                   repeats, T(scale));
  });
  emu::check_near(t.to_doubles(ctx), emu::as<double>(e), 0.0, "truncated normal");
}

// R of B paths with some non-finite and some at or above `drop`.
template <class T>
std::vector<T> path_values(std::int64_t B, double drop, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<T> R = emu::as<T>(emu::normal(std::size_t(B), g, 3.0));
  for (std::int64_t i = 0; i < B; i += 7) R[std::size_t(i)] = T(drop + 1);
  for (std::int64_t i = 3; i < B; i += 11) R[std::size_t(i)] = std::numeric_limits<T>::quiet_NaN();
  for (std::int64_t i = 5; i < B; i += 13) R[std::size_t(i)] = std::numeric_limits<T>::infinity();
  return R;
}

template <class T>
void check_losses(std::int64_t B, std::int64_t group) {
  Context ctx(Device::cpu(), 1);
  const double drop = 4.0, dim = 3.0;
  std::vector<T> R = path_values<T>(B, drop, std::uint64_t(B * 3 + group));
  if (group >= 3)  // a group left with one usable path contributes nothing
    for (std::int64_t i = 0; i < group - 1; ++i) R[std::size_t(i)] = std::numeric_limits<T>::quiet_NaN();
  const Tensor tR = Tensor::from_vector(R, Shape{B}, Device::cpu(), ctx);
  Tensor cot = Tensor::empty(Shape{B}, tR.dtype(), ctx), stats = Tensor::empty(Shape{2}, DType::F64, ctx);
  log_variance_loss(tR, group, drop, dim, cot, stats, ctx);

  const std::int64_t groups = B / group;
  std::vector<double> gbuf(std::size_t(3 * groups + 1), NAN), es(2, NAN);
  std::vector<T> ecot(std::size_t(B), T(NAN));
  emu::launch(int(groups), kd::kLvThreads, 0,
              [&] { kd::lv_group_kernel<T>(R.data(), group, drop, gbuf.data()); });
  emu::launch(1, kd::kLvThreads, 0, [&] { kd::lv_total_kernel(gbuf.data(), groups, dim, es.data()); });
  emu::launch(2, 64, 0,
              [&] { kd::lv_cot_kernel<T>(R.data(), B, group, drop, gbuf.data(), groups, ecot.data()); });
  emu::check_near(stats.to_doubles(ctx), es, 1e-12, "lv stats");
  emu::check_near(cot.to_doubles(ctx), emu::as<double>(ecot), tol<T>(), "lv cotangent");

  Tensor kcot = Tensor::empty(Shape{B}, tR.dtype(), ctx), kstats = Tensor::empty(Shape{2}, DType::F64, ctx);
  kl_path_loss(tR, dim, kcot, kstats, ctx);
  std::vector<double> ks(2, NAN);
  std::vector<T> kc(std::size_t(B), T(NAN));
  emu::launch(1, kd::kLvThreads, 0, [&] { kd::kl_kernel<T>(R.data(), B, dim, kc.data(), ks.data()); });
  emu::check_near(kstats.to_doubles(ctx), ks, 1e-12, "kl stats");
  emu::check_near(kcot.to_doubles(ctx), emu::as<double>(kc), tol<T>(), "kl cotangent");
}

}  // namespace

TEST_CASE("sde kernels (CUDA code emulated on the CPU) match the CPU twin" * doctest::test_suite("cpu")) {
  struct StepCase {
    std::int64_t B, d;
    bool nt_per_row, cot;
    int grid;
  };
  // 8 warps per block: grids of 1 or 2 blocks stride over the paths.
  for (const StepCase c : {StepCase{1, 1, false, false, 1}, StepCase{19, 5, true, true, 1},
                           StepCase{37, 33, false, true, 2}, StepCase{9, 70, true, false, 1}}) {
    CAPTURE(c.B);
    CAPTURE(c.d);
    CAPTURE(c.nt_per_row);
    check_step<double>(c.B, c.d, c.nt_per_row, c.cot, c.grid);
    check_step<float>(c.B, c.d, c.nt_per_row, c.cot, c.grid);
  }
  check_truncated<double>(7, 5, 1);
  check_truncated<float>(6, 3, 2);
  // One group of the whole batch (lv), groups of 4 (lv_traj) and groups longer than a block's 256 threads.
  for (const auto& [B, group] : {std::pair<std::int64_t, std::int64_t>{50, 50}, {48, 4}, {600, 300}}) {
    CAPTURE(B);
    CAPTURE(group);
    check_losses<double>(B, group);
    check_losses<float>(B, group);
  }
}
