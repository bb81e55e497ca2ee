// MCMC family: checks, dispatch and CPU launchers.
#include <cmath>
#include <initializer_list>

#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/mcmc.h"
#include "nsamp/kernels/operands.h"

namespace nsamp::kernels {

namespace {

template <class T>
void propose_cpu(const T* x, const T* g, const T* z, T step, T* y, const TiltView<T>& tilt, std::int64_t B,
                 std::int64_t d) {
  const T s = std::sqrt(T(2) * step);
#pragma omp parallel for schedule(static) if (B * d > (1 << 15))
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < d; ++j) {
      const std::int64_t i = b * d + j;
      y[i] = x[i] - step * tilt.du(b, d, j, x[i], g[i]) + s * z[i];
    }
}

template <class T>
void accept_cpu(T* x, T* e, T* g, const T* y, const T* ey, const T* gy, const T* log_u, T step, T* acc,
                const TiltView<T>& tilt, std::int64_t B, std::int64_t d) {
#pragma omp parallel for schedule(static) if (B * d > (1 << 14))
  for (std::int64_t b = 0; b < B; ++b) {
    T fwd = 0, bwd = 0;
    for (std::int64_t j = 0; j < d; ++j) {
      const std::int64_t k = b * d + j;
      const T f = y[k] - x[k] + step * tilt.du(b, d, j, x[k], g[k]);
      const T r = x[k] - y[k] + step * tilt.du(b, d, j, y[k], gy[k]);
      fwd += f * f;
      bwd += r * r;
    }
    const T la =
        mala_log_ratio(tilt.u(b, d, x + b * d, e[b]), tilt.u(b, d, y + b * d, ey[b]), fwd, bwd, step);
    if (log_u[b] < la) {  // false for NaN
      for (std::int64_t j = 0; j < d; ++j) {
        x[b * d + j] = y[b * d + j];
        g[b * d + j] = gy[b * d + j];
      }
      e[b] = ey[b];
      acc[b] += T(1);
    }
  }
}

template <class T>
void tilt_cpu(const T* x, const T* e, const T* g, const TiltView<T>& tilt, T* eu, T* gu, std::int64_t B,
              std::int64_t d) {
#pragma omp parallel for schedule(static) if (B * d > (1 << 15))
  for (std::int64_t b = 0; b < B; ++b) {
    const T* xb = x + b * d;
    if (gu)
      for (std::int64_t j = 0; j < d; ++j) gu[b * d + j] = tilt.du(b, d, j, xb[j], g[b * d + j]);
    eu[b] = tilt.u(b, d, xb, e[b]);
  }
}

template <class T>
void select_cpu(T* x, T* e, T* g, const T* y, const T* ey, const T* gy, const T* log_alpha, const T* log_u,
                T* acc, std::int64_t B, std::int64_t d) {
#pragma omp parallel for schedule(static) if (B * d > (1 << 14))
  for (std::int64_t b = 0; b < B; ++b) {
    if (!(log_u[b] < log_alpha[b])) continue;  // NaN rejects
    for (std::int64_t j = 0; j < d; ++j) {
      x[b * d + j] = y[b * d + j];
      g[b * d + j] = gy[b * d + j];
    }
    e[b] = ey[b];
    acc[b] += T(1);
  }
}

// The checks both accept ops share: states [B, d], per-chain values [B], no aliasing of what is written.
void check_accept(const char* op, Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey,
                  const Tensor& gy, const Tensor& ratio, const Tensor& log_u, Tensor& accepted,
                  Context& ctx) {
  check_operands(op, ctx, {{"x", &x}, {"y", &y}, {"grad", &grad}, {"gy", &gy}});
  check_operands(op, ctx, {{"e", &e}, {"ey", &ey}, {"log_u", &log_u}, {"accepted", &accepted}, {"x", &x}});
  NSAMP_CHECK(x.rank() == 2, op, ": x must be [B, d], got ", x.desc());
  for (const Tensor* t : std::initializer_list<const Tensor*>{&y, &grad, &gy})
    check_shape(op, *t, "state", x.shape());
  for (const Tensor* t : std::initializer_list<const Tensor*>{&e, &ey, &log_u, &accepted})
    NSAMP_CHECK(t->numel() == x.rows(), op, ": per-chain tensor ", t->desc(), " must hold ", x.rows(),
                " values");
  if (ratio.defined()) {
    check_operands(op, ctx, {{"log_alpha", &ratio}, {"e", &e}});
    NSAMP_CHECK(ratio.numel() == x.rows(), op, ": log_alpha ", ratio.desc(), " must hold ", x.rows(),
                " values");
    NSAMP_CHECK(!ratio.same_storage(e) && !ratio.same_storage(accepted), op,
                ": log_alpha must not share memory with e or accepted");
  }
  for (const Tensor* t : std::initializer_list<const Tensor*>{&y, &gy, &ey})
    NSAMP_CHECK(!t->same_storage(x) && !t->same_storage(grad) && !t->same_storage(e), op,
                ": the proposal must not share memory with the chain state");
  NSAMP_CHECK(!x.same_storage(grad) && !e.same_storage(accepted) && !e.same_storage(log_u) &&
                  !accepted.same_storage(log_u),
              op, ": x, grad, e, log_u and accepted must be separate buffers");
}

// A tilt's tensors: xt like the chain state x, a and c one value per chain, all on x's device and dtype.
void check_tilt(const char* op, const Tensor& x, const GaussianTilt& tilt, Context& ctx) {
  if (!tilt.active()) return;
  check_operands(op, ctx, {{"x", &x}, {"tilt.xt", &tilt.xt}});
  check_shape(op, tilt.xt, "tilt.xt", x.shape());
  for (const Tensor* t : {&tilt.a, &tilt.c}) {
    check_defined(op, *t, "tilt.a / tilt.c");
    check_operands(op, ctx, {{"x", &x}, {"tilt.a / tilt.c", t}});
    NSAMP_CHECK(t->numel() == x.rows(), op, ": tilt coefficient ", t->desc(), " must hold ", x.rows(),
                " values (one per chain)");
  }
  NSAMP_CHECK(std::isfinite(tilt.beta), op, ": tilt beta must be finite, got ", tilt.beta);
}

}  // namespace

void langevin_propose(const Tensor& x, const Tensor& grad, const Tensor& noise, StepSize step, Tensor& y,
                      Context& ctx, const GaussianTilt& tilt) {
  check_operands("langevin_propose", ctx, {{"y", &y}, {"x", &x}, {"grad", &grad}, {"noise", &noise}});
  check_shape("langevin_propose", x, "x", y.shape());
  check_shape("langevin_propose", grad, "grad", y.shape());
  check_shape("langevin_propose", noise, "noise", y.shape());
  NSAMP_CHECK(step.valid(), "langevin_propose: step must be positive, got ", step.value);
  NSAMP_CHECK(y.rank() == 2, "langevin_propose: states must be [B, d], got ", y.desc());
  check_tilt("langevin_propose", x, tilt, ctx);
  if (y.numel() == 0) return;
  if (y.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("mcmc/langevin_propose");
      detail::langevin_propose_cuda(x, grad, noise, step, y, tilt, ctx);
    }
    return;
  }
  if (y.dtype() == DType::F32)
    propose_cpu(x.data<float>(), grad.data<float>(), noise.data<float>(), step.get<float>(), y.data<float>(),
                tilt_view<float>(tilt), y.rows(), y.cols());
  else
    propose_cpu(x.data<double>(), grad.data<double>(), noise.data<double>(), step.get<double>(),
                y.data<double>(), tilt_view<double>(tilt), y.rows(), y.cols());
}

void mala_accept(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey, const Tensor& gy,
                 const Tensor& log_u, StepSize step, Tensor& accepted, Context& ctx,
                 const GaussianTilt& tilt) {
  const char* op = "mala_accept";
  check_accept(op, x, e, grad, y, ey, gy, Tensor(), log_u, accepted, ctx);
  NSAMP_CHECK(step.valid(), op, ": step must be positive, got ", step.value);
  check_tilt(op, x, tilt, ctx);
  if (x.rows() == 0) return;
  if (x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("mcmc/mala_accept");
      detail::mala_accept_cuda(x, e, grad, y, ey, gy, log_u, step, accepted, tilt, ctx);
    }
    return;
  }
  const std::int64_t B = x.rows(), d = x.cols();
  if (x.dtype() == DType::F32)
    accept_cpu(x.data<float>(), e.data<float>(), grad.data<float>(), y.data<float>(), ey.data<float>(),
               gy.data<float>(), log_u.data<float>(), step.get<float>(), accepted.data<float>(),
               tilt_view<float>(tilt), B, d);
  else
    accept_cpu(x.data<double>(), e.data<double>(), grad.data<double>(), y.data<double>(), ey.data<double>(),
               gy.data<double>(), log_u.data<double>(), step.get<double>(), accepted.data<double>(),
               tilt_view<double>(tilt), B, d);
}

void tilt_energy(const Tensor& x, const Tensor& e, const Tensor* grad, const GaussianTilt& tilt, Tensor& eu,
                 Tensor* gu, Context& ctx) {
  const char* op = "tilt_energy";
  NSAMP_CHECK(tilt.active(), op, ": the tilt has no x_t");
  NSAMP_CHECK(bool(grad) == bool(gu), op, ": give both grad and gu or neither");
  check_operands(op, ctx, {{"eu", &eu}, {"e", &e}, {"x", &x}});
  NSAMP_CHECK(x.rank() == 2 && e.numel() == x.rows() && eu.numel() == x.rows(), op,
              ": x must be [B, d] and e, eu [B], got ", x.desc(), ", ", e.desc(), ", ", eu.desc());
  if (gu) {
    check_operands(op, ctx, {{"gu", gu}, {"grad", grad}, {"x", &x}});
    check_shape(op, *grad, "grad", x.shape());
    check_shape(op, *gu, "gu", x.shape());
    NSAMP_CHECK(!gu->same_storage(x) && !gu->same_storage(eu), op, ": gu must not share memory with x or eu");
  }
  NSAMP_CHECK(!eu.same_storage(x), op, ": eu must not share memory with x");
  check_tilt(op, x, tilt, ctx);
  if (x.rows() == 0) return;
  if (x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("mcmc/tilt_energy");
      detail::tilt_energy_cuda(x, e, grad, tilt, eu, gu, ctx);
    }
    return;
  }
  const std::int64_t B = x.rows(), d = x.cols();
  if (x.dtype() == DType::F32)
    tilt_cpu(x.data<float>(), e.data<float>(), grad ? grad->data<float>() : nullptr, tilt_view<float>(tilt),
             eu.data<float>(), gu ? gu->data<float>() : nullptr, B, d);
  else
    tilt_cpu(x.data<double>(), e.data<double>(), grad ? grad->data<double>() : nullptr,
             tilt_view<double>(tilt), eu.data<double>(), gu ? gu->data<double>() : nullptr, B, d);
}

void metropolis_accept(Tensor& x, Tensor& e, Tensor& grad, const Tensor& y, const Tensor& ey,
                       const Tensor& gy, const Tensor& log_alpha, const Tensor& log_u, Tensor& accepted,
                       Context& ctx) {
  check_defined("metropolis_accept", log_alpha, "log_alpha");
  check_accept("metropolis_accept", x, e, grad, y, ey, gy, log_alpha, log_u, accepted, ctx);
  if (x.rows() == 0) return;
  if (x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("mcmc/metropolis_accept");
      detail::metropolis_accept_cuda(x, e, grad, y, ey, gy, log_alpha, log_u, accepted, ctx);
    }
    return;
  }
  const std::int64_t B = x.rows(), d = x.cols();
  if (x.dtype() == DType::F32)
    select_cpu(x.data<float>(), e.data<float>(), grad.data<float>(), y.data<float>(), ey.data<float>(),
               gy.data<float>(), log_alpha.data<float>(), log_u.data<float>(), accepted.data<float>(), B, d);
  else
    select_cpu(x.data<double>(), e.data<double>(), grad.data<double>(), y.data<double>(), ey.data<double>(),
               gy.data<double>(), log_alpha.data<double>(), log_u.data<double>(), accepted.data<double>(), B,
               d);
}

}  // namespace nsamp::kernels
