// Elementwise family: the CUDA kernels (device code only), included by elementwise_cuda.cu, which launches
// them, and by tests/test_elementwise_emulated.cpp, which runs them on the CPU under
// tests/emu/cuda_emulation.h against the CPU twin. The op and the activation are template parameters, so each
// kernel is a straight-line grid-stride loop over elementwise.h's element math.
#pragma once

#include <cstdint>

#include "launch_cuda.cuh"
#include "nsamp/kernels/elementwise.h"

namespace nsamp::kernels::detail {

namespace {

template <BinaryOp Op, class T>
__global__ void binary_kernel(const T* a, BroadcastStrides sa, const T* b, BroadcastStrides sb, T* out,
                              std::int64_t n, std::int64_t C) {
  NSAMP_GRID_STRIDE(i, n) {
    const std::int64_t r = i / C, c = i - r * C;
    out[i] = binary_apply(Op, a[r * sa.row + c * sa.col], b[r * sb.row + c * sb.col]);
  }
}

template <class T>
__global__ void affine_kernel(const T* a, T alpha, T beta, T* out, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) out[i] = alpha * a[i] + beta;
}

template <Activation Act, class T>
__global__ void act_forward_kernel(const T* x, T* y, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) y[i] = activation_forward(Act, x[i]);
}

template <Activation Act, class T>
__global__ void act_backward_kernel(const T* x, const T* gy, T* gx, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) gx[i] = gy[i] * activation_derivative(Act, x[i]);
}

template <UnaryOp Op, class T>
__global__ void unary_forward_kernel(const T* x, T* y, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) y[i] = unary_forward(Op, x[i]);
}

template <UnaryOp Op, class T>
__global__ void unary_backward_kernel(const T* x, const T* gy, T* gx, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) gx[i] = gy[i] * unary_derivative(Op, x[i]);
}

template <class T>
__global__ void clamp_forward_kernel(const T* x, T lo, T hi, T* y, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) y[i] = clamp_value(x[i], lo, hi);
}

template <class T>
__global__ void clamp_backward_kernel(const T* x, T lo, T hi, const T* gy, T* gx, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) gx[i] = clamp_grad(x[i], lo, hi, gy[i]);
}

template <class T>
__global__ void broadcast_kernel(const T* src, BroadcastStrides s, T alpha, T* out, std::int64_t n,
                                 std::int64_t C) {
  NSAMP_GRID_STRIDE(i, n) {
    const std::int64_t r = i / C, c = i - r * C;
    out[i] = alpha * src[r * s.row + c * s.col];
  }
}

// z += bias (row broadcast), a = act(z), one read and two writes per element. `a` may be `z` (identity).
template <Activation Act, class T>
__global__ void bias_act_kernel(const T* bias, T* z, T* a, std::int64_t n, std::int64_t C) {
  NSAMP_GRID_STRIDE(i, n) {
    const T v = z[i] + bias[i % C];
    z[i] = v;
    a[i] = activation_forward(Act, v);
  }
}

}  // namespace

}  // namespace nsamp::kernels::detail
