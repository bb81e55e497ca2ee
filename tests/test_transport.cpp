// Transport family: pairwise costs, Sinkhorn potential updates and plan sums against float64 loops; auction
// rounds reach epsilon-complementary slackness and match the CPU twin exactly.
#include <algorithm>
#include <cmath>

#include "nsamp/kernels/transport.h"
#include "test_util.h"

using namespace nsamp;
namespace k = nsamp::kernels;

namespace {

std::vector<double> ref_pairwise(const std::vector<double>& x, const std::vector<double>& y, std::int64_t N,
                                 std::int64_t M, std::int64_t d, bool sq) {
  std::vector<double> out(std::size_t(N * M));
  for (std::int64_t i = 0; i < N; ++i)
    for (std::int64_t j = 0; j < M; ++j) {
      double s = 0;
      for (std::int64_t q = 0; q < d; ++q) s += (x[i * d + q] - y[j * d + q]) * (x[i * d + q] - y[j * d + q]);
      out[std::size_t(i * M + j)] = sq ? s : std::sqrt(s);
    }
  return out;
}

}  // namespace

NSAMP_DEVICE_TEST("transport: pairwise costs match float64 loops") {
  Context ctx(dev);
  // Sizes straddle the 32-wide tiles and the 16-deep k chunks; d = 0 gives zero costs.
  for (auto [N, M, d] :
       {std::array<std::int64_t, 3>{1, 1, 1}, {33, 65, 17}, {70, 31, 2}, {5, 7, 0}, {64, 64, 50}})
    for (DType dt : {DType::F32, DType::F64})
      for (k::PairCost pc : {k::PairCost::SqEuclidean, k::PairCost::Euclidean}) {
        CAPTURE(N);
        CAPTURE(M);
        CAPTURE(d);
        const Tensor x =
            test::randn(Shape{N, d}, dt, dev, ctx, 1 + N, 2.0, 100.0);  // offset: no cancellation
        const Tensor y = test::randn(Shape{M, d}, dt, dev, ctx, 2 + M, 2.0, 100.0);
        Tensor out = Tensor::empty(Shape{N, M}, dt, dev, ctx);
        k::pairwise_cost(x, y, pc, out, ctx);
        const double tol = dt == DType::F32 ? 1e-5 : 1e-13;
        test::check_close(test::to_doubles(out, ctx),
                          ref_pairwise(test::to_doubles(x, ctx), test::to_doubles(y, ctx), N, M, d,
                                       pc == k::PairCost::SqEuclidean),
                          tol, 0, k::pair_cost_name(pc));
      }
  Tensor x = test::randn(Shape{4, 3}, DType::F64, dev, ctx, 1),
         y = test::randn(Shape{5, 2}, DType::F64, dev, ctx, 2);
  Tensor out = Tensor::empty(Shape{4, 5}, DType::F64, dev, ctx);
  CHECK_THROWS_WITH_AS(k::pairwise_cost(x, y, k::PairCost::SqEuclidean, out, ctx),
                       doctest::Contains((x.desc() + " and " + y.desc()).c_str()), Error);
}

NSAMP_DEVICE_TEST("transport: Sinkhorn potential and plan sums match float64 loops") {
  Context ctx(dev);
  for (auto [N, M] : {std::array<std::int64_t, 2>{1, 1}, {37, 70}, {200, 33}})
    for (DType dt : {DType::F32, DType::F64})
      for (double eps : {1.0, 1e-2}) {
        CAPTURE(N);
        CAPTURE(M);
        CAPTURE(eps);
        const Tensor c = test::randn(Shape{N, M}, dt, dev, ctx, 7 + N, 1.0, 3.0);
        const Tensor g = test::randn(Shape{M}, dt, dev, ctx, 8 + M, 0.5);
        const std::vector<double> hc = test::to_doubles(c, ctx), hg = test::to_doubles(g, ctx);
        const double log_a = -std::log(double(N));
        const std::size_t nn = static_cast<std::size_t>(N);
        std::vector<double> ref(nn), ref_mass(nn), ref_cost(nn);
        for (std::int64_t i = 0; i < N; ++i) {
          double m = -INFINITY;
          for (std::int64_t j = 0; j < M; ++j) m = std::max(m, (hg[j] - hc[i * M + j]) / eps);
          double s = 0;
          for (std::int64_t j = 0; j < M; ++j) s += std::exp((hg[j] - hc[i * M + j]) / eps - m);
          ref[i] = eps * (log_a - (m + std::log(s)));
        }
        // The plan is checked at the updated potential (rows then sum to 1/N), slightly perturbed.
        std::vector<double> hf(ref);
        for (std::size_t i = 0; i < nn; ++i) hf[i] += 0.1 * eps * std::sin(double(i));
        const Tensor f = test::from_doubles(hf, Shape{N}, dt, dev, ctx);
        hf = test::to_doubles(f, ctx);
        for (std::int64_t i = 0; i < N; ++i) {
          double pm = 0, pc = 0;
          for (std::int64_t j = 0; j < M; ++j) {
            const double p = std::exp((hf[i] + hg[j] - hc[i * M + j]) / eps);
            pm += p;
            pc += p * hc[i * M + j];
          }
          ref_mass[i] = pm;
          ref_cost[i] = pc;
        }
        Tensor out = Tensor::empty(Shape{N}, dt, dev, ctx);
        k::sinkhorn_potential(c, g, log_a, eps, out, ctx);
        // float32: the exponent (g - c) / eps carries |.| / eps * 6e-8 of rounding, scaled back by eps.
        const bool f32 = dt == DType::F32;
        test::check_close(test::to_doubles(out, ctx), ref, f32 ? 1e-5 : 1e-12, f32 ? 1e-5 : 1e-12,
                          "potential");
        Tensor mass = Tensor::empty(Shape{N}, dt, dev, ctx), cost = Tensor::empty(Shape{N}, dt, dev, ctx);
        k::sinkhorn_plan_rows(c, f, g, eps, mass, cost, ctx);
        const double rt = f32 ? (eps < 0.1 ? 2e-3 : 2e-5) : 1e-11;  // exp amplifies the exponent's rounding
        test::check_close(test::to_doubles(mass, ctx), ref_mass, rt, 0, "row mass");
        test::check_close(test::to_doubles(cost, ctx), ref_cost, rt, 0, "row cost");
      }
}

NSAMP_DEVICE_TEST(
    "transport: auction rounds reach epsilon-complementary slackness - identical to the CPU twin") {
  Context ctx(dev);
  Context host(Device::cpu());
  for (std::int64_t n : {1, 2, 17, 150})
    for (DType dt : {DType::F32, DType::F64})
      for (bool ties : {false, true}) {
        CAPTURE(n);
        CAPTURE(ties);
        // Integer costs in a small range force ties in both the bids and the best values.
        Tensor c = test::randn(Shape{n, n}, DType::F64, Device::cpu(), host, 40 + n, 3.0, 5.0);
        std::vector<double> hc = c.to_vector<double>(host);
        for (double& v : hc) v = ties ? std::round(std::abs(v)) : std::abs(v);
        const Tensor cost = test::from_doubles(hc, Shape{n, n}, dt, dev, ctx);
        const Tensor cost_h = test::from_doubles(hc, Shape{n, n}, dt, Device::cpu(), host);
        k::AuctionState s = k::make_auction_state(n, ctx), t = k::make_auction_state(n, host);
        const bool twin = dev.is_cuda();
        for (double eps : {2.0, 0.3, 0.01}) {
          k::auction_begin_phase(s, ctx);
          if (twin) k::auction_begin_phase(t, host);
          std::int64_t left = n, left_h = n;
          int rounds = 0;
          while (left > 0) {
            REQUIRE(++rounds < 100000);
            left = k::auction_round(cost, eps, left, s, ctx);
            if (twin) {
              left_h = k::auction_round(cost_h, eps, left_h, t, host);
              REQUIRE(left == left_h);
              REQUIRE(s.prices.to_vector<double>(ctx) == t.prices.to_vector<double>(host));
              REQUIRE(s.col_of_row.to_vector<std::int32_t>(ctx) ==
                      t.col_of_row.to_vector<std::int32_t>(host));
            }
          }
          const std::vector<double> p = s.prices.to_vector<double>(ctx);
          const std::vector<std::int32_t> x = s.col_of_row.to_vector<std::int32_t>(ctx),
                                          y = s.row_of_col.to_vector<std::int32_t>(ctx);
          const std::vector<double> hcd = test::to_doubles(cost_h, host);  // the values the device saw
          for (std::int64_t i = 0; i < n; ++i) {
            REQUIRE(x[i] >= 0);
            REQUIRE(y[x[i]] == i);
            double best = INFINITY;
            for (std::int64_t j = 0; j < n; ++j) best = std::min(best, hcd[i * n + j] + p[j]);
            CHECK(hcd[i * n + x[i]] + p[x[i]] <= best + eps * (1 + 1e-12));
          }
        }
      }
}
