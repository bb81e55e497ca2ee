// Optimiser family: the CUDA kernels (device code only), included by optim_cuda.cu, which launches them, and
// by tests/test_optim_emulated.cpp, which runs them on the CPU under tests/emu/cuda_emulation.h against the
// CPU twin. One grid-stride pass over parameter, gradient and state running optim.h's element math (the
// scalars computed once: on the host, or by a one-thread kernel from the device-side state).
#pragma once

#include <cstdint>

#include "launch_cuda.cuh"
#include "nsamp/kernels/optim.h"

namespace nsamp::kernels::detail {

namespace {

template <class T>
__device__ __forceinline__ void adam_pass(T* __restrict__ param, const T* __restrict__ grad,
                                          T* __restrict__ m, T* __restrict__ v, const AdamCoeffs<T>& k,
                                          std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) {
    T p = param[i], mi = m[i], vi = v[i];
    adam_element(p, grad[i], mi, vi, k);
    param[i] = p;
    m[i] = mi;
    v[i] = vi;
  }
}

template <class T>
__global__ void adam_kernel(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                            T* __restrict__ v, AdamCoeffs<T> k, std::int64_t n) {
  adam_pass(param, grad, m, v, k, n);
}

template <class T>
__global__ void adam_state_kernel(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                                  T* __restrict__ v, const double* __restrict__ st, std::int64_t n) {
  if (st[kAdamApply] == 0) return;
  adam_pass(param, grad, m, v, adam_coeffs_from_state<T>(st), n);
}

__global__ void adam_prepare_kernel(const float* sq32, std::int64_t n32, const double* sq64, std::int64_t n64,
                                    const float* loss32, const double* loss64, double loss_value, AdamHyper h,
                                    double* st) {
  adam_prepare_element(sq32, n32, sq64, n64, loss64 ? *loss64 : loss32 ? double(*loss32) : loss_value, h, st);
}

template <class T>
__global__ void ema_kernel(T* ema, const T* param, T decay, T one_minus_decay, std::int64_t n) {
  NSAMP_GRID_STRIDE(i, n) ema[i] = ema_element(ema[i], param[i], decay, one_minus_decay);
}

}  // namespace

}  // namespace nsamp::kernels::detail
