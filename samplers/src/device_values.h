// Host values to a tensor of the sampler's dtype on the context's device (schedules, per-row coefficients).
#pragma once

#include <vector>

#include "nsamp/core/tensor.h"

namespace nsamp::samplers::detail {

inline Tensor device_values(const std::vector<double>& v, const Shape& shape, DType dtype, Context& ctx) {
  if (dtype == DType::F64) return Tensor::from_vector(v, shape, ctx.device(), ctx);
  return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), shape, ctx.device(), ctx);
}

// [n, 1]: one value per row, broadcast along the columns.
inline Tensor device_column(const std::vector<double>& v, DType dtype, Context& ctx) {
  return device_values(v, Shape{std::int64_t(v.size()), 1}, dtype, ctx);
}

}  // namespace nsamp::samplers::detail
