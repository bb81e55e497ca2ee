// The networks of the three papers' public code (see ../shared/spec): the path samplers' FourierMLP and
// scalar time network, DiKL's conditional-linear score network, and iDEM's residual MLP with sinusoidal
// embeddings. Plain MLPs (DiKL's generator) are ag::MLP.
#pragma once

#include <string>
#include <vector>

#include "nsamp/autograd/module.h"

namespace nsamp::samplers {

// sde_sampler / PIS FourierMLP (path_samplers.md): time features [sin(c t + phi), cos(c t + phi)] with
// c = linspace(0.1, 100, C) and a learned phase phi ~ N(0, 1); time path Linear(2C, C) -> GELU -> Linear(C,
// C); h0 = Linear(d, C)(x) + time embedding; then GELU, num_layers x [Linear(C, C), GELU], Linear(C, d) with
// weight and bias zero-initialised (zero_init).
class FourierMLP : public ag::Module {
 public:
  FourierMLP(std::int64_t dim, std::int64_t channels, int num_layers, bool zero_init, DType dtype,
             Context& ctx, const std::string& name = "fourier_mlp");
  // t: [B, 1] per-sample times or [1] / [1, 1] shared; x: [B, dim]. Returns [B, dim].
  ag::Var forward(ag::Tape& t, const ag::Var& time, const ag::Var& x) const;
  std::vector<ag::Var> parameters() const override;

 private:
  ag::Var coeff_, phase_;
  ag::Linear input_embed_, time_in_, time_out_;
  ag::MLP tail_;  // the hidden layers and the output layer, one node
};

// sde_sampler's TimeConder, the scalar time network NN_t: the same time features -> Linear(2C, C) ->
// (num_layers - 1) x [GELU, Linear(C, C)] -> GELU -> Linear(C, out) with the last weight 0 and bias 0.01.
class TimeNet : public ag::Module {
 public:
  TimeNet(std::int64_t channels, std::int64_t out, int num_layers, DType dtype, Context& ctx,
          const std::string& name = "time_net");
  ag::Var forward(ag::Tape& t, const ag::Var& time) const;
  std::vector<ag::Var> parameters() const override;

 private:
  ag::Var coeff_, phase_;
  ag::MLP net_;
};

// DiKL's score network for MoG/MW (dikl.md): `layers` conditional-linear layers of width W,
// h <- SiLU(Linear(h) + [sin(2 pi w_l t), cos(2 pi w_l t)]) with a fixed w_l ~ N(0, freq_std^2) of size W/2
// per layer (drawn from the context's Philox stream) and t the integer noise index; then Linear(W, d).
class ConditionalMLP : public ag::Module {
 public:
  ConditionalMLP(std::int64_t dim, std::int64_t width, int layers, double freq_std, DType dtype, Context& ctx,
                 const std::string& name = "conditional_mlp");
  ag::Var forward(ag::Tape& t, const ag::Var& time, const ag::Var& x) const;  // time [B, 1]
  std::vector<ag::Var> parameters() const override;
  // The fixed random Fourier frequencies (drawn at construction, not trained): a checkpoint keeps them so
  // that a network rebuilt from another seed computes the same function.
  std::vector<ag::Var> buffers() const { return coeffs_; }

 private:
  std::vector<ag::Linear> layers_;
  std::vector<ag::Var> coeffs_;  // 2 pi w_l, [1, W/2], constants
  ag::Linear out_;
};

// iDEM's MLP for GMM targets (idem_iwsm.md): sinusoidal embeddings of size E of each coordinate (scale 25)
// and of t (scale 1), concatenated in that order -> Linear -> GELU -> blocks x [h + GELU(Linear(h))] ->
// Linear(H, d).
class ResidualMLP : public ag::Module {
 public:
  ResidualMLP(std::int64_t dim, std::int64_t hidden, int blocks, std::int64_t emb_size, DType dtype,
              Context& ctx, const std::string& name = "residual_mlp");
  ag::Var forward(ag::Tape& t, const ag::Var& time, const ag::Var& x) const;  // time [B, 1], x [B, dim]
  std::vector<ag::Var> parameters() const override;

 private:
  std::int64_t dim_;
  ag::Var x_coeff_, t_coeff_;
  ag::Linear in_;
  std::vector<ag::Linear> blocks_;
  ag::Linear out_;
};

}  // namespace nsamp::samplers
