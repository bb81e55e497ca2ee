// User energies: how an embedding code plugs its own energy into nsamp so that every sampler uses it exactly
// like a built-in target.
//
// 1. FunctorTarget<F> — a host+device functor compiled into the user's code:
//      struct MyEnergy {
//        template <class T> NSAMP_HD T eval(const T* x, T* g) const;   // E(x) for one sample; g (may be
//        null)
//      };                                                               // receives dE/dx
//    Compiled by nvcc, the target runs one thread per sample on CUDA tensors; compiled by a host compiler
//    alone, it evaluates on the CPU and refuses CUDA tensors with a clear message.
// 2. CallbackTarget — a host callback for CPU-only users, evaluated in float64 on host tensors:
//      void(const double* x, int64_t B, int64_t d, double* e, double* grad_or_null)
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "nsamp/core/config.h"
#include "nsamp/core/hd.h"
#include "nsamp/targets/target.h"

#if defined(__CUDACC__)
#include "nsamp/core/cuda_check.h"
#define NSAMP_FUNCTOR_TARGET_DEVICE true
#else
#define NSAMP_FUNCTOR_TARGET_DEVICE false
#endif

namespace nsamp::targets {

namespace user_detail {
#if defined(__CUDACC__)
template <class T, class F>
__global__ void functor_kernel(F f, const T* __restrict__ x, T* __restrict__ e, T* __restrict__ g,
                               std::int64_t B, std::int64_t d) {
  for (std::int64_t b = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; b < B;
       b += std::int64_t(gridDim.x) * blockDim.x)
    e[b] = f.template eval<T>(x + b * d, g ? g + b * d : nullptr);
}
#endif
}  // namespace user_detail

// kDevice records which compiler built the instantiation, so that a functor used from both a .cpp and a .cu
// file gives two distinct classes instead of one class with two bodies (an ODR violation).
template <class F, bool kDevice = NSAMP_FUNCTOR_TARGET_DEVICE>
class FunctorTarget final : public Target {
  static_assert(kDevice == NSAMP_FUNCTOR_TARGET_DEVICE,
                "FunctorTarget: leave kDevice at its default; it follows the compiler (nvcc or not)");

 public:
  FunctorTarget(std::string name, std::int64_t dim, F f, Particles particles = {})
      : name_(std::move(name)), dim_(dim), f_(f), particles_(particles) {
    NSAMP_CHECK(dim > 0, "FunctorTarget '", name_, "': dimension must be positive, got ", dim);
  }
  std::string name() const override { return name_; }
  std::int64_t dim() const override { return dim_; }
  Particles particles() const override { return particles_; }

 protected:
  void evaluate(const Tensor& x, Tensor& e, Tensor* grad, Context& ctx) const override {
    if (x.device().is_cuda()) {
#if defined(__CUDACC__)
      if (x.dtype() == DType::F32)
        launch<float>(x, e, grad, ctx);
      else
        launch<double>(x, e, grad, ctx);
#else
      (void)ctx;
      NSAMP_FAIL("target ", name_,
                 ": this FunctorTarget was compiled without nvcc, so it evaluates on the CPU only; ",
                 "compile the file that creates it with nvcc for CUDA tensors");
#endif
      return;
    }
    if (x.dtype() == DType::F32)
      cpu<float>(x, e, grad);
    else
      cpu<double>(x, e, grad);
  }

 private:
  template <class T>
  void cpu(const Tensor& x, Tensor& e, Tensor* grad) const {
    const std::int64_t B = x.rows(), d = x.cols();
    const T* px = x.data<T>();
    T* pe = e.data<T>();
    T* pg = grad ? grad->data<T>() : nullptr;
#pragma omp parallel for schedule(static) if (B > 256)
    for (std::int64_t b = 0; b < B; ++b) pe[b] = f_.template eval<T>(px + b * d, pg ? pg + b * d : nullptr);
  }
#if defined(__CUDACC__)
  template <class T>
  void launch(const Tensor& x, Tensor& e, Tensor* grad, Context& ctx) const {
    const std::int64_t B = x.rows();
    const int threads = 256;
    const std::int64_t want = (B + threads - 1) / threads;
    const int blocks = static_cast<int>(want < 65535 * 8 ? want : 65535 * 8);
    user_detail::functor_kernel<T><<<blocks, threads, 0, ctx.stream()>>>(
        f_, x.data<T>(), e.data<T>(), grad ? grad->data<T>() : nullptr, B, x.cols());
    NSAMP_CUDA_CHECK_LAUNCH("target " + name_ + " " + x.desc());
  }
#endif
  std::string name_;
  std::int64_t dim_;
  F f_;
  Particles particles_;
};

class CallbackTarget final : public Target {
 public:
  using Callback =
      std::function<void(const double* x, std::int64_t B, std::int64_t d, double* e, double* grad)>;
  CallbackTarget(std::string name, std::int64_t dim, Callback cb, Particles particles = {});
  std::string name() const override { return name_; }
  std::int64_t dim() const override { return dim_; }
  Particles particles() const override { return particles_; }

 protected:
  void evaluate(const Tensor& x, Tensor& e, Tensor* grad, Context& ctx) const override;

 private:
  std::string name_;
  std::int64_t dim_;
  Callback cb_;
  Particles particles_;
};

}  // namespace nsamp::targets
