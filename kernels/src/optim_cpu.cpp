// Optimiser family: checks, dispatch and CPU launchers (OpenMP loops over optim.h's element math).
#include <cmath>
#include <string>
#include <type_traits>

#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/kernels/operands.h"
#include "nsamp/kernels/optim.h"
#include "parallel_cpu.h"

namespace nsamp::kernels {

namespace {

using detail::kParallelMin;

// Fused updates write several tensors: none of the tensors may share memory with another, even exactly.
void check_disjoint(const char* op, const Tensor& a, const char* a_name, const Tensor& b,
                    const char* b_name) {
  if (!a.same_storage(b) || a.numel() == 0 || b.numel() == 0) return;
  const std::int64_t a0 = a.storage_offset(), a1 = a0 + a.numel();
  const std::int64_t b0 = b.storage_offset(), b1 = b0 + b.numel();
  NSAMP_CHECK(a1 <= b0 || b1 <= a0, op, ": ", a_name, " ", a.desc(), " and ", b_name, " ", b.desc(),
              " share memory; every tensor of the update must be distinct");
}

void check_update(const char* op, Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Context& ctx) {
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
}

void check_state(const char* op, const Tensor& state, const Tensor& like, Context& ctx) {
  NSAMP_CHECK(state.defined() && state.dtype() == DType::F64 && state.numel() == kAdamStateSize, op,
              ": state must be float64 with ", int(kAdamStateSize), " elements, got ", state.desc());
  NSAMP_CHECK(state.device() == like.device(), op, ": state ", state.desc(), " is not on ", like.desc(),
              "'s device");
  check_on_context(op, state, ctx);
}

// The CPU update, with the step's coefficients in both precisions.
void adam_cpu(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamCoeffs<float>& kf,
              const AdamCoeffs<double>& kd) {
  auto run = [&](auto* p, const auto* g, auto* pm, auto* pv, const auto& k) {
    const std::int64_t n = param.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (std::int64_t i = 0; i < n; ++i) adam_element(p[i], g[i], pm[i], pv[i], k);
  };
  if (param.dtype() == DType::F32)
    run(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), kf);
  else
    run(param.data<double>(), grad.data<double>(), m.data<double>(), v.data<double>(), kd);
}

}  // namespace

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamStep& s, Context& ctx) {
  const char* op = "adam_update";
  check_update(op, param, grad, m, v, ctx);
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
  adam_cpu(param, grad, m, v, adam_coeffs<float>(s), adam_coeffs<double>(s));
}

void adam_prepare(const Tensor* sq32, const Tensor* sq64, const Tensor* loss, double loss_value,
                  const AdamHyper& h, Tensor& state, Context& ctx) {
  const char* op = "adam_prepare";
  NSAMP_CHECK(!sq32 || sq32->dtype() == DType::F32, op, ": sq32 must be float32, got ", sq32->desc());
  NSAMP_CHECK(!sq64 || sq64->dtype() == DType::F64, op, ": sq64 must be float64, got ", sq64->desc());
  NSAMP_CHECK(!loss || (is_floating(loss->dtype()) && loss->numel() == 1), op,
              ": the loss must be one float value, got ", loss->desc());
  check_state(op, state, state, ctx);
  for (const Tensor* t : {sq32, sq64, loss})
    if (t) {
      NSAMP_CHECK(t->device() == state.device(), op, ": ", t->desc(), " is not on the state's device");
      check_on_context(op, *t, ctx);
    }
  if (state.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("optim/adam_prepare");
      detail::adam_prepare_cuda(sq32, sq64, loss, loss_value, h, state, ctx);
    }
    return;
  }
  adam_prepare_element(sq32 ? sq32->data<float>() : nullptr, sq32 ? sq32->numel() : 0,
                       sq64 ? sq64->data<double>() : nullptr, sq64 ? sq64->numel() : 0,
                       !loss                         ? loss_value
                       : loss->dtype() == DType::F64 ? *loss->data<double>()
                                                     : double(*loss->data<float>()),
                       h, state.data<double>());
}

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const Tensor& state, Context& ctx) {
  const char* op = "adam_update";
  check_update(op, param, grad, m, v, ctx);
  check_state(op, state, param, ctx);
  if (param.numel() == 0) return;
  if (param.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("optim/adam_update");
      detail::adam_update_state_cuda(param, grad, m, v, state, ctx);
    }
    return;
  }
  const double* st = state.data<double>();
  if (st[kAdamApply] == 0) return;
  adam_cpu(param, grad, m, v, adam_coeffs_from_state<float>(st), adam_coeffs_from_state<double>(st));
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
