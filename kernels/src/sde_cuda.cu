// SDE family: CUDA launcher. One warp per path: each lane draws the Philox normals of its elements (the
// same counters as fill_normal_at, one block per element: Philox is cheap next to the memory traffic), and
// the row's dR is a shuffle reduction, added by lane 0.
#include "launch_cuda.cuh"
#include "nsamp/core/cuda_check.h"
#include "nsamp/core/philox.h"
#include "nsamp/kernels/sde.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__global__ void sde_step_kernel(const T* x, const T* __restrict__ nn, const T* __restrict__ nt,
                                bool nt_per_row, const T* __restrict__ g, SdeCoef<T> k, T constant,
                                std::uint64_t seed, std::uint64_t offset, T* xn, T* __restrict__ R,
                                const T* __restrict__ cot, T* __restrict__ ug, std::int64_t B,
                                std::int64_t d) {
  constexpr int kPer = philox::values_per_counter<T>();
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t b = blockIdx.x * std::int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); b < B; b += warps) {
    const T ntb = nt[nt_per_row ? b : 0];
    const T cb = ug ? cot[b] : T(0);
    T dr = 0;
    for (std::int64_t j = lane; j < d; j += 32) {
      const std::int64_t i = b * d + j;
      T block[kPer];
      philox::normal_block(seed, offset + std::uint64_t(i / kPer), block);
      T w;
      dr += sde_element(x[i], nn[i], ntb, g[i], block[i % kPer], k, &xn[i], &w);
      if (ug) ug[i] = cb * w;
    }
    for (int m = 16; m > 0; m >>= 1) dr += __shfl_xor_sync(0xffffffffu, dr, m);
    if (lane == 0) R[b] += dr + constant;
  }
}

template <class T>
void launch(const Tensor& x, const Tensor& nn, const Tensor& nt, const Tensor& g, const SdeStepCoef& k,
            std::uint64_t seed, std::uint64_t offset, Tensor& xn, Tensor& R, const Tensor* cot, Tensor* ug,
            Context& ctx) {
  const std::int64_t B = x.rows(), d = x.cols();
  sde_step_kernel<T><<<grid_for(B * 32), kThreads, 0, ctx.stream()>>>(
      x.data<T>(), nn.data<T>(), nt.data<T>(), nt.numel() == B && B > 1, g.data<T>(), SdeCoef<T>(k),
      T(k.constant), seed, offset, xn.data<T>(), R.data<T>(), cot ? cot->data<T>() : nullptr,
      ug ? ug->data<T>() : nullptr, B, d);
}

}  // namespace

void sde_step_cuda(const Tensor& x, const Tensor& nn, const Tensor& nt, const Tensor& grad_e,
                   const SdeStepCoef& k, std::uint64_t seed, std::uint64_t offset, Tensor& x_next, Tensor& R,
                   const Tensor* cot, Tensor* u_grad, Context& ctx) {
  if (x.dtype() == DType::F32)
    launch<float>(x, nn, nt, grad_e, k, seed, offset, x_next, R, cot, u_grad, ctx);
  else
    launch<double>(x, nn, nt, grad_e, k, seed, offset, x_next, R, cot, u_grad, ctx);
  NSAMP_CUDA_CHECK_LAUNCH("sde_step " + x.desc());
}

}  // namespace nsamp::kernels::detail
