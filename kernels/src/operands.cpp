#include "nsamp/kernels/operands.h"

namespace nsamp::kernels {

void check_operands(const char* op, Context& ctx, std::initializer_list<Operand> operands) {
  const Tensor* first = nullptr;
  const char* first_name = nullptr;
  for (const Operand& o : operands) {
    check_defined(op, *o.tensor, o.name);
    check_on_context(op, *o.tensor, ctx);
    if (!first) {
      NSAMP_CHECK(is_floating(o.tensor->dtype()), op, ": ", o.name, " must be float32 or float64, got ",
                  o.tensor->desc());
      first = o.tensor;
      first_name = o.name;
      continue;
    }
    // The first operand is the output: it may alias another operand exactly, never partly.
    check_no_partial_overlap(op, *first, *o.tensor, o.name);
    NSAMP_CHECK(o.tensor->dtype() == first->dtype(), op, ": dtype mismatch: ", first_name, " ", first->desc(),
                ", ", o.name, " ", o.tensor->desc());
    NSAMP_CHECK(o.tensor->device() == first->device(), op, ": device mismatch: ", first_name, " ",
                first->desc(), ", ", o.name, " ", o.tensor->desc());
  }
}

void check_shape(const char* op, const Tensor& t, const char* name, const Shape& expected) {
  NSAMP_CHECK(t.shape() == expected, op, ": ", name, " must have shape ", expected.str(), ", got ", t.desc());
}

void check_f64(const char* op, const Tensor& t, const char* name, std::int64_t n, const Tensor& like,
               Context& ctx) {
  NSAMP_CHECK(t.defined() && t.dtype() == DType::F64 && t.numel() == n, op, ": ", name,
              " must be float64 with ", n, " elements, got ", t.defined() ? t.desc() : "an undefined tensor");
  NSAMP_CHECK(t.device() == like.device(), op, ": ", name, " ", t.desc(), " is not on ", like.desc(),
              "'s device");
  check_on_context(op, t, ctx);
}

}  // namespace nsamp::kernels
