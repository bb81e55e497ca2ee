#include "smoke.h"

#include <chrono>
#include <cmath>
#include <vector>

#include "nsamp/core/fill.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/gemm.h"
#include "nsamp/kernels/reduce.h"

namespace nsamp::apps {

SmokeResult run_smoke(Device device, std::ostream& log) {
  constexpr std::int64_t kB = 4096, kIn = 64, kOut = 128;
  Context ctx(device, /*seed=*/20261123);
  Tensor x = Tensor::empty(Shape{kB, kIn}, DType::F32, ctx);
  Tensor w = Tensor::empty(Shape{kOut, kIn}, DType::F32, ctx);
  Tensor b = Tensor::empty(Shape{kOut}, DType::F32, ctx);
  fill_normal(x, ctx);
  fill_normal(w, ctx, 0.0, 1.0 / std::sqrt(double(kIn)));
  fill_uniform(b, ctx, -0.5, 0.5);
  Tensor y = Tensor::empty(Shape{kB, kOut}, DType::F32, ctx);
  Tensor lse = Tensor::empty(Shape{kB}, DType::F32, ctx);

  auto step = [&] {
    kernels::linear(x, w, b, y, ctx);
    kernels::activation_forward(kernels::Activation::GELU, y, y, ctx);
    kernels::row_logsumexp(y, lse, ctx);
  };
  step();  // warm-up: handles, caches
  ctx.synchronize();
  constexpr int kReps = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kReps; ++i) step();
  ctx.synchronize();
  const auto t1 = std::chrono::steady_clock::now();

  SmokeResult res;
  res.milliseconds = std::chrono::duration<double, std::milli>(t1 - t0).count() / kReps;
  const std::vector<float> hx = x.to_vector<float>(ctx), hw = w.to_vector<float>(ctx),
                           hb = b.to_vector<float>(ctx);
  const std::vector<float> got = lse.to_vector<float>(ctx);
  std::vector<double> row(kOut);
  for (std::int64_t i = 0; i < kB; ++i) {
    double m = -INFINITY;
    for (std::int64_t o = 0; o < kOut; ++o) {
      double acc = hb[o];
      for (std::int64_t k = 0; k < kIn; ++k) acc += double(hx[i * kIn + k]) * hw[o * kIn + k];
      row[o] = 0.5 * acc * (1.0 + std::erf(acc / std::sqrt(2.0)));
      m = std::max(m, row[o]);
    }
    double s = 0;
    for (double v : row) s += std::exp(v - m);
    const double ref = m + std::log(s);
    res.max_rel_error = std::max(res.max_rel_error, std::abs(got[i] - ref) / std::max(1.0, std::abs(ref)));
    res.checksum += got[i] / double(kB);
  }
  res.passed = std::isfinite(res.checksum) && res.max_rel_error < 1e-5;
  log << "smoke on " << device.str() << ": y = gelu(x W^T + b), x [" << kB << ", " << kIn << "], W [" << kOut
      << ", " << kIn << "], then row log-sum-exp\n"
      << "  time per pass " << res.milliseconds << " ms, mean log-sum-exp " << res.checksum
      << ", max relative error vs float64 " << res.max_rel_error << (res.passed ? "  [ok]" : "  [FAILED]")
      << "\n";
  return res;
}

}  // namespace nsamp::apps
