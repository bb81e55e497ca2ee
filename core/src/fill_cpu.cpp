// Fills: argument checks, backend dispatch and the CPU launchers.
#include "nsamp/core/config.h"
#include "nsamp/core/fill.h"
#include "nsamp/core/nvtx.h"
#include "nsamp/core/philox.h"
#include "nsamp/core/rng_counter.h"

namespace nsamp {

namespace {

template <class T>
void random_cpu(T* out, std::int64_t n, detail::FillKind kind, std::uint64_t seed, std::uint64_t offset, T a,
                T b) {
  constexpr int kPer = philox::values_per_counter<T>();
  const std::int64_t blocks = (n + kPer - 1) / kPer;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (std::int64_t k = 0; k < blocks; ++k) {
    T v[kPer];
    if (kind == detail::FillKind::Uniform)
      philox::uniform_block(seed, offset + static_cast<std::uint64_t>(k), v);
    else
      philox::normal_block(seed, offset + static_cast<std::uint64_t>(k), v);
    for (int j = 0; j < kPer && k * kPer + j < n; ++j) out[k * kPer + j] = hd::mul_add_rn(a, v[j], b);
  }
}

void check_float_fill(const char* op, const Tensor& t) {
  check_defined(op, t, "t");
  NSAMP_CHECK(is_floating(t.dtype()), op, ": needs a float32 or float64 tensor, got ", t.desc());
}

void fill_random(Tensor& t, detail::FillKind kind, std::uint64_t seed, philox::Offset offset, double a,
                 double b, Context& ctx, const char* op) {
  check_float_fill(op, t);
  if (t.numel() == 0) return;
  if (t.device().is_cpu()) {
    detail::fill_random_cpu(t, kind, seed, host_offset(offset, ctx, op), a, b);
    return;
  }
  check_on_context(op, t, ctx);
  if constexpr (kCudaBuilt) {
    NSAMP_RANGE("fill/random");
    detail::fill_random_cuda(t, kind, seed, offset, a, b, ctx);
  }
}

}  // namespace

std::uint64_t rng_counters(std::int64_t numel, DType dtype) {
  const std::int64_t per = dtype == DType::F32 ? 4 : 2;
  return static_cast<std::uint64_t>((numel + per - 1) / per);
}

void detail::fill_random_cpu(Tensor& t, FillKind kind, std::uint64_t seed, std::uint64_t offset, double a,
                             double b) {
  if (t.dtype() == DType::F32)
    random_cpu<float>(t.data<float>(), t.numel(), kind, seed, offset, static_cast<float>(a),
                      static_cast<float>(b));
  else
    random_cpu<double>(t.data<double>(), t.numel(), kind, seed, offset, a, b);
}

void fill_constant(Tensor& t, double value, Context& ctx) {
  check_float_fill("fill_constant", t);
  if (t.numel() == 0) return;
  if (t.device().is_cpu()) {
    const std::int64_t n = t.numel();
    if (t.dtype() == DType::F32) {
      float* p = t.data<float>();
      const float v = static_cast<float>(value);
      for (std::int64_t i = 0; i < n; ++i) p[i] = v;
    } else {
      double* p = t.data<double>();
      for (std::int64_t i = 0; i < n; ++i) p[i] = value;
    }
    return;
  }
  check_on_context("fill_constant", t, ctx);
  if constexpr (kCudaBuilt) {
    NSAMP_RANGE("fill/constant");
    detail::fill_constant_cuda(t, value, ctx);
  }
}

void fill_uniform(Tensor& t, Context& ctx, double low, double high) {
  check_float_fill("fill_uniform", t);
  check_on_context("fill_uniform", t, ctx);
  NSAMP_CHECK(low <= high, "fill_uniform: low ", low, " > high ", high);
  fill_uniform_at(t, ctx.seed(), ctx.draw_rng(rng_counters(t.numel(), t.dtype())), ctx, low, high);
}

void fill_normal(Tensor& t, Context& ctx, double mean, double stddev) {
  check_float_fill("fill_normal", t);
  check_on_context("fill_normal", t, ctx);
  NSAMP_CHECK(stddev >= 0, "fill_normal: negative standard deviation ", stddev);
  fill_normal_at(t, ctx.seed(), ctx.draw_rng(rng_counters(t.numel(), t.dtype())), ctx, mean, stddev);
}

void fill_uniform_at(Tensor& t, std::uint64_t seed, philox::Offset offset, Context& ctx, double low,
                     double high) {
  NSAMP_CHECK(low <= high, "fill_uniform: low ", low, " > high ", high);
  fill_random(t, detail::FillKind::Uniform, seed, offset, high - low, low, ctx, "fill_uniform");
}

void fill_normal_at(Tensor& t, std::uint64_t seed, philox::Offset offset, Context& ctx, double mean,
                    double stddev) {
  NSAMP_CHECK(stddev >= 0, "fill_normal: negative standard deviation ", stddev);
  fill_random(t, detail::FillKind::Normal, seed, offset, stddev, mean, ctx, "fill_normal");
}

}  // namespace nsamp
