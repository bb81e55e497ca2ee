// Modules: networks as explicit lists of named parameters with their initialisers, and the two building
// blocks every sampler uses, Linear and MLP. Parameters are leaves (requires_grad) named "<prefix>.<name>".
#pragma once

#include <string>
#include <vector>

#include "nsamp/autograd/ops.h"

namespace nsamp::ag {

// PyTorchDefault: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (nn.Linear's reset_parameters).
// Zero: both 0. Xavier: weight ~ U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)), bias 0.
enum class Init { PyTorchDefault, Zero, Xavier };

class Module {
 public:
  virtual ~Module() = default;
  // Every trainable parameter, in a fixed order, with unique names.
  virtual std::vector<Var> parameters() const = 0;
};

// Random initial values come from the context's Philox stream, so a seed fixes the network.
void init_linear(Var& W, Var* b, Init init, Context& ctx, double gain = 1.0);

class Linear : public Module {
 public:
  Linear() = default;
  Linear(std::int64_t in, std::int64_t out, bool bias, Init init, DType dtype, Context& ctx,
         const std::string& name, double gain = 1.0);
  // act(x W^T + b), one tape node.
  Var forward(Tape& t, const Var& x, Activation act = Activation::Identity) const;
  std::vector<Var> parameters() const override;
  const Var& weight() const { return W_; }
  const Var& bias() const { return b_; }
  Var& weight() { return W_; }
  Var& bias() { return b_; }
  std::int64_t in_features() const { return W_.shape()[1]; }
  std::int64_t out_features() const { return W_.shape()[0]; }

 private:
  Var W_, b_;
};

// widths = {in, h1, ..., out}: Linear layers with `hidden` after each but the last and `output` after the
// last. forward() records the whole network as one tape node (ag::mlp).
class MLP : public Module {
 public:
  MLP() = default;
  MLP(const std::vector<std::int64_t>& widths, Activation hidden, Activation output, DType dtype,
      Context& ctx, const std::string& name, Init init = Init::PyTorchDefault);
  Var forward(Tape& t, const Var& x) const;
  std::vector<Var> parameters() const override;
  std::vector<Linear>& layers() { return layers_; }
  const std::vector<Linear>& layers() const { return layers_; }

 private:
  std::vector<Linear> layers_;
  Activation hidden_ = Activation::ReLU, output_ = Activation::Identity;
};

}  // namespace nsamp::ag
