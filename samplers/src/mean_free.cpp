#include "nsamp/samplers/mean_free.h"

#include "nsamp/autograd/ops.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/gemm.h"

namespace nsamp::samplers {

MeanFree::MeanFree(const targets::Particles& p, DType dtype, Context& ctx) : p_(p) {
  if (p.n <= 0) return;
  NSAMP_CHECK(p.spatial >= 1, "MeanFree: ", p.n, " particles need a spatial dimension >= 1, got ", p.spatial);
  const std::int64_t d = std::int64_t(p.n) * p.spatial;
  std::vector<double> P(std::size_t(d * d), 0.0);
  for (std::int64_t a = 0; a < d; ++a)
    for (std::int64_t b = 0; b < d; ++b)
      P[std::size_t(a * d + b)] = (a == b ? 1.0 : 0.0) - (a % p.spatial == b % p.spatial ? 1.0 / p.n : 0.0);
  if (dtype == DType::F64)
    P_ = Tensor::from_vector(P, Shape{d, d}, ctx.device(), ctx);
  else
    P_ = Tensor::from_vector(std::vector<float>(P.begin(), P.end()), Shape{d, d}, ctx.device(), ctx);
}

void MeanFree::apply(Tensor& x, Context& ctx) const {
  if (!active()) return;
  NSAMP_CHECK(x.rank() == 2 && x.cols() == P_.rows() && x.dtype() == P_.dtype(),
              "MeanFree: rows must be [B, ", P_.rows(), "] ", dtype_name(P_.dtype()), ", got ", x.desc());
  if (x.rows() == 0) return;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), ctx);
  kernels::gemm(x, false, P_, false, y, 1.0, 0.0, ctx);
  copy(y, x, ctx);
}

ag::Var MeanFree::apply(ag::Tape& tp, const ag::Var& x) const {
  if (!active()) return x;
  return ag::matmul(tp, x, ag::Var::leaf(P_));
}

void MeanFree::fill_normal_at(Tensor& x, std::uint64_t seed, philox::Offset offset, Context& ctx,
                              double std) const {
  nsamp::fill_normal_at(x, seed, offset, ctx, 0.0, std);
  apply(x, ctx);
}

void MeanFree::fill_normal(Tensor& x, Context& ctx, double std) const {
  nsamp::fill_normal(x, ctx, 0.0, std);
  apply(x, ctx);
}

}  // namespace nsamp::samplers
