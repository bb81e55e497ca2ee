// SDE family: checks, dispatch and the CPU launcher.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "nsamp/core/config.h"
#include "nsamp/core/fill.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/core/philox.h"
#include "nsamp/core/rng_counter.h"
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
              std::uint64_t seed, philox::Offset offset, Tensor& x_next, Tensor& R, const Tensor* cot,
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
  const std::uint64_t off = host_offset(offset, ctx, "sde_step");
  if (x.dtype() == DType::F32)
    sde_step_cpu<float>(x.data<float>(), nn.data<float>(), nt.data<float>(), per_row, grad_e.data<float>(),
                        SdeCoef<float>(k), float(k.constant), seed, off, x_next.data<float>(),
                        R.data<float>(), cot ? cot->data<float>() : nullptr,
                        u_grad ? u_grad->data<float>() : nullptr, B, d);
  else
    sde_step_cpu<double>(x.data<double>(), nn.data<double>(), nt.data<double>(), per_row,
                         grad_e.data<double>(), SdeCoef<double>(k), k.constant, seed, off,
                         x_next.data<double>(), R.data<double>(), cot ? cot->data<double>() : nullptr,
                         u_grad ? u_grad->data<double>() : nullptr, B, d);
}

namespace {

template <class T>
void truncated_normal_rows_cpu(T* x, std::int64_t rows, std::int64_t d, std::uint64_t seed,
                               std::uint64_t offset, std::uint64_t stride, int rounds, T a,
                               std::int64_t repeats, T scale) {
#pragma omp parallel for schedule(static) if (rows * d > (1 << 14))
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < d; ++c)
      x[r * d + c] =
          scale * truncated_normal_element<T>(seed, offset, stride, rounds, a, (r / repeats) * d + c);
}

template <class T>
void log_variance_loss_cpu(const T* R, std::int64_t B, std::int64_t group, double drop, double dim, T* cot,
                           double* stats) {
  std::vector<double> c(std::size_t(B), 0.0);
  double total = 0;
  std::int64_t used = 0, used_groups = 0;
  for (std::int64_t g = 0; g < B / group; ++g) {
    const T* r = R + g * group;
    double mean = 0;
    std::int64_t n = 0;
    for (std::int64_t j = 0; j < group; ++j)
      if (lv_usable(double(r[j]), drop)) mean += double(r[j]), ++n;
    if (n < 2) continue;
    mean /= double(n);
    double var = 0;
    for (std::int64_t j = 0; j < group; ++j) {
      const double v = double(r[j]);
      if (!lv_usable(v, drop)) continue;
      var += (v - mean) * (v - mean);
      c[std::size_t(g * group + j)] = 2.0 * (v - mean) / double(n - 1);
    }
    total += var / double(n - 1);
    used += n;
    ++used_groups;
  }
  const double scale = used_groups ? 1.0 / (double(used_groups) * dim) : 0.0;
  for (std::int64_t i = 0; i < B; ++i) cot[i] = T(c[std::size_t(i)] * scale);
  stats[0] = used_groups ? total * scale : std::numeric_limits<double>::quiet_NaN();
  stats[1] = double(used);
}

}  // namespace

void truncated_normal_rows(Tensor& x, std::uint64_t seed, philox::Offset offset, std::uint64_t round_stride,
                           int rounds, double a, std::int64_t repeats, double scale, Context& ctx) {
  const char* op = "truncated_normal_rows";
  NSAMP_CHECK(x.defined() && x.rank() == 2 && is_floating(x.dtype()), op, ": x must be a float [B, d], got ",
              x.desc());
  check_operands(op, ctx, {{"x", &x}});
  NSAMP_CHECK(repeats >= 1 && x.rows() % repeats == 0, op, ": repeats ", repeats, " must divide the rows of ",
              x.desc());
  NSAMP_CHECK(rounds >= 1 && a > 0, op, ": needs rounds >= 1 and a > 0, got ", rounds, " and ", a);
  NSAMP_CHECK(round_stride >= rng_counters(x.rows() / repeats * x.cols(), x.dtype()), op, ": round_stride ",
              round_stride, " is below the ", rng_counters(x.rows() / repeats * x.cols(), x.dtype()),
              " counters one round draws");
  if (x.numel() == 0) return;
  if (x.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("sde/truncated_normal_rows");
      detail::truncated_normal_rows_cuda(x, seed, offset, round_stride, rounds, a, repeats, scale, ctx);
    }
    return;
  }
  const std::uint64_t off = host_offset(offset, ctx, "truncated_normal_rows");
  if (x.dtype() == DType::F32)
    truncated_normal_rows_cpu<float>(x.data<float>(), x.rows(), x.cols(), seed, off, round_stride, rounds,
                                     float(a), repeats, float(scale));
  else
    truncated_normal_rows_cpu<double>(x.data<double>(), x.rows(), x.cols(), seed, off, round_stride, rounds,
                                      a, repeats, scale);
}

void log_variance_loss(const Tensor& R, std::int64_t group, double drop, double dim, Tensor& cot,
                       Tensor& stats, Context& ctx) {
  const char* op = "log_variance_loss";
  NSAMP_CHECK(R.defined() && is_floating(R.dtype()) && R.numel() >= 1, op, ": R must be a float [B], got ",
              R.desc());
  const std::int64_t B = R.numel();
  NSAMP_CHECK(group >= 2 && B % group == 0, op, ": group ", group, " must be at least 2 and divide ", B);
  NSAMP_CHECK(dim > 0, op, ": dim must be positive, got ", dim);
  check_operands(op, ctx, {{"cot", &cot}, {"R", &R}});
  check_shape(op, cot, "cot", Shape{B});
  NSAMP_CHECK(stats.defined() && stats.dtype() == DType::F64 && stats.numel() == 2, op,
              ": stats must be float64 [2], got ", stats.desc());
  NSAMP_CHECK(stats.device() == R.device() && !stats.same_storage(cot) && !stats.same_storage(R), op,
              ": stats ", stats.desc(), " must be a buffer of its own on R's device");
  check_on_context(op, stats, ctx);
  if (R.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("sde/log_variance_loss");
      detail::log_variance_loss_cuda(R, group, drop, dim, cot, stats, ctx);
    }
    return;
  }
  if (R.dtype() == DType::F32)
    log_variance_loss_cpu<float>(R.data<float>(), B, group, drop, dim, cot.data<float>(),
                                 stats.data<double>());
  else
    log_variance_loss_cpu<double>(R.data<double>(), B, group, drop, dim, cot.data<double>(),
                                  stats.data<double>());
}

void kl_path_loss(const Tensor& R, double dim, Tensor& cot, Tensor& stats, Context& ctx) {
  const char* op = "kl_path_loss";
  NSAMP_CHECK(R.defined() && is_floating(R.dtype()) && R.numel() >= 1, op, ": R must be a float [B], got ",
              R.defined() ? R.desc() : "undefined");
  NSAMP_CHECK(dim > 0, op, ": dim must be positive, got ", dim);
  const std::int64_t B = R.numel();
  check_operands(op, ctx, {{"cot", &cot}, {"R", &R}});
  check_shape(op, cot, "cot", R.shape());
  NSAMP_CHECK(!stats.defined() || !stats.same_storage(cot), op, ": stats must be a buffer of its own");
  check_f64(op, stats, "stats", 2, R, ctx);
  if (R.device().is_cuda()) {
    if constexpr (kCudaBuilt) {
      NSAMP_RANGE("sde/kl_path_loss");
      detail::kl_path_loss_cuda(R, dim, cot, stats, ctx);
    }
    return;
  }
  auto run = [&](const auto* r, auto* c) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(r)>>;
    double total = 0;
    std::int64_t n = 0;
    for (std::int64_t i = 0; i < B; ++i)
      if (std::isfinite(double(r[i]))) total += double(r[i]), ++n;
    const double w = n > 0 ? 1.0 / (double(n) * dim) : 0.0;
    for (std::int64_t i = 0; i < B; ++i) c[i] = std::isfinite(double(r[i])) ? T(w) : T(0);
    double* st = stats.data<double>();
    st[0] = n > 0 ? total * w : std::numeric_limits<double>::quiet_NaN();
    st[1] = double(n);
  };
  if (R.dtype() == DType::F32)
    run(R.data<float>(), cot.data<float>());
  else
    run(R.data<double>(), cot.data<double>());
}

}  // namespace nsamp::kernels
