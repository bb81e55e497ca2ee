#include "nsamp/samplers/sample_distances.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "nsamp/core/fill.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/reduce.h"
#include "nsamp/kernels/transport.h"
#include "nsamp/samplers/assignment.h"

namespace nsamp::samplers {

namespace {

using kernels::PairCost;

void check_sets(const char* op, const Tensor& x, const Tensor& y, Context& ctx) {
  check_defined(op, x, "x");
  check_defined(op, y, "y");
  check_on_context(op, x, ctx);
  check_on_context(op, y, ctx);
  NSAMP_CHECK(x.rank() == 2 && y.rank() == 2, op, ": samples must be [N, d], got x ", x.desc(), " and y ",
              y.desc());
  NSAMP_CHECK(x.cols() == y.cols(), op, ": dimension mismatch: x ", x.desc(), ", y ", y.desc());
  NSAMP_CHECK(x.dtype() == y.dtype() && is_floating(x.dtype()), op,
              ": x and y must both be float32 or both float64, got ", x.desc(), " and ", y.desc());
  NSAMP_CHECK(x.rows() > 0 && y.rows() > 0, op, ": empty sample set: x ", x.desc(), ", y ", y.desc());
}

Tensor cost_matrix(const Tensor& a, const Tensor& b, PairCost c, Context& ctx) {
  Tensor out = Tensor::empty(Shape{a.rows(), b.rows()}, a.dtype(), a.device(), ctx);
  kernels::pairwise_cost(a, b, c, out, ctx);
  return out;
}

double sum_all(const Tensor& m, Context& ctx) {
  Tensor rows = Tensor::empty(Shape{m.rows()}, m.dtype(), m.device(), ctx);
  kernels::reduce_rows(kernels::Reduce::Sum, m, rows, ctx);
  double s = 0;
  for (double v : rows.to_doubles(ctx)) s += v;
  return s;
}

template <class T>
W2Result w2_impl(const Tensor& x, const Tensor& y, const Tensor& cost, std::int64_t auction_min_rows,
                 Context& ctx) {
  const std::int64_t n = x.rows();
  const std::vector<T> c = cost.to_vector<T>(ctx);
  double cmax = 0;
  for (T v : c) {
    NSAMP_CHECK(std::isfinite(double(v)), "exact_w2: non-finite squared distance ", v,
                " (filter NaN/Inf rows first)");
    cmax = std::max(cmax, double(v));
  }
  W2Result r;
  r.n = n;
  Assignment a;
  if (cost.device().is_cuda() && cmax > 0 && n > 1 && n >= auction_min_rows) {
    // Jacobi auction on the device with epsilon scaling; the host finish makes the result exact, so the
    // round budget only bounds the time spent before handing over.
    kernels::AuctionState s = kernels::make_auction_state(n, ctx);
    const double eps_final = 1e-6 * cmax / double(n);
    const std::int64_t budget = 200 * n + 100000;
    double eps = std::max(cmax / 4, eps_final);
    for (;;) {
      kernels::auction_begin_phase(s, ctx);
      std::int64_t left = n;
      while (left > 0 && r.auction_rounds < budget) {
        left = kernels::auction_round(cost, eps, left, s, ctx);
        ++r.auction_rounds;
      }
      if (eps <= eps_final || r.auction_rounds >= budget) break;
      eps = std::max(eps / 7, eps_final);
    }
    std::vector<double> v = s.prices.to_vector<double>(ctx);
    for (double& p : v) p = -p;
    const std::vector<std::int32_t> cols = s.col_of_row.to_vector<std::int32_t>(ctx);
    a = solve_assignment(c.data(), n, AssignmentStart::Auction, &v, &cols);
  } else {
    a = solve_assignment(c.data(), n);
  }
  r.augmented_rows = a.augmented_rows;
  r.duality_gap = assignment_duality_gap(c.data(), n, a) / std::max(std::abs(a.cost), 1e-300);
  const std::vector<double> hx = x.to_doubles(ctx), hy = y.to_doubles(ctx);
  const std::int64_t d = x.cols();
  double total = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t j = a.col_of_row[i];
    for (std::int64_t k = 0; k < d; ++k) {
      const double t = hx[i * d + k] - hy[j * d + k];
      total += t * t;
    }
  }
  r.w2_squared = total / double(n);
  r.w2 = std::sqrt(r.w2_squared);
  return r;
}

struct Potentials {
  Tensor f, g;
  int iterations = 0;
  bool converged = false;
};

// Row and column masses and the transport cost of the plan exp((f_i + g_j - C_ij) / eps).
double plan_cost(const Tensor& c, const Tensor& f, const Tensor& g, double eps, double* total_mass,
                 Context& ctx) {
  Tensor mass = Tensor::empty(Shape{c.rows()}, c.dtype(), c.device(), ctx);
  Tensor cost = Tensor::empty(Shape{c.rows()}, c.dtype(), c.device(), ctx);
  kernels::sinkhorn_plan_rows(c, f, g, eps, mass, cost, ctx);
  if (total_mass) {
    *total_mass = 0;
    for (double m : mass.to_doubles(ctx)) *total_mass += m;
  }
  double s = 0;
  for (double v : cost.to_doubles(ctx)) s += v;
  return s;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double t = std::abs(a[i] - b[i]);
    m = (t > m || std::isnan(t)) ? t : m;
  }
  return m;
}

// ott-jax's balanced lse-mode loop: g from f, then f from g; every 10 iterations the L1 error of the column
// marginal decides convergence.
Potentials ott_sinkhorn(const Tensor& c, const Tensor& ct, const SinkhornOptions& opt, Context& ctx) {
  const std::int64_t N = c.rows(), M = c.cols();
  const double log_a = -std::log(double(N)), log_b = -std::log(double(M));
  Potentials p;
  p.f = Tensor::zeros(Shape{N}, c.dtype(), c.device(), ctx);
  p.g = Tensor::zeros(Shape{M}, c.dtype(), c.device(), ctx);
  Tensor mass = Tensor::empty(Shape{M}, c.dtype(), c.device(), ctx);
  Tensor scratch = Tensor::empty(Shape{M}, c.dtype(), c.device(), ctx);
  for (int it = 1; it <= opt.max_iters; ++it) {
    kernels::sinkhorn_potential(ct, p.f, log_b, opt.eps, p.g, ctx);
    kernels::sinkhorn_potential(c, p.g, log_a, opt.eps, p.f, ctx);
    p.iterations = it;
    if (it % 10 == 0) {
      kernels::sinkhorn_plan_rows(ct, p.g, p.f, opt.eps, mass, scratch, ctx);
      double err = 0;
      for (double m : mass.to_doubles(ctx)) err += std::abs(m - 1.0 / double(M));
      if (err < opt.tol) {
        p.converged = true;
        break;
      }
    }
  }
  return p;
}

double ott_reg_cost(const Tensor& c, const Potentials& p, double eps, Context& ctx) {
  double mass = 0;
  plan_cost(c, p.f, p.g, eps, &mass, ctx);
  double mf = 0, mg = 0;
  for (double v : p.f.to_doubles(ctx)) mf += v;
  for (double v : p.g.to_doubles(ctx)) mg += v;
  return mf / double(c.rows()) + mg / double(c.cols()) + eps * (1.0 - mass);
}

}  // namespace

W2Result exact_w2(const Tensor& x, const Tensor& y, Context& ctx, std::int64_t device_auction_min_rows) {
  check_sets("exact_w2", x, y, ctx);
  NSAMP_CHECK(x.rows() == y.rows(), "exact_w2: the exact assignment needs equal set sizes, got x ", x.desc(),
              " and y ", y.desc(), " (subsample the larger set)");
  const Tensor cost = cost_matrix(x, y, PairCost::SqEuclidean, ctx);
  return x.dtype() == DType::F32 ? w2_impl<float>(x, y, cost, device_auction_min_rows, ctx)
                                 : w2_impl<double>(x, y, cost, device_auction_min_rows, ctx);
}

SinkhornOptions SinkhornOptions::defaults_for(SinkhornConvention c) {
  SinkhornOptions o;
  o.convention = c;
  if (c == SinkhornConvention::SinkhornDivergence) {
    o.eps = 0.05;
    o.relative_eps = true;
    o.max_iters = 2000;
    o.tol = 1e-3;
  }
  return o;
}

SinkhornResult sinkhorn(const Tensor& x, const Tensor& y, const SinkhornOptions& opt, Context& ctx) {
  check_sets("sinkhorn", x, y, ctx);
  NSAMP_CHECK(opt.eps > 0 && std::isfinite(opt.eps), "sinkhorn: eps must be positive, got ", opt.eps);
  NSAMP_CHECK(opt.max_iters >= 1, "sinkhorn: max_iters must be at least 1, got ", opt.max_iters);
  NSAMP_CHECK(opt.tol >= 0, "sinkhorn: tol must be non-negative, got ", opt.tol);
  const std::int64_t N = x.rows(), M = y.rows();
  SinkhornResult r;
  // The epsilon in use: opt.eps, or opt.eps x the mean entry of the (X, Y) cost matrix.
  auto scaled = [&](const Tensor& c) {
    SinkhornOptions o = opt;
    if (opt.relative_eps) {
      Tensor means = Tensor::empty(Shape{c.rows()}, c.dtype(), c.device(), ctx);
      kernels::row_mean(c, means, ctx);
      double m = 0;
      for (double v : means.to_doubles(ctx)) m += v / double(c.rows());
      NSAMP_CHECK(m > 0 && std::isfinite(m),
                  "sinkhorn: a relative epsilon needs a positive finite mean cost, "
                  "got ",
                  m, " between ", x.desc(), " and ", y.desc());
      o.eps = opt.eps * m;
    }
    r.eps = o.eps;
    return o;
  };
  if (opt.convention == SinkhornConvention::SdeSampler) {
    const Tensor c = cost_matrix(x, y, PairCost::Euclidean, ctx),
                 ct = cost_matrix(y, x, PairCost::Euclidean, ctx);
    const SinkhornOptions so = scaled(c);
    const double log_a = -std::log(double(N)), log_b = -std::log(double(M));
    Tensor u = Tensor::zeros(Shape{N}, x.dtype(), x.device(), ctx);
    Tensor v = Tensor::empty(Shape{M}, x.dtype(), x.device(), ctx);
    fill_constant(v, so.eps * log_b, ctx);
    std::vector<double> hu = u.to_doubles(ctx), hv = v.to_doubles(ctx);
    for (int it = 1; it <= opt.max_iters; ++it) {
      kernels::sinkhorn_potential(c, v, log_a, so.eps, u, ctx);
      kernels::sinkhorn_potential(ct, u, log_b, so.eps, v, ctx);
      std::vector<double> nu = u.to_doubles(ctx), nv = v.to_doubles(ctx);
      const double eu = max_abs_diff(nu, hu), ev = max_abs_diff(nv, hv);
      hu.swap(nu);
      hv.swap(nv);
      r.iterations = it;
      if (eu < opt.tol && ev < opt.tol) {
        r.converged = true;
        break;
      }
    }
    r.value = plan_cost(c, u, v, so.eps, nullptr, ctx);
    return r;
  }
  // Sinkhorn divergence: OT(X,Y) - (OT(X,X) + OT(Y,Y)) / 2; the self-problems have symmetric costs.
  const Tensor cxy = cost_matrix(x, y, PairCost::SqEuclidean, ctx),
               cyx = cost_matrix(y, x, PairCost::SqEuclidean, ctx);
  const SinkhornOptions so_d = scaled(cxy);  // shared by the three problems, as ott-jax's share_epsilon
  const Potentials pxy = ott_sinkhorn(cxy, cyx, so_d, ctx);
  const double ot_xy = ott_reg_cost(cxy, pxy, so_d.eps, ctx);
  const Tensor cxx = cost_matrix(x, x, PairCost::SqEuclidean, ctx);
  const Potentials pxx = ott_sinkhorn(cxx, cxx, so_d, ctx);
  const double ot_xx = ott_reg_cost(cxx, pxx, so_d.eps, ctx);
  const Tensor cyy = cost_matrix(y, y, PairCost::SqEuclidean, ctx);
  const Potentials pyy = ott_sinkhorn(cyy, cyy, so_d, ctx);
  const double ot_yy = ott_reg_cost(cyy, pyy, so_d.eps, ctx);
  r.value = ot_xy - 0.5 * (ot_xx + ot_yy);
  r.iterations = pxy.iterations;
  r.converged = pxy.converged && pxx.converged && pyy.converged;
  return r;
}

MmdResult mmd_median(const Tensor& x, const Tensor& y, Context& ctx) {
  check_sets("mmd_median", x, y, ctx);
  const std::int64_t N = x.rows(), M = y.rows();
  NSAMP_CHECK(N >= 2 && M >= 2, "mmd_median: needs at least 2 samples per set, got ", N, " and ", M);
  Tensor dxx = cost_matrix(x, x, PairCost::SqEuclidean, ctx),
         dyy = cost_matrix(y, y, PairCost::SqEuclidean, ctx),
         dxy = cost_matrix(x, y, PairCost::SqEuclidean, ctx);
  // Median of the Euclidean distances over triu([X;Y] x [X;Y]), diagonal included: triu(XX), triu(YY) and
  // all of XY. Selected on squared distances (same order), square-rooted after.
  std::vector<double> all;
  all.reserve(std::size_t(N * (N + 1) / 2 + M * (M + 1) / 2 + N * M));
  {
    const std::vector<double> a = dxx.to_doubles(ctx);
    for (std::int64_t i = 0; i < N; ++i)
      for (std::int64_t j = i; j < N; ++j) all.push_back(a[i * N + j]);
  }
  {
    const std::vector<double> b = dyy.to_doubles(ctx);
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = i; j < M; ++j) all.push_back(b[i * M + j]);
  }
  {
    const std::vector<double> c = dxy.to_doubles(ctx);
    all.insert(all.end(), c.begin(), c.end());
  }
  for (double v : all)
    NSAMP_CHECK(std::isfinite(v), "mmd_median: non-finite squared distance ", v,
                " (filter NaN/Inf rows first)");
  const std::size_t n = all.size(), h = n / 2;
  std::nth_element(all.begin(), all.begin() + std::ptrdiff_t(h), all.end());
  double bw = std::sqrt(all[h]);
  if (n % 2 == 0)
    bw = 0.5 * (bw + std::sqrt(*std::max_element(all.begin(), all.begin() + std::ptrdiff_t(h))));
  MmdResult r;
  r.bandwidth = bw;
  NSAMP_CHECK(bw > 0, "mmd_median: the median distance is 0 (more than half the samples coincide)");
  const double scale = -1.0 / (2.0 * bw * bw);
  auto kernel_sum = [&](Tensor& d2) {
    kernels::affine(d2, scale, 0.0, d2, ctx);
    kernels::unary_forward(kernels::UnaryOp::Exp, d2, d2, ctx);
    return sum_all(d2, ctx);
  };
  const double kxx = kernel_sum(dxx), kyy = kernel_sum(dyy), kxy = kernel_sum(dxy);
  const double mmd2 = kxx / double(N * (N - 1)) + kyy / double(M * (M - 1)) - 2.0 * kxy / double(N * M);
  r.mmd = std::sqrt(std::max(1e-20, mmd2));
  return r;
}

}  // namespace nsamp::samplers
