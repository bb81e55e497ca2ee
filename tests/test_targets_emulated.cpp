// The CUDA kernels of the built-in targets (targets/src/targets_kernels.cuh) and the Monte Carlo noisy score
// (kernels/include/nsamp/kernels/mc_score.h) run on the CPU under tests/emu/cuda_emulation.h, a thread per
// CUDA thread, against their CPU twins: the energy functors' eval per sample, mala_fused_row per chain and
// mc_score_host. The pair systems' warp kernels (DW-4, LJ-13, LJ-55 and a 40-particle system, so that lanes
// own a second particle), dense targets one thread per sample, MALA with and without DiKL's Gaussian tilt
// over several steps, and S_K with fewer samples than threads, more, clipped per particle and whole.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../targets/src/targets_kernels.cuh"
#include "nsamp/kernels/mc_score.h"

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <type_traits>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/targets/energies.h"

using namespace nsamp;
using namespace nsamp::targets;
namespace td = nsamp::targets::detail;

namespace {

template <class T>
double targets_tol() {
  return sizeof(T) == 8 ? 1e-11 : 2e-4;
}

// n particles in D dimensions near a cubic lattice of spacing 1.1 (LJ energies stay moderate), B samples.
std::vector<double> lattice(int n, int D, std::int64_t B, std::mt19937_64& g) {
  std::normal_distribution<double> jitter(0, 0.06);
  const int side = int(std::ceil(std::pow(double(n), 1.0 / D)));
  std::vector<double> x(std::size_t(B) * std::size_t(n * D));
  for (std::int64_t b = 0; b < B; ++b)
    for (int i = 0; i < n; ++i)
      for (int k = 0, rest = i; k < D; ++k, rest /= side)
        x[std::size_t(b * n * D + i * D + k)] = 1.1 * (rest % side) + jitter(g);
  return x;
}

template <class T, class F>
void check_pair_energy(const F& f, const std::vector<double>& xd, std::int64_t B, int grid) {
  const int d = f.n * f.D;
  const std::vector<T> x = emu::as<T>(xd);
  std::vector<T> he(static_cast<std::size_t>(B)), hg(x.size());
  for (std::int64_t b = 0; b < B; ++b) he[std::size_t(b)] = f.eval(x.data() + b * d, hg.data() + b * d);
  std::vector<T> e(std::size_t(B), T(NAN)), g(x.size(), T(NAN)), e2(std::size_t(B), T(NAN));
  emu::launch(grid, td::kThreads, 0, [&] { td::pair_warp_kernel<T>(f, x.data(), e.data(), g.data(), B); });
  emu::launch(grid, td::kThreads, 0, [&] { td::pair_warp_kernel<T>(f, x.data(), e2.data(), nullptr, B); });
  emu::check_near(emu::as<double>(he), emu::as<double>(e), targets_tol<T>(), "pair energy");
  emu::check_near(emu::as<double>(he), emu::as<double>(e2), targets_tol<T>(), "pair energy without gradient");
  emu::check_near(emu::as<double>(hg), emu::as<double>(g), targets_tol<T>(), "pair gradient");
}

template <class F>
struct IsPair : std::false_type {};
template <class T, class Pair>
struct IsPair<PairSystemEnergy<T, Pair>> : std::true_type {};

template <class T>
DoubleWellPair<T> dw_pair() {
  return {T(0.9), T(-4), T(0), T(4)};
}

template <class T>
void check_energies() {
  std::mt19937_64 g(11);
  // DW-4: 4 particles in 2-D, spread wide; 20 samples over 1 block of 8 warps (striding).
  check_pair_energy<T>(PairSystemEnergy<T, DoubleWellPair<T>>{dw_pair<T>(), 4, 2}, emu::normal(160, g, 2.0),
                       20, 1);
  check_pair_energy<T>(PairSystemEnergy<T, LennardJonesPair<T>>{{}, 13, 3}, lattice(13, 3, 11, g), 11, 2);
  check_pair_energy<T>(PairSystemEnergy<T, LennardJonesPair<T>>{{}, 40, 3}, lattice(40, 3, 3, g), 3, 1);
  check_pair_energy<T>(PairSystemEnergy<T, LennardJonesPair<T>>{{}, 55, 3}, lattice(55, 3, 2, g), 2, 1);

  // Dense: a 5-component mixture in 2-D and Many-Well in 6-D, one thread per sample.
  const std::vector<T> means = emu::as<T>(emu::normal(10, g, 3.0));
  const MixtureEnergy<T> mix{means.data(), 5, 2, T(1 / 0.8), T(-std::log(2 * M_PI * 0.8) - std::log(5.0))};
  const ManyWellEnergy<T> mw{6};
  auto dense = [&](const auto& f, int d, std::int64_t B) {
    const std::vector<T> x = emu::as<T>(emu::normal(std::size_t(B * d), g, 2.0));
    std::vector<T> he(static_cast<std::size_t>(B)), hg(x.size()), e(std::size_t(B), T(NAN)),
        gr(x.size(), T(NAN));
    for (std::int64_t b = 0; b < B; ++b) he[std::size_t(b)] = f.eval(x.data() + b * d, hg.data() + b * d);
    emu::launch(1, 64, 0, [&] { td::per_sample_kernel<T>(f, x.data(), e.data(), gr.data(), B, d); });
    emu::check_near(emu::as<double>(he), emu::as<double>(e), targets_tol<T>(), "dense energy");
    emu::check_near(emu::as<double>(hg), emu::as<double>(gr), targets_tol<T>(), "dense gradient");
  };
  dense(mix, 2, 150);
  dense(mw, 6, 70);
}

// `steps` fused MALA steps of B chains on both sides, from the same state; tilted when `tilt`.
template <class T, class F>
void check_mala(const F& f, const std::vector<double>& xd, std::int64_t B, bool tilt, double step) {
  const std::int64_t d = std::int64_t(xd.size()) / B;
  std::mt19937_64 g(std::uint64_t(B * 5 + d + tilt));
  const std::vector<T> xt = emu::as<T>(emu::normal(xd.size(), g, 1.0)),
                       a = emu::as<T>(emu::normal(std::size_t(B), g, 0.1)),
                       c = emu::as<T>(std::vector<double>(std::size_t(B), 0.3));
  std::vector<T> ta = a;
  for (T& v : ta) v += T(0.9);
  kernels::TiltView<T> view;
  if (tilt) view = {xt.data(), ta.data(), c.data(), T(0.7)};
  struct State {
    std::vector<T> x, g, e, y, gy, acc;
  };
  auto init = [&] {
    State s{emu::as<T>(xd),
            std::vector<T>(xd.size()),
            std::vector<T>(static_cast<std::size_t>(B)),
            std::vector<T>(xd.size(), T(NAN)),
            std::vector<T>(xd.size(), T(NAN)),
            std::vector<T>(std::size_t(B), T(0))};
    for (std::int64_t b = 0; b < B; ++b) s.e[std::size_t(b)] = f.eval(s.x.data() + b * d, s.g.data() + b * d);
    return s;
  };
  State h = init(), k = init();
  const std::uint64_t base = 1000;
  for (int t = 0; t < 3; ++t) {
    const kernels::MalaDraws draws{99, std::uint64_t(t) * 4096, std::uint64_t(t) * 4096 + 2048, nullptr};
    for (std::int64_t b = 0; b < B; ++b)
      kernels::mala_fused_row(f, view, draws, b, d, T(step), h.x.data() + b * d, h.g.data() + b * d,
                              h.e.data() + b, h.y.data() + b * d, h.gy.data() + b * d, h.acc.data() + b);
    // The kernel reads its counters through a device-side base, as a captured step does.
    const kernels::MalaDraws dev{99, draws.noise - base, draws.uniform - base, &base};
    if constexpr (IsPair<F>::value)
      emu::launch(1, td::kThreads, 0, [&] {
        td::pair_mala_warp_kernel<T>(f, view, dev, kernels::StepSize(step), k.x.data(), k.e.data(),
                                     k.g.data(), k.y.data(), k.gy.data(), k.acc.data(), B);
      });
    else
      emu::launch(1, 64, 0, [&] {
        td::mala_fused_kernel<T>(f, view, dev, kernels::StepSize(step), k.x.data(), k.e.data(), k.g.data(),
                                 k.y.data(), k.gy.data(), k.acc.data(), B, d);
      });
  }
  emu::check_near(emu::as<double>(h.acc), emu::as<double>(k.acc), 0.0, "accepted moves");
  emu::check_near(emu::as<double>(h.x), emu::as<double>(k.x), targets_tol<T>(), "chain state");
  emu::check_near(emu::as<double>(h.e), emu::as<double>(k.e), targets_tol<T>(), "chain energy");
  emu::check_near(emu::as<double>(h.g), emu::as<double>(k.g), targets_tol<T>(), "chain gradient");
}

template <class T>
void check_mala_all() {
  std::mt19937_64 g(3);
  const PairSystemEnergy<T, DoubleWellPair<T>> dw{dw_pair<T>(), 4, 2};
  const PairSystemEnergy<T, LennardJonesPair<T>> lj{{}, 13, 3};
  for (bool tilt : {false, true}) {
    CAPTURE(tilt);
    check_mala<T>(dw, emu::normal(8 * 19, g, 2.0), 19, tilt, 0.05);
    check_mala<T>(lj, lattice(13, 3, 9, g), 9, tilt, 1e-4);
    const ManyWellEnergy<T> mw{4};
    check_mala<T>(mw, emu::normal(4 * 70, g, 1.5), 70, tilt, 0.05);
  }
}

template <class T, class F>
void check_mc_score(const F& f, const std::vector<double>& xd, std::int64_t B, std::int64_t K, double clip,
                    int particle_dim, int grid) {
  const std::int64_t d = std::int64_t(xd.size()) / B;
  std::mt19937_64 g(std::uint64_t(K * 3 + d));
  const std::vector<T> x = emu::as<T>(xd);
  std::vector<T> sigma(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) sigma[std::size_t(b)] = T(0.05 + 0.3 * double(b) / double(B));
  const std::uint64_t base = 500;
  const kernels::McDraws host_draws{21, 7000, nullptr}, dev_draws{21, 7000 - base, &base};
  std::vector<T> hs(x.size()), hl(static_cast<std::size_t>(B)), ks(x.size(), T(NAN)),
      kl(std::size_t(B), T(NAN));
  kernels::mc_score_host(f, x.data(), sigma.data(), B, K, d, host_draws, T(clip), particle_dim, hs.data(),
                         hl.data());
  auto run = [&](auto max_d) {
    emu::launch(grid, kernels::kScoreThreads, 0, [&] {
      kernels::mc_score_kernel<T, decltype(max_d)::value>(f, x.data(), sigma.data(), B, K, d, dev_draws,
                                                          T(clip), particle_dim, ks.data(), kl.data());
    });
  };
  if (d <= 8)
    run(std::integral_constant<int, 8>{});
  else if (d <= 64)
    run(std::integral_constant<int, 64>{});
  else
    run(std::integral_constant<int, kernels::kMaxScoreDim>{});
  emu::check_near(emu::as<double>(hs), emu::as<double>(ks), targets_tol<T>(), "S_K");
  emu::check_near(emu::as<double>(hl), emu::as<double>(kl), targets_tol<T>(), "log p~");
}

template <class T>
void check_mc_score_all() {
  std::mt19937_64 g(8);
  const std::vector<T> means = emu::as<T>(emu::normal(10, g, 3.0));
  const MixtureEnergy<T> mix{means.data(), 5, 2, T(1 / 0.8), T(-std::log(2 * M_PI * 0.8) - std::log(5.0))};
  // More samples than the block's 128 threads, unclipped and clipped (whole vector); 5 points over 2 blocks.
  check_mc_score<T>(mix, emu::normal(10, g, 3.0), 5, 300, 0.0, 0, 2);
  check_mc_score<T>(mix, emu::normal(10, g, 3.0), 5, 300, 0.5, 0, 2);
  // Pair systems: fewer samples than threads (idle threads merge empty states), clipped per particle.
  check_mc_score<T>(PairSystemEnergy<T, DoubleWellPair<T>>{dw_pair<T>(), 4, 2}, emu::normal(24, g, 2.0), 3,
                    50, 2.0, 2, 1);
  check_mc_score<T>(PairSystemEnergy<T, LennardJonesPair<T>>{{}, 13, 3}, lattice(13, 3, 2, g), 2, 150, 5.0, 3,
                    1);
  check_mc_score<T>(PairSystemEnergy<T, LennardJonesPair<T>>{{}, 55, 3}, lattice(55, 3, 1, g), 1, 40, 5.0, 3,
                    1);
}

}  // namespace

TEST_CASE("target energy kernels (CUDA code emulated on the CPU) match the CPU twin" *
          doctest::test_suite("cpu")) {
  check_energies<double>();
  check_energies<float>();
}

TEST_CASE("fused MALA kernels (CUDA code emulated on the CPU) match mala_fused_row" *
          doctest::test_suite("cpu")) {
  check_mala_all<double>();
  check_mala_all<float>();
}

TEST_CASE("Monte Carlo score kernel (CUDA code emulated on the CPU) matches mc_score_host" *
          doctest::test_suite("cpu")) {
  check_mc_score_all<double>();
  check_mc_score_all<float>();
}
