// Transport family: CUDA launchers of the kernels in transport_kernels.cuh (their layout is described there).
// An auction round is five kernel launches and one 4-byte read.
#include <limits>

#include "nsamp/core/cuda_check.h"
#include "transport_kernels.cuh"

namespace nsamp::kernels::detail {

namespace {

template <class T>
void round_impl(const Tensor& cost, double eps, std::int64_t m, AuctionState& s, Context& ctx) {
  const std::int64_t n = cost.rows();
  cudaStream_t st = ctx.stream();
  bid_kernel<T><<<grid_for(m * 32), kThreads, 0, st>>>(
      cost.data<T>(), s.prices.data<double>(), s.bidders.data<std::int32_t>(), m, n, eps,
      s.bid_col.data<std::int32_t>(), s.bid.data<double>(), s.best.data<double>());
  resolve_kernel<<<grid_for(m), kThreads, 0, st>>>(s.bidders.data<std::int32_t>(),
                                                   s.bid_col.data<std::int32_t>(), s.bid.data<double>(),
                                                   s.best.data<double>(), s.winner.data<std::int32_t>(), m);
  assign_kernel<<<grid_for(m), kThreads, 0, st>>>(
      s.bidders.data<std::int32_t>(), s.bid_col.data<std::int32_t>(), s.best.data<double>(),
      s.winner.data<std::int32_t>(), s.prices.data<double>(), s.col_of_row.data<std::int32_t>(),
      s.row_of_col.data<std::int32_t>(), m);
  reset_kernel<<<grid_for(m), kThreads, 0, st>>>(s.bid_col.data<std::int32_t>(), s.best.data<double>(),
                                                 s.winner.data<std::int32_t>(), m);
  NSAMP_CUDA_CHECK(cudaMemsetAsync(s.count.data<std::int32_t>(), 0, sizeof(std::int32_t), st),
                   "auction_round: clearing the bidder count");
  compact_kernel<<<grid_for(n), kThreads, 0, st>>>(
      s.col_of_row.data<std::int32_t>(), s.bidders.data<std::int32_t>(), s.count.data<std::int32_t>(), n);
  NSAMP_CUDA_CHECK_LAUNCH("auction_round " + cost.desc());
}

}  // namespace

void pairwise_cost_cuda(const Tensor& x, const Tensor& y, PairCost cost, Tensor& out, Context& ctx) {
  const std::int64_t N = x.rows(), M = y.rows(), d = x.cols();
  const std::int64_t gy = (N + kTile - 1) / kTile, gx = (M + kTile - 1) / kTile;
  NSAMP_CHECK(gy <= 65535 && gx <= std::numeric_limits<int>::max(), "pairwise_cost: ", x.desc(),
              " has too many rows for one launch");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), block(kTile, kTileThreadRows);
  const bool sq = cost == PairCost::SqEuclidean;
  if (out.dtype() == DType::F32)
    pairwise_kernel<<<grid, block, 0, ctx.stream()>>>(x.data<float>(), y.data<float>(), out.data<float>(), N,
                                                      M, d, sq);
  else
    pairwise_kernel<<<grid, block, 0, ctx.stream()>>>(x.data<double>(), y.data<double>(), out.data<double>(),
                                                      N, M, d, sq);
  NSAMP_CUDA_CHECK_LAUNCH("pairwise_cost " + x.desc() + " x " + y.desc());
}

void log_kernel_sum_cuda(const Tensor& x, const Tensor& y, const Tensor& scale, Tensor& out, Context& ctx) {
  const std::int64_t N = x.rows(), M = y.rows(), d = x.cols();
  const int grid = grid_for(N * 32);
  if (x.dtype() == DType::F32)
    log_kernel_sum_kernel<<<grid, kThreads, 0, ctx.stream()>>>(
        x.data<float>(), y.data<float>(), scale.data<float>(), out.data<float>(), N, M, d);
  else
    log_kernel_sum_kernel<<<grid, kThreads, 0, ctx.stream()>>>(
        x.data<double>(), y.data<double>(), scale.data<double>(), out.data<double>(), N, M, d);
  NSAMP_CUDA_CHECK_LAUNCH("log_kernel_sum " + x.desc() + " x " + y.desc());
}

void sinkhorn_potential_cuda(const Tensor& cost, const Tensor& g, double log_a, double eps, Tensor& f,
                             Context& ctx) {
  const std::int64_t N = cost.rows(), M = cost.cols();
  if (f.dtype() == DType::F32)
    potential_kernel<<<grid_for(N * 32), kThreads, 0, ctx.stream()>>>(
        cost.data<float>(), g.data<float>(), float(log_a), float(eps), f.data<float>(), N, M);
  else
    potential_kernel<<<grid_for(N * 32), kThreads, 0, ctx.stream()>>>(cost.data<double>(), g.data<double>(),
                                                                      log_a, eps, f.data<double>(), N, M);
  NSAMP_CUDA_CHECK_LAUNCH("sinkhorn_potential " + cost.desc());
}

void sinkhorn_plan_rows_cuda(const Tensor& cost, const Tensor& f, const Tensor& g, double eps,
                             Tensor& row_mass, Tensor& row_cost, Context& ctx) {
  const std::int64_t N = cost.rows(), M = cost.cols();
  if (cost.dtype() == DType::F32)
    plan_rows_kernel<<<grid_for(N * 32), kThreads, 0, ctx.stream()>>>(
        cost.data<float>(), f.data<float>(), g.data<float>(), float(eps), row_mass.data<float>(),
        row_cost.data<float>(), N, M);
  else
    plan_rows_kernel<<<grid_for(N * 32), kThreads, 0, ctx.stream()>>>(
        cost.data<double>(), f.data<double>(), g.data<double>(), eps, row_mass.data<double>(),
        row_cost.data<double>(), N, M);
  NSAMP_CUDA_CHECK_LAUNCH("sinkhorn_plan_rows " + cost.desc());
}

void auction_begin_phase_cuda(AuctionState& s, Context& ctx) {
  const std::int64_t n = s.prices.numel();
  begin_phase_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(
      s.col_of_row.data<std::int32_t>(), s.row_of_col.data<std::int32_t>(), s.bidders.data<std::int32_t>(),
      s.best.data<double>(), s.winner.data<std::int32_t>(), s.count.data<std::int32_t>(), n);
  NSAMP_CUDA_CHECK_LAUNCH("auction_begin_phase n=" + std::to_string(n));
}

void auction_round_cuda(const Tensor& cost, double eps, std::int64_t n_bidders, AuctionState& s,
                        Context& ctx) {
  if (cost.dtype() == DType::F32)
    round_impl<float>(cost, eps, n_bidders, s, ctx);
  else
    round_impl<double>(cost, eps, n_bidders, s, ctx);
}

}  // namespace nsamp::kernels::detail
