#include "nsamp/autograd/module.h"

#include <cmath>

#include "nsamp/core/fill.h"

namespace nsamp::ag {

void init_linear(Var& W, Var* b, Init init, Context& ctx, double gain) {
  const double fan_in = static_cast<double>(W.shape()[1]), fan_out = static_cast<double>(W.shape()[0]);
  switch (init) {
    case Init::PyTorchDefault: {
      const double bound = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
      fill_uniform(W.mutable_value(), ctx, -bound, bound);
      if (b && b->defined()) fill_uniform(b->mutable_value(), ctx, -bound, bound);
      break;
    }
    case Init::Zero:
      zero(W.mutable_value(), ctx);
      if (b && b->defined()) zero(b->mutable_value(), ctx);
      break;
    case Init::Xavier: {
      const double a = gain * std::sqrt(6.0 / (fan_in + fan_out));
      fill_uniform(W.mutable_value(), ctx, -a, a);
      if (b && b->defined()) zero(b->mutable_value(), ctx);
      break;
    }
  }
}

Linear::Linear(std::int64_t in, std::int64_t out, bool bias, Init init, DType dtype, Context& ctx,
               const std::string& name, double gain) {
  NSAMP_CHECK(in > 0 && out > 0, "Linear '", name, "': sizes ", in, " -> ", out, " must be positive");
  W_ = Var::leaf(Tensor::empty(Shape{out, in}, dtype, ctx), true, name + ".weight");
  if (bias) b_ = Var::leaf(Tensor::empty(Shape{out}, dtype, ctx), true, name + ".bias");
  init_linear(W_, bias ? &b_ : nullptr, init, ctx, gain);
}

Var Linear::forward(Tape& t, const Var& x, Activation act) const { return linear(t, x, W_, b_, act); }

std::vector<Var> Linear::parameters() const {
  std::vector<Var> p{W_};
  if (b_.defined()) p.push_back(b_);
  return p;
}

MLP::MLP(const std::vector<std::int64_t>& widths, Activation hidden, Activation output, DType dtype,
         Context& ctx, const std::string& name, Init init)
    : hidden_(hidden), output_(output) {
  NSAMP_CHECK(widths.size() >= 2, "MLP '", name, "': needs at least an input and an output width");
  for (std::size_t l = 0; l + 1 < widths.size(); ++l)
    layers_.emplace_back(widths[l], widths[l + 1], true, init, dtype, ctx,
                         name + ".layers." + std::to_string(l));
}

Var MLP::forward(Tape& t, const Var& x) const {
  std::vector<Var> W, b;
  for (const Linear& l : layers_) {
    W.push_back(l.weight());
    b.push_back(l.bias());
  }
  return mlp(t, x, W, b, hidden_, output_);
}

std::vector<Var> MLP::parameters() const {
  std::vector<Var> p;
  for (const Linear& l : layers_)
    for (const Var& v : l.parameters()) p.push_back(v);
  return p;
}

}  // namespace nsamp::ag
