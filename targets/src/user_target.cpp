#include "nsamp/targets/user_target.h"

namespace nsamp::targets {

CallbackTarget::CallbackTarget(std::string name, std::int64_t dim, Callback cb, Particles particles)
    : name_(std::move(name)), dim_(dim), cb_(std::move(cb)), particles_(particles) {
  NSAMP_CHECK(dim > 0, "CallbackTarget '", name_, "': dimension must be positive, got ", dim);
  NSAMP_CHECK(static_cast<bool>(cb_), "CallbackTarget '", name_, "': empty callback");
  check_particles("CallbackTarget '" + name_ + "'", dim, particles);
}

void CallbackTarget::evaluate(const Tensor& x, Tensor& e, Tensor* grad, Context& /*ctx*/) const {
  NSAMP_CHECK(x.device().is_cpu(), "target ", name_, ": a host callback evaluates host tensors only, got ",
              x.desc(), "; copy to the host or use a FunctorTarget compiled with nvcc");
  const std::int64_t B = x.rows(), d = x.cols();
  if (x.dtype() == DType::F64) {
    cb_(x.data<double>(), B, d, e.data<double>(), grad ? grad->data<double>() : nullptr);
    return;
  }
  // float32 tensors go through float64 buffers: the callback has one signature.
  const float* xf = x.data<float>();
  std::vector<double> xd(xf, xf + B * d), ed(static_cast<std::size_t>(B)), gd(grad ? xd.size() : 0);
  cb_(xd.data(), B, d, ed.data(), grad ? gd.data() : nullptr);
  float* pe = e.data<float>();
  for (std::int64_t i = 0; i < B; ++i) pe[i] = static_cast<float>(ed[static_cast<std::size_t>(i)]);
  if (grad) {
    float* pg = grad->data<float>();
    for (std::size_t i = 0; i < gd.size(); ++i) pg[i] = static_cast<float>(gd[i]);
  }
}

}  // namespace nsamp::targets
