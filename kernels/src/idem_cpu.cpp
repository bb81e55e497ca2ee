// iDEM / IW-SM family: checks, dispatch and the CPU launchers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/idem.h"
#include "nsamp/kernels/operands.h"

namespace nsamp::kernels {

namespace {

template <class T>
void loss_weights_cpu(const T* log_p, const T* ks, const double* shift, const double* lambda, double dim,
                      std::int64_t B, std::int64_t groups, double mix, T* coef, double* ess) {
  std::vector<double> w(std::size_t(B), 1.0 / double(B));
  double e = 1;
  if (log_p) {
    std::vector<double> l(static_cast<std::size_t>(B));
    for (std::int64_t i = 0; i < B; ++i) {
      const T log_pb = T(double(ks[i]) + shift[i]);
      l[std::size_t(i)] = double(log_p[i]) - double(log_pb);
    }
    // One group of stride 1 (the whole batch), or `groups` groups of stride `groups`.
    const std::int64_t G = std::max<std::int64_t>(groups, 1);
    for (std::int64_t g = 0; g < G; ++g) {
      double m = -std::numeric_limits<double>::infinity();
      for (std::int64_t i = g; i < B; i += G)
        if (std::isfinite(l[std::size_t(i)])) m = std::max(m, l[std::size_t(i)]);
      double s = 0;
      for (std::int64_t i = g; i < B; i += G) {
        const double li = l[std::size_t(i)];
        w[std::size_t(i)] = std::isfinite(li) ? std::exp(li - m) : 0.0;
        s += w[std::size_t(i)];
      }
      if (!std::isfinite(m)) s = std::numeric_limits<double>::quiet_NaN();  // no finite log-weight
      const double share = G == 1 ? 1.0 : double(group_size(B, g, G)) / double(B);
      for (std::int64_t i = g; i < B; i += G)
        w[std::size_t(i)] = defensive_weight(w[std::size_t(i)] / s * share, mix, B);
    }
    double s2 = 0;
    for (double wi : w) s2 += wi * wi;
    e = 1.0 / (double(B) * s2);
  }
  for (std::int64_t i = 0; i < B; ++i) coef[i] = T(lambda[i] * w[std::size_t(i)] / dim);
  *ess = e;
}

}  // namespace

void idem_noise_levels(const Tensor& t, const VeLevels& v, Tensor& t_col, Tensor& sigma, Tensor& sigma_x,
                       Tensor& scale, Tensor& shift, Tensor& lambda, Context& ctx) {
  const char* op = "idem_noise_levels";
  NSAMP_CHECK(t.defined(), op, ": undefined t");
  const std::int64_t B = t.numel();
  check_f64(op, t, "t", B, t, ctx);
  check_f64(op, shift, "shift", B, t, ctx);
  check_f64(op, lambda, "lambda", B, t, ctx);
  check_operands(op, ctx, {{"t_col", &t_col}, {"sigma", &sigma}, {"sigma_x", &sigma_x}, {"scale", &scale}});
  check_shape(op, t_col, "t_col", Shape{B, 1});
  check_shape(op, sigma, "sigma", Shape{B, 1});
  check_shape(op, sigma_x, "sigma_x", Shape{B});
  check_shape(op, scale, "scale", Shape{B});
  NSAMP_CHECK(t_col.device() == t.device(), op, ": t_col ", t_col.desc(), " is not on t's device");
  NSAMP_CHECK(v.sigma_min > 0 && v.sigma_max > v.sigma_min && v.buffer_rows >= 1, op, ": bad levels (sigma ",
              v.sigma_min, " .. ", v.sigma_max, ", buffer rows ", v.buffer_rows, ")");
  NSAMP_CHECK(v.time_groups >= 0 && v.time_groups <= std::max<std::int64_t>(B, 1), op, ": time_groups ",
              v.time_groups, " outside [0, batch ", B, "]");
  if (B == 0) return;
  if (t.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("idem/noise_levels");
      detail::idem_noise_levels_cuda(t, v, t_col, sigma, sigma_x, scale, shift, lambda, ctx);
    }
    return;
  }
  auto run = [&](auto* tc, auto* sg, auto* sx, auto* sc) {
    const double* tv = t.data<double>();
    double *sh = shift.data<double>(), *la = lambda.data<double>();
    for (std::int64_t i = 0; i < B; ++i)
      store_ve(ve_element(group_time(tv, i, v.time_groups), v), i, tc, sg, sx, sc, sh, la);
  };
  if (t_col.dtype() == DType::F32)
    run(t_col.data<float>(), sigma.data<float>(), sigma_x.data<float>(), scale.data<float>());
  else
    run(t_col.data<double>(), sigma.data<double>(), sigma_x.data<double>(), scale.data<double>());
}

void idem_loss_weights(const Tensor* log_p, const Tensor* kernel_sum, const Tensor& shift,
                       const Tensor& lambda, double dim, Tensor& coef, Tensor& ess, Context& ctx,
                       std::int64_t groups, double uniform_mix) {
  const char* op = "idem_loss_weights";
  NSAMP_CHECK((log_p == nullptr) == (kernel_sum == nullptr), op, ": log_p and kernel_sum come together");
  NSAMP_CHECK(coef.defined() && coef.rank() == 1, op, ": coef must be [B], got ", coef.desc());
  const std::int64_t B = coef.numel();
  NSAMP_CHECK(B >= 1 && dim > 0, op, ": needs a batch and dim > 0, got ", coef.desc(), " and ", dim);
  NSAMP_CHECK(groups >= 0 && groups <= B, op, ": groups ", groups, " outside [0, batch ", B, "]");
  NSAMP_CHECK(uniform_mix >= 0 && uniform_mix <= 1, op, ": uniform_mix ", uniform_mix, " outside [0, 1]");
  check_f64(op, shift, "shift", B, coef, ctx);
  check_f64(op, lambda, "lambda", B, coef, ctx);
  check_f64(op, ess, "ess", 1, coef, ctx);
  if (log_p) {
    check_operands(op, ctx, {{"coef", &coef}, {"log_p", log_p}, {"kernel_sum", kernel_sum}});
    check_shape(op, *log_p, "log_p", Shape{B});
    check_shape(op, *kernel_sum, "kernel_sum", Shape{B});
  } else {
    check_operands(op, ctx, {{"coef", &coef}});
  }
  if (coef.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("idem/loss_weights");
      detail::idem_loss_weights_cuda(log_p, kernel_sum, shift, lambda, dim, coef, ess, ctx, groups,
                                     uniform_mix);
    }
    return;
  }
  if (coef.dtype() == DType::F32)
    loss_weights_cpu<float>(log_p ? log_p->data<float>() : nullptr,
                            log_p ? kernel_sum->data<float>() : nullptr, shift.data<double>(),
                            lambda.data<double>(), dim, B, groups, uniform_mix, coef.data<float>(),
                            ess.data<double>());
  else
    loss_weights_cpu<double>(log_p ? log_p->data<double>() : nullptr,
                             log_p ? kernel_sum->data<double>() : nullptr, shift.data<double>(),
                             lambda.data<double>(), dim, B, groups, uniform_mix, coef.data<double>(),
                             ess.data<double>());
}

void buffer_indices(const Tensor& u, std::int64_t size, Tensor& idx, Context& ctx) {
  const char* op = "buffer_indices";
  NSAMP_CHECK(u.defined() && u.dtype() == DType::F64, op, ": u must be float64, got ", u.desc());
  NSAMP_CHECK(idx.defined() && idx.dtype() == DType::I32 && idx.numel() == u.numel(), op,
              ": idx must be int32 with one entry per uniform, got ", idx.desc(), " for ", u.desc());
  NSAMP_CHECK(size >= 1 && size < (std::int64_t(1) << 31), op, ": buffer size ", size, " out of range");
  NSAMP_CHECK(idx.device() == u.device(), op, ": idx ", idx.desc(), " is not on u's device");
  check_on_context(op, u, ctx);
  check_on_context(op, idx, ctx);
  const std::int64_t n = u.numel();
  if (n == 0) return;
  if (u.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("idem/buffer_indices");
      detail::buffer_indices_cuda(u, size, idx, ctx);
    }
    return;
  }
  const double* uv = u.data<double>();
  std::int32_t* iv = idx.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i)
    iv[i] = std::int32_t(std::min<std::int64_t>(size - 1, std::int64_t(uv[i] * double(size))));
}

void idem_accumulate(const Tensor& loss, const Tensor& ess, Tensor& acc, Context& ctx) {
  const char* op = "idem_accumulate";
  NSAMP_CHECK(loss.defined() && is_floating(loss.dtype()) && loss.numel() == 1, op,
              ": loss must be one float value, got ", loss.desc());
  check_on_context(op, loss, ctx);
  check_f64(op, ess, "ess", 1, loss, ctx);
  check_f64(op, acc, "acc", 4, loss, ctx);
  if (loss.device().is_cuda()) {
    if constexpr (kCudaBuilt) detail::idem_accumulate_cuda(loss, ess, acc, ctx);
    return;
  }
  const double l = loss.dtype() == DType::F64 ? *loss.data<double>() : double(*loss.data<float>());
  double* a = acc.data<double>();
  a[0] += l;
  a[1] += *ess.data<double>();
  if (std::isfinite(l)) a[2] += l, a[3] += 1;
}

}  // namespace nsamp::kernels
