// SDE family: checks, dispatch and the CPU launcher.
#include "nsamp/core/config.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/core/philox.h"
#include "nsamp/kernels/operands.h"
#include "nsamp/kernels/sde.h"

namespace nsamp::kernels {

namespace {

template <class T>
void sde_step_cpu(const T* x, const T* nn, const T* nt, bool nt_per_row, const T* g, const SdeCoef<T>& k,
                  T constant, std::uint64_t seed, std::uint64_t offset, T* xn, T* R, const T* cot, T* ug,
                  std::int64_t B, std::int64_t d) {
  constexpr int kPer = philox::values_per_counter<T>();
#pragma omp parallel for schedule(static) if (B * d > (1 << 14))
  for (std::int64_t b = 0; b < B; ++b) {
    const T ntb = nt[nt_per_row ? b : 0];
    T block[kPer];
    std::int64_t cached = -1;
    T dr = 0;
    for (std::int64_t j = 0; j < d; ++j) {
      const std::int64_t i = b * d + j;
      if (i / kPer != cached) {  // one Philox block serves kPer consecutive elements, as in fill_normal_at
        cached = i / kPer;
        philox::normal_block(seed, offset + std::uint64_t(cached), block);
      }
      T w;
      dr += sde_element(x[i], nn[i], ntb, g[i], block[i % kPer], k, &xn[i], &w);
      if (ug) ug[i] = cot[b] * w;
    }
    R[b] += dr + constant;
  }
}

}  // namespace

void sde_step(const Tensor& x, const Tensor& nn, const Tensor& nt, const Tensor& grad_e, const SdeStepCoef& k,
              std::uint64_t seed, std::uint64_t offset, Tensor& x_next, Tensor& R, const Tensor* cot,
              Tensor* u_grad, Context& ctx) {
  const char* op = "sde_step";
  NSAMP_CHECK(x.defined() && x.rank() == 2, op, ": x must be [B, d], got ", x.desc());
  const std::int64_t B = x.rows(), d = x.cols();
  // Each element is read before it is written by the same thread, so x_next may alias x exactly.
  check_operands(op, ctx, {{"x_next", &x_next}, {"x", &x}, {"nn", &nn}, {"grad_e", &grad_e}});
  check_operands(op, ctx, {{"R", &R}, {"nt", &nt}, {"x", &x}});
  NSAMP_CHECK(!R.same_storage(x_next) && !R.same_storage(nt), op, ": R must be a buffer of its own");
  check_shape(op, x_next, "x_next", x.shape());
  check_shape(op, nn, "nn", x.shape());
  check_shape(op, grad_e, "grad_e", x.shape());
  NSAMP_CHECK(R.numel() == B, op, ": R must hold one value per path (", B, "), got ", R.desc());
  NSAMP_CHECK(nt.numel() == 1 || nt.numel() == B, op, ": nt must hold 1 or ", B, " values, got ", nt.desc());
  NSAMP_CHECK((cot == nullptr) == (u_grad == nullptr), op, ": cot and u_grad come together");
  if (cot) {
    check_operands(op, ctx, {{"u_grad", u_grad}, {"x", &x}});
    check_operands(op, ctx, {{"cot", cot}, {"x", &x}});
    check_shape(op, *u_grad, "u_grad", x.shape());
    NSAMP_CHECK(cot->numel() == B, op, ": cot must hold one value per path (", B, "), got ", cot->desc());
  }
  NSAMP_CHECK(k.h >= 0 && k.clip > 0, op, ": needs h >= 0 and clip > 0, got h = ", k.h, ", clip = ", k.clip);
  if (B == 0) return;
  if (x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("sde/sde_step");
      detail::sde_step_cuda(x, nn, nt, grad_e, k, seed, offset, x_next, R, cot, u_grad, ctx);
    }
    return;
  }
  const bool per_row = nt.numel() == B && B > 1;
  if (x.dtype() == DType::F32)
    sde_step_cpu<float>(x.data<float>(), nn.data<float>(), nt.data<float>(), per_row, grad_e.data<float>(),
                        SdeCoef<float>(k), float(k.constant), seed, offset, x_next.data<float>(),
                        R.data<float>(), cot ? cot->data<float>() : nullptr,
                        u_grad ? u_grad->data<float>() : nullptr, B, d);
  else
    sde_step_cpu<double>(x.data<double>(), nn.data<double>(), nt.data<double>(), per_row,
                         grad_e.data<double>(), SdeCoef<double>(k), k.constant, seed, offset,
                         x_next.data<double>(), R.data<double>(), cot ? cot->data<double>() : nullptr,
                         u_grad ? u_grad->data<double>() : nullptr, B, d);
}

}  // namespace nsamp::kernels
