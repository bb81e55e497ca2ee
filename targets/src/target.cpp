// The Target base: argument checks and dispatch shared by every target.
#include "nsamp/targets/target.h"
#include "nsamp/core/config.h"

namespace nsamp::targets {

namespace {
void check_batch(const char* op, const Target& t, const Tensor& x, Context& ctx) {
  check_defined(op, x, "x");
  check_on_context(op, x, ctx);
  NSAMP_CHECK(is_floating(x.dtype()), op, "(", t.name(), "): x must be float32 or float64, got ", x.desc());
  NSAMP_CHECK(x.rank() == 2 && x.cols() == t.dim(), op, "(", t.name(), "): x must be [B, ", t.dim(),
              "], got ", x.desc());
}
}  // namespace

void Target::energy(const Tensor& x, Tensor& e, Context& ctx) const {
  check_batch("energy", *this, x, ctx);
  NSAMP_CHECK(e.defined() && e.numel() == x.rows() && e.dtype() == x.dtype() && e.device() == x.device(),
              "energy(", name(), "): e must hold ", x.rows(), " ", dtype_name(x.dtype()), " values on ",
              x.device().str(), ", got ", e.desc());
  NSAMP_CHECK(!e.same_storage(x), "energy(", name(), "): x and e must be separate buffers");
  if (x.rows() == 0) return;
  evaluate(x, e, nullptr, ctx);
}

void Target::energy_and_grad(const Tensor& x, Tensor& e, Tensor& grad, Context& ctx) const {
  check_batch("energy_and_grad", *this, x, ctx);
  NSAMP_CHECK(e.defined() && e.numel() == x.rows() && e.dtype() == x.dtype() && e.device() == x.device(),
              "energy_and_grad(", name(), "): e must hold ", x.rows(), " ", dtype_name(x.dtype()),
              " values on ", x.device().str(), ", got ", e.desc());
  NSAMP_CHECK(
      grad.defined() && grad.shape() == x.shape() && grad.dtype() == x.dtype() && grad.device() == x.device(),
      "energy_and_grad(", name(), "): grad must match x ", x.desc(), ", got ", grad.desc());
  NSAMP_CHECK(!grad.same_storage(x) && !e.same_storage(x) && !e.same_storage(grad), "energy_and_grad(",
              name(), "): x, e and grad must be separate buffers");
  if (x.rows() == 0) return;
  evaluate(x, e, &grad, ctx);
}

void Target::sample(Tensor& out, Context& ctx) const {
  check_batch("sample", *this, out, ctx);
  NSAMP_CHECK(has_sampler(), "sample(", name(), "): this target has no exact sampler",
              reference_file().empty() ? "" : "; use its reference samples (" + reference_file() + ")");
  if (out.rows() == 0) return;
  draw(out, ctx);
}

void Target::draw(Tensor&, Context&) const { NSAMP_FAIL("sample(", name(), "): no exact sampler"); }

}  // namespace nsamp::targets
