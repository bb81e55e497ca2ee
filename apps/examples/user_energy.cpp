// Example: plugging a user energy into nsamp on the CPU, twice — as a host functor (FunctorTarget, the same
// code nvcc would also run on the GPU) and as a plain host callback (CallbackTarget) — then using both
// exactly like a built-in target. Exits non-zero if the two disagree or the gradient is off.
#include <cmath>
#include <cstdio>

#include "nsamp/core/fill.h"
#include "nsamp/targets/user_target.h"
#include "user_energy.h"

int main() {
  using namespace nsamp;
  Context ctx(Device::cpu(), 1);
  targets::FunctorTarget<BananaEnergy> functor("banana", 2, BananaEnergy{});
  targets::CallbackTarget callback("banana-callback", 2,
                                   [](const double* x, std::int64_t B, std::int64_t d, double* e, double* g) {
                                     BananaEnergy f;
                                     for (std::int64_t b = 0; b < B; ++b)
                                       e[b] = f.eval(x + b * d, g ? g + b * d : nullptr);
                                   });
  Tensor x = Tensor::empty(Shape{1000, 2}, DType::F64, ctx);
  fill_normal(x, ctx, 0.0, 2.0);
  Tensor e1 = Tensor::empty(Shape{1000}, DType::F64, ctx), e2 = Tensor::empty(Shape{1000}, DType::F64, ctx);
  Tensor g1 = Tensor::empty(Shape{1000, 2}, DType::F64, ctx),
         g2 = Tensor::empty(Shape{1000, 2}, DType::F64, ctx);
  const targets::Target& t1 = functor;  // used through the Target interface, like any built-in target
  const targets::Target& t2 = callback;
  t1.energy_and_grad(x, e1, g1, ctx);
  t2.energy_and_grad(x, e2, g2, ctx);
  double diff = 0, fd_err = 0;
  const double* px = x.data<double>();
  for (int b = 0; b < 1000; ++b) {
    diff = std::fmax(diff, std::fabs(e1.data<double>()[b] - e2.data<double>()[b]));
    for (int j = 0; j < 2; ++j) {
      double xp[2] = {px[2 * b], px[2 * b + 1]}, xm[2] = {px[2 * b], px[2 * b + 1]};
      xp[j] += 1e-6;
      xm[j] -= 1e-6;
      const double fd = (BananaEnergy{}.eval(xp, static_cast<double*>(nullptr)) -
                         BananaEnergy{}.eval(xm, static_cast<double*>(nullptr))) /
                        2e-6;
      fd_err =
          std::fmax(fd_err, std::fabs(fd - g1.data<double>()[2 * b + j]) / std::fmax(1.0, std::fabs(fd)));
    }
  }
  std::printf(
      "user energy 'banana': functor vs callback max |dE| %.3g, gradient vs finite differences %.3g\n", diff,
      fd_err);
  return diff == 0.0 && fd_err < 1e-6 ? 0 : 1;
}
