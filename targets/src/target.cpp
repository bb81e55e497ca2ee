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

bool Target::mala_step_fused(const MalaStepArgs& m, Context& ctx) const {
  const char* op = "mala_step_fused";
  check_batch(op, *this, m.x, ctx);
  for (const Tensor* t : {&m.grad, &m.y, &m.gy})
    NSAMP_CHECK(t->defined() && t->shape() == m.x.shape() && t->dtype() == m.x.dtype() &&
                    t->device() == m.x.device() && !t->same_storage(m.x),
                op, "(", name(), "): state and scratch must be separate tensors like x ", m.x.desc(),
                ", got ", t->desc());
  for (const Tensor* t : {&m.e, &m.accepted})
    NSAMP_CHECK(
        t->defined() && t->numel() == m.x.rows() && t->dtype() == m.x.dtype() && t->device() == m.x.device(),
        op, "(", name(), "): per-chain tensors must hold ", m.x.rows(), " values like x, got ", t->desc());
  NSAMP_CHECK(m.step > 0, op, "(", name(), "): step must be positive, got ", m.step);
  if (m.tilt.active())
    for (const Tensor* t : {&m.tilt.xt, &m.tilt.a, &m.tilt.c})
      NSAMP_CHECK(t->defined() && t->dtype() == m.x.dtype() && t->device() == m.x.device() &&
                      t->numel() == (t == &m.tilt.xt ? m.x.numel() : m.x.rows()),
                  op, "(", name(), "): tilt tensor ", t->desc(), " does not match the chains ", m.x.desc());
  if (m.x.rows() == 0) return true;
  return fused_mala(m, ctx);
}

void Target::draw(Tensor&, Context&) const { NSAMP_FAIL("sample(", name(), "): no exact sampler"); }

}  // namespace nsamp::targets
