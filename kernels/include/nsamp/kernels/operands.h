// Operand checks shared by every op family: defined, same dtype, on the same device as the output, and on
// the context's device when that is a GPU. Messages name the op and every tensor.
#pragma once

#include <initializer_list>
#include <utility>

#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

struct Operand {
  const char* name;
  const Tensor* tensor;
};

// Checks every operand against the first one, the output (dtype, device, no partial overlap), and that each
// belongs to the context.
void check_operands(const char* op, Context& ctx, std::initializer_list<Operand> operands);
void check_shape(const char* op, const Tensor& t, const char* name, const Shape& expected);
// A float64 side tensor of n elements (step state, statistics, draws) on like's device and the context's.
void check_f64(const char* op, const Tensor& t, const char* name, std::int64_t n, const Tensor& like,
               Context& ctx);

}  // namespace nsamp::kernels
