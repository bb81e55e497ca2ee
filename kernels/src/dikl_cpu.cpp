// DiKL family: checks, dispatch and the CPU launchers.
#include <cmath>
#include <limits>

#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/core/rng_counter.h"
#include "nsamp/kernels/dikl.h"
#include "nsamp/kernels/operands.h"

namespace nsamp::kernels {

namespace {

// A per-row value: [B] or [B, 1].
void check_rows(const char* op, const Tensor& t, const char* name, std::int64_t B) {
  NSAMP_CHECK(t.defined() && t.numel() == B && (t.rank() == 1 || (t.rank() == 2 && t.cols() == 1)), op, ": ",
              name, " must hold one value per row ([", B, "] or [", B, ", 1]), got ",
              t.defined() ? t.desc() : "an undefined tensor");
}

template <class T>
double as_double(const Tensor& t) {
  return double(*t.data<T>());
}

}  // namespace

void dikl_levels(const Tensor& u, const Tensor& table, Tensor& time, Tensor& alpha, Tensor& sigma,
                 Tensor& weight, Context& ctx) {
  const char* op = "dikl_levels";
  NSAMP_CHECK(u.defined() && u.rank() == 1, op, ": u must be [B], got ",
              u.defined() ? u.desc() : "undefined");
  const std::int64_t B = u.numel();
  check_f64(op, u, "u", B, u, ctx);
  NSAMP_CHECK(table.defined() && table.dtype() == DType::F64 && table.rank() == 2 && table.rows() == 3 &&
                  table.cols() >= 2,
              op, ": the schedule table must be float64 [3, L >= 2], got ",
              table.defined() ? table.desc() : "undefined");
  check_f64(op, table, "table", table.numel(), u, ctx);
  check_operands(op, ctx, {{"time", &time}, {"alpha", &alpha}, {"sigma", &sigma}, {"weight", &weight}});
  for (const Tensor* t : {&time, &alpha, &sigma, &weight}) check_shape(op, *t, "each output", Shape{B, 1});
  NSAMP_CHECK(time.device() == u.device(), op, ": outputs ", time.desc(), " are not on u's device");
  if (B == 0) return;
  if (u.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("dikl/levels");
      detail::dikl_levels_cuda(u, table, time, alpha, sigma, weight, ctx);
    }
    return;
  }
  const int L = int(table.cols());
  const double *uv = u.data<double>(), *tab = table.data<double>();
  auto run = [&](auto* tm, auto* al, auto* sg, auto* wt) {
    using T = std::remove_pointer_t<decltype(tm)>;
    for (std::int64_t i = 0; i < B; ++i) {
      const int k = dikl_level(uv[i], L);
      tm[i] = T(double(k));
      al[i] = T(tab[k]);
      sg[i] = T(tab[L + k]);
      wt[i] = T(tab[2 * L + k]);
    }
  };
  if (time.dtype() == DType::F32)
    run(time.data<float>(), alpha.data<float>(), sigma.data<float>(), weight.data<float>());
  else
    run(time.data<double>(), alpha.data<double>(), sigma.data<double>(), weight.data<double>());
}

void dikl_proposals(const Tensor& xt, const Tensor& a, const Tensor& s, const Tensor& xi, std::int64_t n,
                    Tensor& x0, Tensor& xt_rep, Tensor& a_rep, Tensor& c_rep, Context& ctx) {
  const char* op = "dikl_proposals";
  NSAMP_CHECK(xt.defined() && xt.rank() == 2 && xt.cols() >= 1 && n >= 1, op,
              ": x_t must be [B, d] with d >= 1 and n >= 1, got ", xt.defined() ? xt.desc() : "undefined",
              " and ", n);
  const std::int64_t B = xt.rows(), d = xt.cols(), P = B * n;
  check_operands(op, ctx,
                 {{"x0", &x0},
                  {"x_t", &xt},
                  {"a", &a},
                  {"s", &s},
                  {"xi", &xi},
                  {"xt_rep", &xt_rep},
                  {"a_rep", &a_rep},
                  {"c_rep", &c_rep}});
  check_rows(op, a, "a", B);
  check_rows(op, s, "s", B);
  check_shape(op, xi, "xi", Shape{P, d});
  check_shape(op, x0, "x0", Shape{P, d});
  check_shape(op, xt_rep, "xt_rep", Shape{P, d});
  check_shape(op, a_rep, "a_rep", Shape{P});
  check_shape(op, c_rep, "c_rep", Shape{P});
  if (P == 0) return;
  if (xt.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("dikl/proposals");
      detail::dikl_proposals_cuda(xt, a, s, xi, n, x0, xt_rep, a_rep, c_rep, ctx);
    }
    return;
  }
  auto run = [&](auto* out) {
    using T = std::remove_pointer_t<decltype(out)>;
    const T *xv = xt.data<T>(), *av = a.data<T>(), *sv = s.data<T>(), *z = xi.data<T>();
    T *xr = xt_rep.data<T>(), *ar = a_rep.data<T>(), *cr = c_rep.data<T>();
    for (std::int64_t p = 0; p < P; ++p) {
      const std::int64_t b = p / n;
      const ProposalCoef c = proposal_coef(double(av[b]), double(sv[b]));
      for (std::int64_t j = 0; j < d; ++j) {
        xr[p * d + j] = xv[b * d + j];
        out[p * d + j] = proposal_value(xv[b * d + j], z[p * d + j], c);
      }
      ar[p] = av[b];
      cr[p] = T(c.c);
    }
  };
  if (x0.dtype() == DType::F32)
    run(x0.data<float>());
  else
    run(x0.data<double>());
}

void tilt_coefficient(const Tensor& s, Tensor& c, Context& ctx) {
  const char* op = "tilt_coefficient";
  check_operands(op, ctx, {{"c", &c}, {"s", &s}});
  NSAMP_CHECK(c.numel() == s.numel(), op, ": c ", c.desc(), " must hold one value per s ", s.desc());
  const std::int64_t B = s.numel();
  if (B == 0) return;
  if (s.device().is_cuda()) {
    if constexpr (kCudaBuilt) detail::tilt_coefficient_cuda(s, c, ctx);
    return;
  }
  auto run = [&](auto* out) {
    using T = std::remove_pointer_t<decltype(out)>;
    const T* sv = s.data<T>();
    for (std::int64_t i = 0; i < B; ++i) out[i] = T(0.5 / (double(sv[i]) * double(sv[i])));
  };
  if (c.dtype() == DType::F32)
    run(c.data<float>());
  else
    run(c.data<double>());
}

void gumbel_max_rows(const Tensor& log_w, std::int64_t n, std::uint64_t seed, philox::Offset offset,
                     Tensor& rows, Context& ctx) {
  const char* op = "gumbel_max_rows";
  NSAMP_CHECK(n >= 1 && log_w.defined() && is_floating(log_w.dtype()) && log_w.numel() % n == 0, op, ": ",
              log_w.defined() ? log_w.desc() : "undefined log-weights",
              " is not a whole number of groups of ", n);
  const std::int64_t G = log_w.numel() / n;
  NSAMP_CHECK(rows.defined() && rows.dtype() == DType::I32 && rows.numel() == G, op,
              ": rows must be int32 with one entry per group (", G, "), got ",
              rows.defined() ? rows.desc() : "undefined");
  NSAMP_CHECK(log_w.numel() < (std::int64_t(1) << 31), op, ": ", log_w.desc(), " too large for int32 rows");
  NSAMP_CHECK(rows.device() == log_w.device(), op, ": rows ", rows.desc(), " is not on ", log_w.desc(),
              "'s device");
  check_on_context(op, log_w, ctx);
  check_on_context(op, rows, ctx);
  if (G == 0) return;
  if (log_w.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("dikl/gumbel_max");
      detail::gumbel_max_rows_cuda(log_w, n, seed, offset, rows, ctx);
    }
    return;
  }
  const std::uint64_t off = host_offset(offset, ctx, op);
  auto run = [&](const auto* lw) {
    std::int32_t* r = rows.data<std::int32_t>();
    for (std::int64_t g = 0; g < G; ++g) {
      double best = -std::numeric_limits<double>::infinity();
      std::int64_t pick = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint64_t k = std::uint64_t(g * n + i);
        double u[2];
        philox::uniform_block(seed, off + k / 2, u);
        const double v = double(lw[k]) - std::log(-std::log(u[k % 2]));  // NaN never compares greater
        if (v > best) best = v, pick = i;
      }
      r[g] = std::int32_t(g * n + pick);
    }
  };
  if (log_w.dtype() == DType::F32)
    run(log_w.data<float>());
  else
    run(log_w.data<double>());
}

void mala_adapt(const Tensor& accepted, std::int64_t steps, bool adaptive, Tensor& step, Tensor& rate,
                Context& ctx) {
  const char* op = "mala_adapt";
  NSAMP_CHECK(accepted.defined() && is_floating(accepted.dtype()) && accepted.numel() >= 1 && steps >= 1, op,
              ": needs accept counts and steps >= 1, got ",
              accepted.defined() ? accepted.desc() : "undefined", " and ", steps);
  check_on_context(op, accepted, ctx);
  check_f64(op, step, "step", 1, accepted, ctx);
  check_f64(op, rate, "rate", 1, accepted, ctx);
  if (accepted.device().is_cuda()) {
    if constexpr (kCudaBuilt) detail::mala_adapt_cuda(accepted, steps, adaptive, step, rate, ctx);
    return;
  }
  const std::int64_t B = accepted.numel();
  double total = 0;
  if (accepted.dtype() == DType::F32)
    for (std::int64_t i = 0; i < B; ++i) total += double(accepted.data<float>()[i]);
  else
    for (std::int64_t i = 0; i < B; ++i) total += accepted.data<double>()[i];
  const double r = total / (double(steps) * double(B));
  *rate.data<double>() = r;
  if (adaptive) {
    double& st = *step.data<double>();
    if (r > 0.6) st *= 1.5;
    if (r < 0.5) st /= 1.5;
  }
}

void record_scalar(const Tensor& value, Tensor& stats, std::int64_t slot, bool accumulate, Context& ctx) {
  const char* op = "record_scalar";
  NSAMP_CHECK(value.defined() && is_floating(value.dtype()) && value.numel() == 1, op,
              ": value must be one float value, got ", value.defined() ? value.desc() : "undefined");
  NSAMP_CHECK(stats.defined() && stats.dtype() == DType::F64 && slot >= 0 && slot < stats.numel(), op,
              ": slot ", slot, " outside float64 stats ", stats.defined() ? stats.desc() : "undefined");
  NSAMP_CHECK(stats.device() == value.device(), op, ": stats ", stats.desc(), " not on ", value.desc(),
              "'s device");
  check_on_context(op, value, ctx);
  if (value.device().is_cuda()) {
    if constexpr (kCudaBuilt) detail::record_scalar_cuda(value, stats, slot, accumulate, ctx);
    return;
  }
  const double v = value.dtype() == DType::F64 ? as_double<double>(value) : as_double<float>(value);
  double& dst = stats.data<double>()[slot];
  dst = accumulate ? dst + v : v;
}

}  // namespace nsamp::kernels
