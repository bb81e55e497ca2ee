// EGNN family: CUDA launchers of the kernels in egnn_kernels.cuh (their layout is described there).
#include <algorithm>
#include <string>

#include "egnn_kernels.cuh"
#include "nsamp/core/cuda_check.h"

namespace nsamp::kernels::detail {

namespace {

// A block of `threads` must fit the kernel's registers (the float64 backward needs about 170 a thread, so
// wide layers can exceed the 64K registers of a block before they reach 1024 threads). Asked once per kernel.
template <class Kernel>
int max_block(Kernel kernel, const char* op) {
  cudaFuncAttributes attr{};
  NSAMP_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel), std::string(op) + " (kernel attributes)");
  return attr.maxThreadsPerBlock;
}

template <class T>
void launch_backward(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                     const EgnnLayerWeights& w, const Tensor& g_x_out, const Tensor* g_agg, EgnnLayerGrads& g,
                     Context& ctx) {
  const std::int64_t N = x.rows(), B = N / n;
  const int D = int(x.cols()), H = int(hi.cols());
  NSAMP_CHECK(H <= 1024, "egnn_pairs_backward: width ", H, " exceeds the 1024 threads of a block");
  const int threads = egnn_threads(H);
  const std::size_t smem = egnn_backward_smem<T>(H, n, D);
  NSAMP_CHECK(smem <= 48 * 1024, "egnn_pairs_backward: ", n, " particles x width ", H, " need ", smem,
              " bytes of shared memory per block, over 48 KiB");
  const PartialLayout L{H};
  const int grid = int(std::min<std::int64_t>(B, 132 * 2));
  Tensor part = Tensor::zeros(Shape{std::int64_t(grid) * L.size()}, x.dtype(), ctx);
  zero(g.hi, ctx);
  zero(g.hj, ctx);
  auto p = [](const Tensor& t) { return t.defined() ? t.data<T>() : static_cast<const T*>(nullptr); };
  const DevWeights<T> dw{p(w.Wra),   p(w.b1),   p(w.W2),   p(w.b2),  p(w.att_w),
                         p(w.att_b), p(w.c1_w), p(w.c1_b), p(w.c2_w)};
  const DevGrads<T> dg{g.hi.data<T>(), g.hj.data<T>(), g.x.data<T>(), g.x0.data<T>(), part.data<T>()};
  static const int max_threads = max_block(egnn_pairs_backward_kernel<T>, "egnn_pairs_backward");
  NSAMP_CHECK(threads <= max_threads, "egnn_pairs_backward: width ", H, " needs blocks of ", threads,
              " threads; in ", sizeof(T) == 8 ? "float64" : "float32", " this kernel fits at most ",
              max_threads);
  egnn_pairs_backward_kernel<T><<<grid, threads, smem, ctx.stream()>>>(
      hi.data<T>(), hj.data<T>(), x.data<T>(), x0.data<T>(), B, n, D, H, dw, w.act, w.tanh, T(w.coords_range),
      g_x_out.data<T>(), g_agg ? g_agg->data<T>() : nullptr, dg);
  NSAMP_CUDA_CHECK_LAUNCH("egnn_pairs_backward " + x.desc() + " width " + std::to_string(H));
  auto reduce = [&](std::int64_t offset, std::int64_t count, Tensor& out) {
    reduce_partials_kernel<T><<<grid_for(count), kThreads, 0, ctx.stream()>>>(part.data<T>(), grid, L.size(),
                                                                              offset, count, out.data<T>());
    NSAMP_CUDA_CHECK_LAUNCH("egnn_pairs_backward (weight-gradient reduction)");
  };
  reduce(L.W2(), std::int64_t(H) * H, g.W2);
  reduce(L.Wc1(), std::int64_t(H) * H, g.c1_w);
  reduce(L.Wra(), 2 * std::int64_t(H), g.Wra);
  reduce(L.b1(), H, g.b1);
  reduce(L.b2(), H, g.b2);
  reduce(L.bc1(), H, g.c1_b);
  reduce(L.wc2(), H, g.c2_w);
  if (w.att_w.defined()) {
    reduce(L.attw(), H, g.att_w);
    reduce(L.attb(), 1, g.att_b);
  }
}

template <class T>
void launch(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
            const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx) {
  const std::int64_t N = x.rows(), B = N / n;
  const int D = int(x.cols()), H = int(hi.cols());
  NSAMP_CHECK(H <= 1024, "egnn_pairs: width ", H, " exceeds the 1024 threads of a block");
  const int threads = egnn_threads(H);
  const std::size_t smem = egnn_forward_smem<T>(H, n, D);
  NSAMP_CHECK(smem <= 48 * 1024, "egnn_pairs: ", n, " particles x width ", H, " need ", smem,
              " bytes of shared memory per block, over 48 KiB");
  auto p = [](const Tensor& t) { return t.defined() ? t.data<T>() : static_cast<const T*>(nullptr); };
  const DevWeights<T> dw{p(w.Wra),   p(w.b1),   p(w.W2),   p(w.b2),  p(w.att_w),
                         p(w.att_b), p(w.c1_w), p(w.c1_b), p(w.c2_w)};
  const int grid = int(std::min<std::int64_t>(B, 132 * 16));
  static const int max_threads = max_block(egnn_pairs_kernel<T>, "egnn_pairs");
  NSAMP_CHECK(threads <= max_threads, "egnn_pairs: width ", H, " needs blocks of ", threads, " threads; in ",
              sizeof(T) == 8 ? "float64" : "float32", " this kernel fits at most ", max_threads);
  egnn_pairs_kernel<T><<<grid, threads, smem, ctx.stream()>>>(
      hi.data<T>(), hj.data<T>(), x.data<T>(), x0.data<T>(), B, n, D, H, dw, w.act, w.tanh, T(w.coords_range),
      x_out.data<T>(), agg ? agg->data<T>() : nullptr);
  NSAMP_CUDA_CHECK_LAUNCH("egnn_pairs " + x.desc() + " width " + std::to_string(H));
}

}  // namespace

void egnn_pairs_backward_cuda(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                              const EgnnLayerWeights& w, const Tensor& g_x_out, const Tensor* g_agg,
                              EgnnLayerGrads& g, Context& ctx) {
  if (x.dtype() == DType::F32)
    launch_backward<float>(hi, hj, x, x0, n, w, g_x_out, g_agg, g, ctx);
  else
    launch_backward<double>(hi, hj, x, x0, n, w, g_x_out, g_agg, g, ctx);
}

void egnn_pairs_cuda(const Tensor& hi, const Tensor& hj, const Tensor& x, const Tensor& x0, int n,
                     const EgnnLayerWeights& w, Tensor& x_out, Tensor* agg, Context& ctx) {
  if (x.dtype() == DType::F32)
    launch<float>(hi, hj, x, x0, n, w, x_out, agg, ctx);
  else
    launch<double>(hi, hj, x, x0, n, w, x_out, agg, ctx);
}

}  // namespace nsamp::kernels::detail
