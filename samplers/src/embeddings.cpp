#include "nsamp/samplers/embeddings.h"

#include <cmath>
#include <vector>

namespace nsamp::samplers {

ag::Var fourier_features(ag::Tape& t, const ag::Var& v, const ag::Var& coeff, const ag::Var& phase) {
  const Tensor& tv = v.value();
  NSAMP_CHECK(tv.cols() == 1 || tv.rank() <= 1, "fourier_features: time ", tv.desc(),
              " must be [B, 1] or a single value");
  const ag::Var col = ag::reshape(t, v, Shape{tv.numel(), 1});
  ag::Var arg = ag::matmul(t, col, coeff);  // [B, K]
  if (phase.defined()) arg = ag::add(t, arg, phase);
  return ag::concat_cols(t, {ag::sin(t, arg), ag::cos(t, arg)});
}

ag::Var constant_row(const std::vector<double>& values, DType dtype, Context& ctx, const std::string& name) {
  const Shape s{1, static_cast<std::int64_t>(values.size())};
  Tensor out = Tensor::empty(s, dtype, ctx);
  if (dtype == DType::F64)
    copy(Tensor::from_vector(values, s, Device::cpu(), ctx), out, ctx);
  else
    copy(Tensor::from_vector(std::vector<float>(values.begin(), values.end()), s, Device::cpu(), ctx), out,
         ctx);
  return ag::Var::leaf(out, false, name);
}

ag::Var sinusoidal_coefficients(std::int64_t half_size, double scale, DType dtype, Context& ctx) {
  NSAMP_CHECK(half_size >= 2, "sinusoidal embedding: half size ", half_size, " must be at least 2");
  std::vector<double> c(static_cast<std::size_t>(half_size));
  const double step = std::log(10000.0) / static_cast<double>(half_size - 1);
  for (std::int64_t k = 0; k < half_size; ++k)
    c[static_cast<std::size_t>(k)] = scale * std::exp(-step * double(k));
  return constant_row(c, dtype, ctx, "sinusoidal_coefficients");
}

}  // namespace nsamp::samplers
