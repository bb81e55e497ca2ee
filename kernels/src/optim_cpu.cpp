// Optimiser family: checks, dispatch and CPU launchers (OpenMP loops over optim.h's element math).
#include <cmath>
#include <string>
#include <type_traits>

#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/operands.h"
#include "nsamp/kernels/optim.h"

namespace nsamp::kernels {

namespace {

constexpr std::int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save

// Fused updates write several tensors: none of the tensors may share memory with another, even exactly.
void check_disjoint(const char* op, const Tensor& a, const char* a_name, const Tensor& b,
                    const char* b_name) {
  if (!a.same_storage(b) || a.numel() == 0 || b.numel() == 0) return;
  const std::int64_t a0 = a.storage_offset(), a1 = a0 + a.numel();
  const std::int64_t b0 = b.storage_offset(), b1 = b0 + b.numel();
  NSAMP_CHECK(a1 <= b0 || b1 <= a0, op, ": ", a_name, " ", a.desc(), " and ", b_name, " ", b.desc(),
              " share memory; every tensor of the update must be distinct");
}

}  // namespace

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamStep& s, Context& ctx) {
  const char* op = "adam_update";
  check_operands(op, ctx, {{"param", &param}, {"grad", &grad}, {"m", &m}, {"v", &v}});
  check_shape(op, grad, "grad", param.shape());
  check_shape(op, m, "m", param.shape());
  check_shape(op, v, "v", param.shape());
  check_disjoint(op, param, "param", grad, "grad");
  check_disjoint(op, param, "param", m, "m");
  check_disjoint(op, param, "param", v, "v");
  check_disjoint(op, grad, "grad", m, "m");
  check_disjoint(op, grad, "grad", v, "v");
  check_disjoint(op, m, "m", v, "v");
  NSAMP_CHECK(s.step >= 1, op, ": step must be >= 1 (1-based), got ", s.step, " for param ", param.desc());
  NSAMP_CHECK(s.lr >= 0 && std::isfinite(s.lr), op, ": invalid learning rate ", s.lr);
  NSAMP_CHECK(s.beta1 >= 0 && s.beta1 < 1, op, ": beta1 must be in [0, 1), got ", s.beta1);
  NSAMP_CHECK(s.beta2 >= 0 && s.beta2 < 1, op, ": beta2 must be in [0, 1), got ", s.beta2);
  NSAMP_CHECK(s.eps >= 0 && std::isfinite(s.eps), op, ": eps must be finite and >= 0, got ", s.eps);
  NSAMP_CHECK(s.weight_decay >= 0 && std::isfinite(s.weight_decay), op,
              ": weight_decay must be finite and >= 0, got ", s.weight_decay);
  NSAMP_CHECK(std::isfinite(s.grad_scale), op, ": grad_scale must be finite, got ", s.grad_scale,
              " (skip the step when the gradient norm is not finite)");
  if (param.numel() == 0) return;
  if (param.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("optim/adam_update");
      detail::adam_update_cuda(param, grad, m, v, s, ctx);
    }
    return;
  }
  auto run = [&](auto* p, const auto* g, auto* pm, auto* pv) {
    using T = std::remove_pointer_t<decltype(p)>;
    const AdamCoeffs<T> k = adam_coeffs<T>(s);
    const std::int64_t n = param.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (std::int64_t i = 0; i < n; ++i) adam_element(p[i], g[i], pm[i], pv[i], k);
  };
  if (param.dtype() == DType::F32)
    run(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>());
  else
    run(param.data<double>(), grad.data<double>(), m.data<double>(), v.data<double>());
}

void ema_update(Tensor& ema, const Tensor& param, double decay, Context& ctx) {
  const char* op = "ema_update";
  check_operands(op, ctx, {{"ema", &ema}, {"param", &param}});
  check_shape(op, param, "param", ema.shape());
  NSAMP_CHECK(decay >= 0 && decay <= 1, op, ": decay must be in [0, 1], got ", decay, " for ema ",
              ema.desc());
  if (ema.numel() == 0) return;
  if (ema.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("optim/ema_update");
      detail::ema_update_cuda(ema, param, decay, ctx);
    }
    return;
  }
  auto run = [&](auto* e, const auto* p) {
    using T = std::remove_pointer_t<decltype(e)>;
    const T d = static_cast<T>(decay), omd = static_cast<T>(1.0 - decay);
    const std::int64_t n = ema.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (std::int64_t i = 0; i < n; ++i) e[i] = ema_element(e[i], p[i], d, omd);
  };
  if (ema.dtype() == DType::F32)
    run(ema.data<float>(), param.data<float>());
  else
    run(ema.data<double>(), param.data<double>());
}

}  // namespace nsamp::kernels
