// bench_kernels: time per call of the first kernel families on one device, as JSON lines with the FLOP and
// byte counts that place each call against the roofline (bytes: each input read once, each output written
// once).
//   bench_kernels [--device cpu|cuda|auto] [--reps N]
#include <chrono>
#include <functional>
#include <string>

#include "bench_args.h"
#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/gemm.h"
#include "nsamp/kernels/reduce.h"

using namespace nsamp;

namespace {

void time_op(Context& ctx, bench::Emitter& emit, int reps, const char* op, const std::string& shape,
             double flops, double bytes, const std::function<void()>& f) {
  f();  // warm-up
  ctx.synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  ctx.synchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  emit(bench::format(
      "{\"bench\": \"kernels\", \"op\": \"%s\", \"device\": \"%s\", \"dtype\": \"float32\", \"shape\": "
      "\"%s\", "
      "\"ms\": %.6f, \"gflops\": %.3f, \"gbytes_per_s\": %.3f}",
      op, ctx.device().str().c_str(), shape.c_str(), s * 1e3, flops / s * 1e-9, bytes / s * 1e-9));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_kernels: time per call of the first kernel families, as JSON lines", "bench_kernels"};
  bench::CommonArgs common;
  bench::add_common(app, common);
  int reps = 20;
  bench::add_reps(app, reps, "timed calls per case");
  return bench::run(app, argc, argv, [&] {
    bench::Emitter emit(common);
    Context ctx(parse_device(common.device), 1);
    const bool gpu = ctx.is_cuda();
    const std::int64_t B = gpu ? 65536 : 8192, W = 128;
    Tensor x = Tensor::empty(Shape{B, W}, DType::F32, ctx), y = Tensor::empty(Shape{B, W}, DType::F32, ctx);
    Tensor w = Tensor::empty(Shape{W, W}, DType::F32, ctx), b = Tensor::empty(Shape{W}, DType::F32, ctx);
    Tensor r = Tensor::empty(Shape{B}, DType::F32, ctx), c = Tensor::empty(Shape{W}, DType::F32, ctx);
    fill_normal(x, ctx);
    fill_normal(w, ctx);
    fill_normal(b, ctx);
    const std::string shp = "[" + std::to_string(B) + ", " + std::to_string(W) + "]";
    const double n = double(B) * W, e = 4.0;
    time_op(ctx, emit, reps, "fill_normal", shp, 0, n * e, [&] { fill_normal(x, ctx); });
    time_op(ctx, emit, reps, "add_row_broadcast", shp, n, 2 * n * e, [&] { kernels::add(x, b, y, ctx); });
    time_op(ctx, emit, reps, "gelu_forward", shp, 0, 2 * n * e,
            [&] { kernels::activation_forward(kernels::Activation::GELU, x, y, ctx); });
    time_op(ctx, emit, reps, "gelu_backward", shp, 0, 3 * n * e,
            [&] { kernels::activation_backward(kernels::Activation::GELU, x, x, y, ctx); });
    time_op(ctx, emit, reps, "linear", shp + "x[128,128]", 2.0 * n * W, (2 * n + W * W) * e,
            [&] { kernels::linear(x, w, b, y, ctx); });
    time_op(ctx, emit, reps, "row_logsumexp", shp, 0, (n + B) * e,
            [&] { kernels::row_logsumexp(x, r, ctx); });
    time_op(ctx, emit, reps, "row_softmax", shp, 0, 2 * n * e, [&] { kernels::row_softmax(x, y, ctx); });
    time_op(ctx, emit, reps, "col_sum", shp, n, (n + W) * e, [&] { kernels::col_sum(x, c, ctx); });
  });
}
