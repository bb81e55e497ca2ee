#include "nsamp/samplers/networks.h"

#include <cmath>

#include "nsamp/core/fill.h"
#include "nsamp/samplers/embeddings.h"

namespace nsamp::samplers {

using ag::Activation;
using ag::Init;
using ag::Var;

namespace {

std::vector<double> linspace(double a, double b, std::int64_t n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = n == 1 ? a : a + (b - a) * double(i) / double(n - 1);
  return v;
}

Var learned_phase(std::int64_t n, DType dtype, Context& ctx, const std::string& name) {
  Tensor p = Tensor::empty(Shape{n}, dtype, ctx);
  fill_normal(p, ctx);
  return Var::leaf(p, true, name);
}

void append(std::vector<Var>& to, const std::vector<Var>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

// ---- FourierMLP
// -----------------------------------------------------------------------------------------------

FourierMLP::FourierMLP(std::int64_t dim, std::int64_t channels, int num_layers, bool zero_init, DType dtype,
                       Context& ctx, const std::string& name) {
  NSAMP_CHECK(dim > 0 && channels > 0 && num_layers >= 0, "FourierMLP: dim ", dim, ", channels ", channels,
              ", num_layers ", num_layers, " out of range");
  coeff_ = constant_row(linspace(0.1, 100.0, channels), dtype, ctx, name + ".timestep_coeff");
  phase_ = learned_phase(channels, dtype, ctx, name + ".timestep_phase");
  input_embed_ = ag::Linear(dim, channels, true, Init::PyTorchDefault, dtype, ctx, name + ".input_embed");
  time_in_ =
      ag::Linear(2 * channels, channels, true, Init::PyTorchDefault, dtype, ctx, name + ".timestep_embed.0");
  time_out_ =
      ag::Linear(channels, channels, true, Init::PyTorchDefault, dtype, ctx, name + ".timestep_embed.2");
  std::vector<std::int64_t> widths(static_cast<std::size_t>(num_layers) + 1, channels);
  widths.push_back(dim);
  tail_ = ag::MLP(widths, Activation::GELU, Activation::Identity, dtype, ctx, name + ".layers");
  if (zero_init)
    ag::init_linear(tail_.layers().back().weight(), &tail_.layers().back().bias(), Init::Zero, ctx);
}

Var FourierMLP::forward(ag::Tape& t, const Var& time, const Var& x) const {
  const Var feat = fourier_features(t, time, coeff_, phase_);
  const Var emb = time_out_.forward(t, time_in_.forward(t, feat, Activation::GELU));
  const Var h = ag::add(t, input_embed_.forward(t, x), emb);
  return tail_.forward(t, ag::activation(t, Activation::GELU, h));
}

std::vector<Var> FourierMLP::parameters() const {
  std::vector<Var> p{phase_};
  append(p, input_embed_.parameters());
  append(p, time_in_.parameters());
  append(p, time_out_.parameters());
  append(p, tail_.parameters());
  return p;
}

// ---- TimeNet
// -----------------------------------------------------------------------------------------------

TimeNet::TimeNet(std::int64_t channels, std::int64_t out, int num_layers, DType dtype, Context& ctx,
                 const std::string& name) {
  NSAMP_CHECK(channels > 0 && out > 0 && num_layers >= 1, "TimeNet: channels ", channels, ", out ", out,
              ", num_layers ", num_layers, " out of range");
  coeff_ = constant_row(linspace(0.1, 100.0, channels), dtype, ctx, name + ".timestep_coeff");
  phase_ = learned_phase(channels, dtype, ctx, name + ".timestep_phase");
  std::vector<std::int64_t> widths{2 * channels};
  for (int l = 0; l < num_layers; ++l) widths.push_back(channels);
  widths.push_back(out);
  net_ = ag::MLP(widths, Activation::GELU, Activation::Identity, dtype, ctx, name + ".layers");
  ag::Linear& last = net_.layers().back();
  zero(last.weight().mutable_value(), ctx);
  fill_constant(last.bias().mutable_value(), 0.01, ctx);
}

Var TimeNet::forward(ag::Tape& t, const Var& time) const {
  return net_.forward(t, fourier_features(t, time, coeff_, phase_));
}

std::vector<Var> TimeNet::parameters() const {
  std::vector<Var> p{phase_};
  append(p, net_.parameters());
  return p;
}

// ---- ConditionalMLP
// ----------------------------------------------------------------------------------------

ConditionalMLP::ConditionalMLP(std::int64_t dim, std::int64_t width, int layers, double freq_std, DType dtype,
                               Context& ctx, const std::string& name) {
  NSAMP_CHECK(dim > 0 && width > 0 && width % 2 == 0 && layers >= 1, "ConditionalMLP: dim ", dim, ", width ",
              width, " (must be even), layers ", layers, " out of range");
  std::int64_t in = dim;
  for (int l = 0; l < layers; ++l) {
    const std::string ln = name + ".layers." + std::to_string(l);
    layers_.emplace_back(in, width, true, Init::PyTorchDefault, dtype, ctx, ln);
    // Fixed Gaussian Fourier frequencies, scaled by 2 pi once here.
    Tensor w = Tensor::empty(Shape{1, width / 2}, dtype, ctx);
    fill_normal(w, ctx, 0.0, 6.283185307179586 * freq_std);
    coeffs_.push_back(Var::leaf(w, false, ln + ".fourier_w"));
    in = width;
  }
  out_ = ag::Linear(width, dim, true, Init::PyTorchDefault, dtype, ctx, name + ".out");
}

Var ConditionalMLP::forward(ag::Tape& t, const Var& time, const Var& x) const {
  Var h = x;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Var emb = fourier_features(t, time, coeffs_[l], Var());
    h = ag::activation(t, Activation::SiLU, ag::add(t, layers_[l].forward(t, h), emb));
  }
  return out_.forward(t, h);
}

std::vector<Var> ConditionalMLP::parameters() const {
  std::vector<Var> p;
  for (const ag::Linear& l : layers_) append(p, l.parameters());
  append(p, out_.parameters());
  return p;
}

// ---- ResidualMLP
// -----------------------------------------------------------------------------------------------

ResidualMLP::ResidualMLP(std::int64_t dim, std::int64_t hidden, int blocks, std::int64_t emb_size,
                         DType dtype, Context& ctx, const std::string& name)
    : dim_(dim) {
  NSAMP_CHECK(dim > 0 && hidden > 0 && blocks >= 0 && emb_size >= 4 && emb_size % 2 == 0, "ResidualMLP: dim ",
              dim, ", hidden ", hidden, ", blocks ", blocks, ", emb_size ", emb_size,
              " (even, >= 4) out of range");
  x_coeff_ = sinusoidal_coefficients(emb_size / 2, 25.0, dtype, ctx);
  t_coeff_ = sinusoidal_coefficients(emb_size / 2, 1.0, dtype, ctx);
  in_ =
      ag::Linear((dim + 1) * emb_size, hidden, true, Init::PyTorchDefault, dtype, ctx, name + ".joint_mlp.0");
  for (int b = 0; b < blocks; ++b)
    blocks_.emplace_back(hidden, hidden, true, Init::PyTorchDefault, dtype, ctx,
                         name + ".joint_mlp." + std::to_string(b + 1) + ".ff");
  out_ = ag::Linear(hidden, dim, true, Init::PyTorchDefault, dtype, ctx,
                    name + ".joint_mlp." + std::to_string(blocks + 1));
}

Var ResidualMLP::forward(ag::Tape& t, const Var& time, const Var& x) const {
  NSAMP_CHECK(x.value().rank() == 2 && x.value().cols() == dim_, "ResidualMLP: x ", x.value().desc(),
              " must be [B, ", dim_, "]");
  NSAMP_CHECK(time.value().numel() == x.value().rows(), "ResidualMLP: time ", time.value().desc(),
              " must hold one value per row of x ", x.value().desc());
  std::vector<Var> parts;
  const std::vector<Var> cols =
      ag::split_cols(t, x, std::vector<std::int64_t>(static_cast<std::size_t>(dim_), 1));
  for (const Var& c : cols) parts.push_back(fourier_features(t, c, x_coeff_, Var()));
  parts.push_back(fourier_features(t, time, t_coeff_, Var()));
  Var h = in_.forward(t, ag::concat_cols(t, parts), Activation::GELU);
  for (const ag::Linear& b : blocks_) h = ag::add(t, h, b.forward(t, h, Activation::GELU));
  return out_.forward(t, h);
}

std::vector<Var> ResidualMLP::parameters() const {
  std::vector<Var> p = in_.parameters();
  for (const ag::Linear& b : blocks_) append(p, b.parameters());
  append(p, out_.parameters());
  return p;
}

}  // namespace nsamp::samplers
