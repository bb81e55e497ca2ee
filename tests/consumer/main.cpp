// Embeds nsamp: a context on the CPU, a fill, a linear layer and a log-sum-exp, checked against a direct
// loop.
#include <cmath>
#include <cstdio>

#include <nsamp/core/config.h>
#include <nsamp/core/fill.h>
#include <nsamp/kernels/gemm.h>
#include <nsamp/kernels/reduce.h>

int main() {
  nsamp::Context ctx(nsamp::Device::cpu(), 7);
  nsamp::Tensor x = nsamp::Tensor::empty(nsamp::Shape{16, 3}, nsamp::DType::F64, ctx);
  nsamp::Tensor w = nsamp::Tensor::empty(nsamp::Shape{5, 3}, nsamp::DType::F64, ctx);
  nsamp::Tensor y = nsamp::Tensor::empty(nsamp::Shape{16, 5}, nsamp::DType::F64, ctx);
  nsamp::Tensor l = nsamp::Tensor::empty(nsamp::Shape{16}, nsamp::DType::F64, ctx);
  nsamp::fill_normal(x, ctx);
  nsamp::fill_normal(w, ctx);
  nsamp::kernels::linear(x, w, nsamp::Tensor(), y, ctx);
  nsamp::kernels::row_logsumexp(y, l, ctx);
  const double* px = x.data<double>();
  const double* pw = w.data<double>();
  double worst = 0;
  for (int i = 0; i < 16; ++i) {
    double s = 0;
    for (int o = 0; o < 5; ++o) {
      double v = 0;
      for (int k = 0; k < 3; ++k) v += px[i * 3 + k] * pw[o * 3 + k];
      s += std::exp(v);
    }
    worst = std::fmax(worst, std::fabs(std::log(s) - l.data<double>()[i]));
  }
  std::printf("nsamp %s consumer: max error %.3g\n", nsamp::kVersion, worst);
  return worst < 1e-12 ? 0 : 1;
}
