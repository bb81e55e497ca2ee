// Transport family: checks, dispatch and CPU launchers.
#include <algorithm>
#include <cmath>
#include <limits>

#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/operands.h"
#include "nsamp/kernels/reduce.h"
#include "nsamp/kernels/transport.h"

namespace nsamp::kernels {

const char* pair_cost_name(PairCost c) { return c == PairCost::SqEuclidean ? "sqeuclidean" : "euclidean"; }

namespace {

template <class T>
void pairwise_cpu(const T* x, const T* y, bool sq, T* out, std::int64_t N, std::int64_t M, std::int64_t d) {
#pragma omp parallel for schedule(static) if (N * M * d > (1 << 16))
  for (std::int64_t i = 0; i < N; ++i) {
    const T* xi = x + i * d;
    for (std::int64_t j = 0; j < M; ++j) {
      const T* yj = y + j * d;
      T s = 0;
      for (std::int64_t k = 0; k < d; ++k) {
        const T t = xi[k] - yj[k];
        s += t * t;
      }
      out[i * M + j] = sq ? s : std::sqrt(s);
    }
  }
}

template <class T>
void potential_cpu(const T* c, const T* g, T log_a, T eps, T* f, std::int64_t N, std::int64_t M) {
  const T inv = T(1) / eps;
#pragma omp parallel for schedule(static) if (N * M > (1 << 15))
  for (std::int64_t i = 0; i < N; ++i) {
    LseAcc<T> acc = LseAcc<T>::init();
    for (std::int64_t j = 0; j < M; ++j) acc.push((g[j] - c[i * M + j]) * inv);
    f[i] = eps * (log_a - acc.result());
  }
}

template <class T>
void plan_rows_cpu(const T* c, const T* f, const T* g, T eps, T* mass, T* cost, std::int64_t N,
                   std::int64_t M) {
  const T inv = T(1) / eps;
#pragma omp parallel for schedule(static) if (N * M > (1 << 15))
  for (std::int64_t i = 0; i < N; ++i) {
    T m = 0, s = 0;
    for (std::int64_t j = 0; j < M; ++j) {
      const T cij = c[i * M + j];
      const T p = std::exp((f[i] + g[j] - cij) * inv);
      m += p;
      s += p * cij;
    }
    mass[i] = m;
    cost[i] = s;
  }
}

void check_vector(const char* op, const Tensor& t, const char* name, DType dtype, std::int64_t n,
                  const Context& ctx) {
  check_defined(op, t, name);
  check_on_context(op, t, ctx);
  NSAMP_CHECK(t.dtype() == dtype && t.numel() == n, op, ": ", name, " must be ", dtype_name(dtype), " with ",
              n, " elements, got ", t.desc());
}

void check_auction(const char* op, const Tensor& cost, const AuctionState& s, const Context& ctx) {
  check_defined(op, cost, "cost");
  check_on_context(op, cost, ctx);
  NSAMP_CHECK(cost.rank() == 2 && cost.rows() == cost.cols() && is_floating(cost.dtype()), op,
              ": cost must be a square float32 or float64 matrix, got ", cost.desc());
  const std::int64_t n = cost.rows();
  check_vector(op, s.prices, "prices", DType::F64, n, ctx);
  check_vector(op, s.col_of_row, "col_of_row", DType::I32, n, ctx);
  check_vector(op, s.row_of_col, "row_of_col", DType::I32, n, ctx);
  check_vector(op, s.bidders, "bidders", DType::I32, n, ctx);
  check_vector(op, s.bid_col, "bid_col", DType::I32, n, ctx);
  check_vector(op, s.bid, "bid", DType::F64, n, ctx);
  check_vector(op, s.best, "best", DType::F64, n, ctx);
  check_vector(op, s.winner, "winner", DType::I32, n, ctx);
  check_vector(op, s.count, "count", DType::I32, 1, ctx);
  NSAMP_CHECK(cost.device() == s.prices.device(), op, ": cost ", cost.desc(), " and the auction state (",
              s.prices.desc(), ") are on different devices");
}

constexpr std::int32_t kNoWinner = std::numeric_limits<std::int32_t>::max();

template <class T>
void auction_round_cpu(const T* c, double eps, std::int64_t n, std::int64_t m, AuctionState& s) {
  double* p = s.prices.data<double>();
  std::int32_t* x = s.col_of_row.data<std::int32_t>();
  std::int32_t* y = s.row_of_col.data<std::int32_t>();
  std::int32_t* who = s.bidders.data<std::int32_t>();
  std::int32_t* bcol = s.bid_col.data<std::int32_t>();
  double* bid = s.bid.data<double>();
  double* best = s.best.data<double>();
  std::int32_t* win = s.winner.data<std::int32_t>();
#pragma omp parallel for schedule(static) if (m * n > (1 << 15))
  for (std::int64_t k = 0; k < m; ++k) {
    const T* r = c + std::int64_t(who[k]) * n;
    BestTwo b = BestTwo::init();
    for (std::int64_t j = 0; j < n; ++j) b.push(double(r[j]) + p[j], std::int32_t(j));
    bcol[k] = b.j1;
    bid[k] = b.bid(p[b.j1], eps, n);
  }
  for (std::int64_t k = 0; k < m; ++k) {
    const std::int32_t j = bcol[k], i = who[k];
    if (bid[k] > best[j] || (bid[k] == best[j] && i < win[j])) {
      best[j] = bid[k];
      win[j] = i;
    }
  }
  for (std::int64_t k = 0; k < m; ++k) {
    const std::int32_t j = bcol[k], i = who[k];
    if (win[j] != i) continue;
    if (y[j] >= 0) x[y[j]] = -1;
    y[j] = i;
    x[i] = j;
    p[j] = best[j];
  }
  for (std::int64_t k = 0; k < m; ++k) {
    best[bcol[k]] = 0;
    win[bcol[k]] = kNoWinner;
  }
  std::int32_t left = 0;
  for (std::int64_t i = 0; i < n; ++i)
    if (x[i] < 0) who[left++] = std::int32_t(i);
  s.count.data<std::int32_t>()[0] = left;
}

}  // namespace

void pairwise_cost(const Tensor& x, const Tensor& y, PairCost cost, Tensor& out, Context& ctx) {
  const char* op = "pairwise_cost";
  check_operands(op, ctx, {{"out", &out}, {"x", &x}, {"y", &y}});
  NSAMP_CHECK(x.rank() == 2 && y.rank() == 2 && x.cols() == y.cols(), op,
              ": x and y must be [N, d] and [M, d], got ", x.desc(), " and ", y.desc());
  check_shape(op, out, "out", Shape{x.rows(), y.rows()});
  NSAMP_CHECK(!out.same_storage(x) && !out.same_storage(y), op, ": out must not share memory with x or y");
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("transport/pairwise_cost");
      detail::pairwise_cost_cuda(x, y, cost, out, ctx);
    }
    return;
  }
  const bool sq = cost == PairCost::SqEuclidean;
  if (out.dtype() == DType::F32)
    pairwise_cpu(x.data<float>(), y.data<float>(), sq, out.data<float>(), x.rows(), y.rows(), x.cols());
  else
    pairwise_cpu(x.data<double>(), y.data<double>(), sq, out.data<double>(), x.rows(), y.rows(), x.cols());
}

void sinkhorn_potential(const Tensor& cost, const Tensor& g, double log_a, double eps, Tensor& f,
                        Context& ctx) {
  const char* op = "sinkhorn_potential";
  check_operands(op, ctx, {{"f", &f}, {"cost", &cost}, {"g", &g}});
  NSAMP_CHECK(cost.rank() == 2, op, ": cost must be [N, M], got ", cost.desc());
  NSAMP_CHECK(g.numel() == cost.cols() && f.numel() == cost.rows(), op, ": cost ", cost.desc(),
              " needs g of ", cost.cols(), " and f of ", cost.rows(), " values, got g ", g.desc(), " and f ",
              f.desc());
  NSAMP_CHECK(eps > 0 && std::isfinite(eps), op, ": eps must be positive and finite, got ", eps);
  NSAMP_CHECK(!f.same_storage(g) && !f.same_storage(cost), op, ": f must not share memory with cost or g");
  if (f.numel() == 0) return;
  if (f.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("transport/sinkhorn_potential");
      detail::sinkhorn_potential_cuda(cost, g, log_a, eps, f, ctx);
    }
    return;
  }
  if (f.dtype() == DType::F32)
    potential_cpu(cost.data<float>(), g.data<float>(), float(log_a), float(eps), f.data<float>(), cost.rows(),
                  cost.cols());
  else
    potential_cpu(cost.data<double>(), g.data<double>(), log_a, eps, f.data<double>(), cost.rows(),
                  cost.cols());
}

namespace {
template <class T>
void log_kernel_sum_cpu(const T* x, const T* y, const T* scale, T* out, std::int64_t N, std::int64_t M,
                        std::int64_t d) {
#pragma omp parallel for schedule(static) if (N * M * d > (1 << 16))
  for (std::int64_t i = 0; i < N; ++i) {
    LseAcc<T> acc = LseAcc<T>::init();
    for (std::int64_t j = 0; j < M; ++j) {
      T r2 = 0;
      for (std::int64_t k = 0; k < d; ++k) {
        const T u = x[i * d + k] - y[j * d + k];
        r2 += u * u;
      }
      acc.push(-scale[i] * r2);
    }
    out[i] = acc.result();
  }
}
}  // namespace

void log_kernel_sum(const Tensor& x, const Tensor& y, const Tensor& scale, Tensor& out, Context& ctx) {
  const char* op = "log_kernel_sum";
  check_operands(op, ctx, {{"out", &out}, {"x", &x}, {"y", &y}, {"scale", &scale}});
  NSAMP_CHECK(x.rank() == 2 && y.rank() == 2 && x.cols() == y.cols(), op,
              ": x [N, d] and y [M, d] must share d, got ", x.desc(), " and ", y.desc());
  NSAMP_CHECK(scale.numel() == x.rows() && out.numel() == x.rows(), op, ": scale and out must hold ",
              x.rows(), " values, got ", scale.desc(), " and ", out.desc());
  NSAMP_CHECK(!out.same_storage(x) && !out.same_storage(y) && !out.same_storage(scale), op,
              ": out must not share memory with the inputs");
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("transport/log_kernel_sum");
      detail::log_kernel_sum_cuda(x, y, scale, out, ctx);
    }
    return;
  }
  if (out.dtype() == DType::F32)
    log_kernel_sum_cpu(x.data<float>(), y.data<float>(), scale.data<float>(), out.data<float>(), x.rows(),
                       y.rows(), x.cols());
  else
    log_kernel_sum_cpu(x.data<double>(), y.data<double>(), scale.data<double>(), out.data<double>(), x.rows(),
                       y.rows(), x.cols());
}

void sinkhorn_plan_rows(const Tensor& cost, const Tensor& f, const Tensor& g, double eps, Tensor& row_mass,
                        Tensor& row_cost, Context& ctx) {
  const char* op = "sinkhorn_plan_rows";
  check_operands(op, ctx, {{"row_mass", &row_mass}, {"cost", &cost}, {"f", &f}, {"g", &g}});
  check_operands(op, ctx, {{"row_cost", &row_cost}, {"cost", &cost}, {"row_mass", &row_mass}});
  NSAMP_CHECK(cost.rank() == 2, op, ": cost must be [N, M], got ", cost.desc());
  const std::int64_t N = cost.rows(), M = cost.cols();
  NSAMP_CHECK(f.numel() == N && g.numel() == M && row_mass.numel() == N && row_cost.numel() == N, op,
              ": cost ", cost.desc(), " needs f, row_mass, row_cost of ", N, " and g of ", M,
              " values; got f ", f.desc(), ", g ", g.desc(), ", row_mass ", row_mass.desc(), ", row_cost ",
              row_cost.desc());
  NSAMP_CHECK(eps > 0 && std::isfinite(eps), op, ": eps must be positive and finite, got ", eps);
  NSAMP_CHECK(!row_mass.same_storage(row_cost), op, ": row_mass and row_cost must be separate buffers");
  if (N == 0) return;
  if (cost.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("transport/sinkhorn_plan_rows");
      detail::sinkhorn_plan_rows_cuda(cost, f, g, eps, row_mass, row_cost, ctx);
    }
    return;
  }
  if (cost.dtype() == DType::F32)
    plan_rows_cpu(cost.data<float>(), f.data<float>(), g.data<float>(), float(eps), row_mass.data<float>(),
                  row_cost.data<float>(), N, M);
  else
    plan_rows_cpu(cost.data<double>(), f.data<double>(), g.data<double>(), eps, row_mass.data<double>(),
                  row_cost.data<double>(), N, M);
}

AuctionState make_auction_state(std::int64_t n, Context& ctx) {
  NSAMP_CHECK(n > 0 && n < kNoWinner, "make_auction_state: bad size n = ", n);
  AuctionState s;
  s.prices = Tensor::zeros(Shape{n}, DType::F64, ctx);
  s.col_of_row = Tensor::empty(Shape{n}, DType::I32, ctx);
  s.row_of_col = Tensor::empty(Shape{n}, DType::I32, ctx);
  s.bidders = Tensor::empty(Shape{n}, DType::I32, ctx);
  s.bid_col = Tensor::empty(Shape{n}, DType::I32, ctx);
  s.bid = Tensor::empty(Shape{n}, DType::F64, ctx);
  s.best = Tensor::empty(Shape{n}, DType::F64, ctx);
  s.winner = Tensor::empty(Shape{n}, DType::I32, ctx);
  s.count = Tensor::empty(Shape{1}, DType::I32, ctx);
  auction_begin_phase(s, ctx);
  return s;
}

void auction_begin_phase(AuctionState& s, Context& ctx) {
  const std::int64_t n = s.prices.numel();
  check_vector("auction_begin_phase", s.prices, "prices", DType::F64, n, ctx);
  if (s.prices.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("transport/auction_begin_phase");
      detail::auction_begin_phase_cuda(s, ctx);
    }
    return;
  }
  std::int32_t* x = s.col_of_row.data<std::int32_t>();
  std::int32_t* y = s.row_of_col.data<std::int32_t>();
  std::int32_t* who = s.bidders.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    x[i] = y[i] = -1;
    who[i] = std::int32_t(i);
    s.best.data<double>()[i] = 0;
    s.winner.data<std::int32_t>()[i] = kNoWinner;
  }
  s.count.data<std::int32_t>()[0] = std::int32_t(n);
}

std::int64_t auction_round(const Tensor& cost, double eps, std::int64_t n_bidders, AuctionState& s,
                           Context& ctx) {
  const char* op = "auction_round";
  check_auction(op, cost, s, ctx);
  NSAMP_CHECK(eps > 0 && std::isfinite(eps), op, ": eps must be positive and finite, got ", eps);
  NSAMP_CHECK(n_bidders >= 0 && n_bidders <= cost.rows(), op, ": ", n_bidders, " bidders for ", cost.rows(),
              " persons");
  if (n_bidders == 0) return 0;
  if (cost.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("transport/auction_round");
      detail::auction_round_cuda(cost, eps, n_bidders, s, ctx);
    }
    return s.count.to_vector<std::int32_t>(ctx)[0];
  }
  if (cost.dtype() == DType::F32)
    auction_round_cpu(cost.data<float>(), eps, cost.rows(), n_bidders, s);
  else
    auction_round_cpu(cost.data<double>(), eps, cost.rows(), n_bidders, s);
  return s.count.data<std::int32_t>()[0];
}

}  // namespace nsamp::kernels
