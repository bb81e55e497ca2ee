// User energies: how an embedding code plugs its own energy into nsamp so that every sampler uses it exactly
// like a built-in target.
//
// 1. FunctorTarget<F> — a host+device functor compiled into the user's code:
//      struct MyEnergy {
//        template <class T> NSAMP_HD T eval(const T* x, T* g) const;   // E(x) for one sample; g (may be
//        null)
//      };                                                               // receives dE/dx
//    Compiled by nvcc, the target runs one thread per sample on CUDA tensors; compiled by a host compiler
//    alone, it evaluates on the CPU and refuses CUDA tensors with a clear message. MALA chains (reference
//    sets, DiKL's posterior) run one fused pass per chain and step on it, as on the built-in targets.
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
// The user's templated eval as the element functor of kernels::mala_fused_row.
template <class T, class F>
struct Bound {
  F f;
  NSAMP_HD T eval(const T* x, T* g) const { return f.template eval<T>(x, g); }
};
#if defined(__CUDACC__)
template <class T, class F>
__global__ void functor_mala_kernel(Bound<T, F> f, kernels::TiltView<T> tilt, kernels::MalaDraws r,
                                    kernels::StepSize st, T* x, T* e, T* g, T* y, T* gy, T* acc,
                                    std::int64_t B, std::int64_t d) {
  const T step = st.get<T>();
  for (std::int64_t b = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; b < B;
       b += std::int64_t(gridDim.x) * blockDim.x)
    kernels::mala_fused_row(f, tilt, r, b, d, step, x + b * d, g + b * d, e + b, y + b * d, gy + b * d,
                            acc + b);
}
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
    check_particles("FunctorTarget '" + name_ + "'", dim, particles);
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
  // The Monte Carlo noisy score fused per point, on the backends evaluate() serves.
  bool fused_mc_score(const McScoreArgs& a, Context& ctx) const override {
    if (a.x.dtype() == DType::F32) return mc_score<float>(a, ctx);
    return mc_score<double>(a, ctx);
  }
  // MALA steps fused per chain (one thread each), on the backends evaluate() serves.
  bool fused_mala(const MalaStepArgs& m, Context& ctx) const override {
    if (m.x.device().is_cuda()) {
#if defined(__CUDACC__)
      if (m.x.dtype() == DType::F32)
        mala<float>(m, ctx);
      else
        mala<double>(m, ctx);
      return true;
#else
      return false;  // evaluate() names the problem
#endif
    }
    if (m.x.dtype() == DType::F32)
      mala<float>(m, ctx);
    else
      mala<double>(m, ctx);
    return true;
  }

 private:
  template <class T>
  bool mc_score(const McScoreArgs& a, [[maybe_unused]] Context& ctx) const {
    const user_detail::Bound<T, F> f{f_};
    const std::int64_t B = a.x.rows(), d = a.x.cols(), K = a.K;
    const T *x = a.x.data<T>(), *sigma = a.sigma.data<T>();
    T* score = a.score.data<T>();
    T* log_p = a.log_p.defined() ? a.log_p.data<T>() : nullptr;
    if (a.x.device().is_cuda()) {
#if defined(__CUDACC__)
      NSAMP_CHECK(d <= kernels::kMaxScoreDim, "mc_score (CUDA): up to ", kernels::kMaxScoreDim,
                  " coordinates, got ", a.x.desc());
      kernels::launch_mc_score<T>(f, x, sigma, B, K, d, a.draws, T(a.clip_max), a.particle_dim, score, log_p,
                                  ctx.stream());
      NSAMP_CUDA_CHECK_LAUNCH("mc_score " + name_ + " " + a.x.desc());
      return true;
#else
      return false;
#endif
    }
    kernels::mc_score_host<T>(f, x, sigma, B, K, d, a.draws, T(a.clip_max), a.particle_dim, score, log_p);
    return true;
  }
  template <class T>
  void mala(const MalaStepArgs& m, [[maybe_unused]] Context& ctx) const {
    const std::int64_t B = m.x.rows(), d = m.x.cols();
    const user_detail::Bound<T, F> f{f_};
    const kernels::TiltView<T> tilt = kernels::tilt_view<T>(m.tilt);
    T *x = m.x.data<T>(), *e = m.e.data<T>(), *g = m.grad.data<T>(), *y = m.y.data<T>(), *gy = m.gy.data<T>(),
      *acc = m.accepted.data<T>();
#if defined(__CUDACC__)
    if (m.x.device().is_cuda()) {
      const int threads = 256;
      const std::int64_t want = (B + threads - 1) / threads;
      const int blocks = static_cast<int>(want < 65535 * 8 ? want : 65535 * 8);
      user_detail::functor_mala_kernel<T>
          <<<blocks, threads, 0, ctx.stream()>>>(f, tilt, m.draws, m.step, x, e, g, y, gy, acc, B, d);
      NSAMP_CUDA_CHECK_LAUNCH("mala_step_fused " + name_ + " " + m.x.desc());
      return;
    }
#endif
#pragma omp parallel for schedule(static) if (B > 256)
    for (std::int64_t b = 0; b < B; ++b)
      kernels::mala_fused_row(f, tilt, m.draws, b, d, m.step.get<T>(), x + b * d, g + b * d, e + b, y + b * d,
                              gy + b * d, acc + b);
  }
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
