// The CUDA elementwise kernels (kernels/src/elementwise_kernels.cuh) run on the CPU under
// tests/emu/cuda_emulation.h, a thread per CUDA thread, against the CPU twin (kernels::binary, affine, the
// activations, the unary ops, clamp, broadcast_to and bias_activation_forward on host tensors of the same
// dtype). Every op and activation, every broadcast form of both operands, grids smaller than the work, and
// inputs with large magnitudes, zeros, negatives and NaN. The element math is shared, so results must be
// equal up to libm's last bit.
#include "emu/cuda_emulation.h"
// the emulation's definitions must come first
#include "../kernels/src/elementwise_kernels.cuh"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "emu/emu_check.h"
#include "nsamp/core/context.h"
#include "nsamp/core/tensor.h"
#include "nsamp/kernels/elementwise.h"

using namespace nsamp;
using namespace nsamp::kernels;
namespace kd = nsamp::kernels::detail;

namespace {

constexpr std::int64_t R = 37, C = 19, N = R * C;

template <class T>
double elementwise_tol() {
  return sizeof(T) == 8 ? 1e-15 : 1e-7;
}

// The float32 CPU twin of the activations calls libmvec's vector functions (within 4 ulp), the emulated
// kernel the scalar C library (as the device calls CUDA's): they agree to a few ulp of each term, so the
// derivatives of SiLU and GELU, sums of two terms that cancel where they cross zero (SiLU' near -1.28, GELU'
// near -0.75), are compared against the size of their terms: a floor of 1 on |want|, against |gy| of about
// 3. The other derivatives are single products, compared entry by entry.
template <class T>
double activation_tol() {
  return sizeof(T) == 8 ? 1e-15 : 1e-6;
}
template <class T, Activation Act>
double activation_grad_floor() {
  const bool sum = Act == Activation::SiLU || Act == Activation::GELU;
  return sizeof(T) == 8 || !sum ? emu::tiny<T>() : 1.0;
}

// Inputs of every kind the ops must handle: normals of scale 3, a few large magnitudes, zeros, negatives,
// NaN.
template <class T>
std::vector<T> inputs(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<T> v = emu::as<T>(emu::normal(n, g, 3.0));
  if (n > 8) {
    v[0] = T(0);
    v[1] = T(-0.0);
    v[2] = T(60);
    v[3] = T(-60);
    v[4] = T(NAN);
    v[5] = T(1e-30);
  }
  return v;
}

// The four operand forms of broadcast_strides: [R, C], a row vector, a column vector, a scalar.
struct Form {
  Shape shape;
  BroadcastStrides strides;
  const char* name;
};
std::vector<Form> forms() {
  return {{Shape{R, C}, {C, 1}, "full"},
          {Shape{C}, {0, 1}, "row"},
          {Shape{R, 1}, {1, 0}, "column"},
          {Shape{1}, {0, 0}, "scalar"}};
}

template <class T, BinaryOp Op>
void check_binary(int grid) {
  Context ctx(Device::cpu(), 1);
  for (const Form& fa : forms())
    for (const Form& fb : forms()) {
      CAPTURE(fa.name);
      CAPTURE(fb.name);
      const std::vector<T> a = inputs<T>(std::size_t(fa.shape.numel()), 1),
                           b = inputs<T>(std::size_t(fb.shape.numel()), 2);
      Tensor want = Tensor::empty(Shape{R, C}, emu::host_tensor(a, fa.shape, ctx).dtype(), ctx);
      binary(Op, emu::host_tensor(a, fa.shape, ctx), emu::host_tensor(b, fb.shape, ctx), want, ctx);
      std::vector<T> out(std::size_t(N), T(-7));
      emu::launch(grid, kd::kThreads, 0, [&] {
        kd::binary_kernel<Op, T>(a.data(), fa.strides, b.data(), fb.strides, out.data(), N, C);
      });
      emu::check_near(want.to_doubles(ctx), emu::as<double>(out), 0.0, binary_op_name(Op));  // one rounding
    }
}

template <class T, Activation Act>
void check_activation(int grid) {
  Context ctx(Device::cpu(), 1);
  const std::vector<T> x = inputs<T>(std::size_t(N), 3), gy = inputs<T>(std::size_t(N), 4);
  const Tensor tx = emu::host_tensor(x, Shape{R, C}, ctx);
  Tensor y = Tensor::empty(Shape{R, C}, tx.dtype(), ctx), gx = y.clone(ctx);
  activation_forward(Act, tx, y, ctx);
  activation_backward(Act, tx, emu::host_tensor(gy, Shape{R, C}, ctx), gx, ctx);
  std::vector<T> ey(std::size_t(N), T(-7)), egx = ey;
  emu::launch(grid, kd::kThreads, 0, [&] { kd::act_forward_kernel<Act, T>(x.data(), ey.data(), N); });
  emu::launch(grid, kd::kThreads, 0,
              [&] { kd::act_backward_kernel<Act, T>(x.data(), gy.data(), egx.data(), N); });
  emu::check_rel(y.to_doubles(ctx), emu::as<double>(ey), activation_tol<T>(), emu::tiny<T>(),
                 activation_name(Act));
  emu::check_rel(gx.to_doubles(ctx), emu::as<double>(egx), activation_tol<T>(),
                 activation_grad_floor<T, Act>(), activation_name(Act));

  // The linear layer's epilogue: z += bias, a = act(z), in place for the identity.
  const std::vector<T> z0 = inputs<T>(std::size_t(N), 5), bias = inputs<T>(std::size_t(C), 6);
  Tensor z = emu::host_tensor(z0, Shape{R, C}, ctx), a = Tensor::empty(Shape{R, C}, tx.dtype(), ctx);
  const bool in_place = Act == Activation::Identity;
  bias_activation_forward(Act, emu::host_tensor(bias, Shape{C}, ctx), z, in_place ? z : a, ctx);
  std::vector<T> ez = z0, ea(std::size_t(N), T(-7));
  emu::launch(grid, kd::kThreads, 0, [&] {
    kd::bias_act_kernel<Act, T>(bias.data(), ez.data(), in_place ? ez.data() : ea.data(), N, C);
  });
  emu::check_rel(z.to_doubles(ctx), emu::as<double>(ez), elementwise_tol<T>(), emu::tiny<T>(), "bias + z");
  if (!in_place)
    emu::check_rel(a.to_doubles(ctx), emu::as<double>(ea), activation_tol<T>(), emu::tiny<T>(),
                   "act(z + bias)");
}

template <class T, UnaryOp Op>
void check_unary(int grid) {
  Context ctx(Device::cpu(), 1);
  const std::vector<T> x = inputs<T>(std::size_t(N), 7), gy = inputs<T>(std::size_t(N), 8);
  const Tensor tx = emu::host_tensor(x, Shape{R, C}, ctx);
  Tensor y = Tensor::empty(Shape{R, C}, tx.dtype(), ctx), gx = y.clone(ctx);
  unary_forward(Op, tx, y, ctx);
  unary_backward(Op, tx, emu::host_tensor(gy, Shape{R, C}, ctx), gx, ctx);
  std::vector<T> ey(std::size_t(N), T(-7)), egx = ey;
  emu::launch(grid, kd::kThreads, 0, [&] { kd::unary_forward_kernel<Op, T>(x.data(), ey.data(), N); });
  emu::launch(grid, kd::kThreads, 0,
              [&] { kd::unary_backward_kernel<Op, T>(x.data(), gy.data(), egx.data(), N); });
  emu::check_rel(y.to_doubles(ctx), emu::as<double>(ey), elementwise_tol<T>(), emu::tiny<T>(),
                 "unary forward");
  emu::check_rel(gx.to_doubles(ctx), emu::as<double>(egx), elementwise_tol<T>(), emu::tiny<T>(),
                 "unary backward");
}

template <class T>
void check_others(int grid) {
  Context ctx(Device::cpu(), 1);
  const std::vector<T> x = inputs<T>(std::size_t(N), 9), gy = inputs<T>(std::size_t(N), 10);
  const Tensor tx = emu::host_tensor(x, Shape{R, C}, ctx);
  {
    Tensor want = Tensor::empty(Shape{R, C}, tx.dtype(), ctx);
    affine(tx, -1.5, 0.25, want, ctx);
    std::vector<T> out(std::size_t(N), T(-7));
    emu::launch(grid, kd::kThreads, 0,
                [&] { kd::affine_kernel<T>(x.data(), T(-1.5), T(0.25), out.data(), N); });
    emu::check_rel(want.to_doubles(ctx), emu::as<double>(out), elementwise_tol<T>(), emu::tiny<T>(),
                   "affine");
  }
  for (auto [lo, hi] : {std::pair<double, double>{-1, 2}, {0, 0}, {-INFINITY, 0.5}}) {
    CAPTURE(lo);
    CAPTURE(hi);
    Tensor y = Tensor::empty(Shape{R, C}, tx.dtype(), ctx), gx = y.clone(ctx);
    clamp_forward(tx, lo, hi, y, ctx);
    clamp_backward(tx, lo, hi, emu::host_tensor(gy, Shape{R, C}, ctx), gx, ctx);
    std::vector<T> ey(std::size_t(N), T(-7)), egx = ey;
    emu::launch(grid, kd::kThreads, 0,
                [&] { kd::clamp_forward_kernel<T>(x.data(), T(lo), T(hi), ey.data(), N); });
    emu::launch(grid, kd::kThreads, 0,
                [&] { kd::clamp_backward_kernel<T>(x.data(), T(lo), T(hi), gy.data(), egx.data(), N); });
    emu::check_near(y.to_doubles(ctx), emu::as<double>(ey), 0.0, "clamp");
    emu::check_near(gx.to_doubles(ctx), emu::as<double>(egx), 0.0, "clamp gradient");
  }
  for (const Form& f : forms()) {
    CAPTURE(f.name);
    const std::vector<T> src = inputs<T>(std::size_t(f.shape.numel()), 11);
    Tensor want = Tensor::empty(Shape{R, C}, tx.dtype(), ctx);
    broadcast_to(emu::host_tensor(src, f.shape, ctx), 0.5, want, ctx);
    std::vector<T> out(std::size_t(N), T(-7));
    emu::launch(grid, kd::kThreads, 0,
                [&] { kd::broadcast_kernel<T>(src.data(), f.strides, T(0.5), out.data(), N, C); });
    emu::check_near(want.to_doubles(ctx), emu::as<double>(out), 0.0, "broadcast_to");
  }
}

template <class T, class F>
void each_activation(F&& f) {
  f(std::integral_constant<Activation, Activation::Identity>{});
  f(std::integral_constant<Activation, Activation::ReLU>{});
  f(std::integral_constant<Activation, Activation::SiLU>{});
  f(std::integral_constant<Activation, Activation::GELU>{});
  f(std::integral_constant<Activation, Activation::Tanh>{});
  f(std::integral_constant<Activation, Activation::Sigmoid>{});
  f(std::integral_constant<Activation, Activation::Softplus>{});
}

template <class T, class F>
void each_unary(F&& f) {
  f(std::integral_constant<UnaryOp, UnaryOp::Neg>{});
  f(std::integral_constant<UnaryOp, UnaryOp::Exp>{});
  f(std::integral_constant<UnaryOp, UnaryOp::Log>{});
  f(std::integral_constant<UnaryOp, UnaryOp::Sqrt>{});
  f(std::integral_constant<UnaryOp, UnaryOp::Square>{});
  f(std::integral_constant<UnaryOp, UnaryOp::Sin>{});
  f(std::integral_constant<UnaryOp, UnaryOp::Cos>{});
}

template <class T>
void check_all(int grid) {
  check_binary<T, BinaryOp::Add>(grid);
  check_binary<T, BinaryOp::Sub>(grid);
  check_binary<T, BinaryOp::Mul>(grid);
  check_binary<T, BinaryOp::Div>(grid);
  each_activation<T>([&](auto a) {
    CAPTURE(int(decltype(a)::value));
    check_activation<T, decltype(a)::value>(grid);
  });
  each_unary<T>([&](auto o) {
    CAPTURE(int(decltype(o)::value));
    check_unary<T, decltype(o)::value>(grid);
  });
  check_others<T>(grid);
}

}  // namespace

TEST_CASE("elementwise kernels (CUDA code emulated on the CPU) match the CPU twin" *
          doctest::test_suite("cpu")) {
  for (int grid : {1, 3}) {  // 256 and 768 threads for 703 elements: strided and not
    CAPTURE(grid);
    check_all<float>(grid);
    check_all<double>(grid);
  }
}
