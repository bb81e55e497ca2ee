// The E(n)-equivariant graph network of iDEM and DiKL for particle systems (idem_iwsm.md, "EGNN layer";
// sizes in dikl.md and idem_iwsm.md). Fully connected graph over the n particles of each sample; per layer,
// for every ordered pair (i, j) with d_ij = x_i - x_j, r_ij = |d_ij|^2 and a_ij the input's squared distance:
//   m_ij = act(W2 act(W1 [h_i, h_j, r_ij, a_ij] + b1) + b2)          edge MLP
//   m_ij <- m_ij sigmoid(w_a . m_ij + b_a)                            attention (optional)
//   x_i  <- x_i + sum_j d_ij / (sqrt(r_ij + 1e-8) + 1) C tanh(phi_x(m_ij)),  phi_x = Linear(H, 1, no bias,
//           Xavier gain 0.001) o act o Linear(H, H), C = coords_range / layers
//   h_i  <- h_i + W4 act(W3 [h_i, sum_j m_ij] + b3) + b4              recurrent node update (old h_i)
// h starts as Linear(F, H) of the node features: the time t (score networks) or ones (generators). The output
// is x_L - x_0 (Displacement: iDEM's and DiKL's score networks) or x_L (Position: DiKL's generators, so that
// an untrained generator starts near its mean-free Gaussian latent), with the centre of mass removed.
//
// The first layer of the edge MLP is evaluated per node, not per edge: W1 [h_i, h_j, r, a] = (W1_i h)_i +
// (W1_j h)_j + W1_ra [r, a], so its GEMM costs N H^2 instead of N (n - 1) (2H + 2) H; the result is the same
// linear map (one [H, 2H + 2] weight, PyTorch's initialisation). The last layer's node update feeds nothing
// (the coordinates use the layer's old h), so that layer has no node MLP.
//
// Two implementations of the same function. Fused: the node-level GEMMs are autograd ops and the pair part
// of each layer is one tape node over kernels/egnn.h, one pass per sample forward and one backward that
// recomputes the edges, so neither the forward nor the tape holds an edge tensor. Composed (the reference the
// fused kernels are tested against): every step a differentiable op (gathers over pair indices, per-edge
// GEMMs, a scatter-add per aggregation), each edge tensor [B n (n - 1), H] (LJ-55 at B = 128, H = 128: about
// 48M floats per tensor). Auto (the default) takes the fused path for every pass without a tape and on CUDA,
// and the composed ops for taped passes on the CPU while their edge tensors stay under 1 GiB (there the
// recomputing backward measured 10-40% slower than Eigen's GEMMs over stored edges; bench_egnn).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nsamp/autograd/module.h"
#include "nsamp/samplers/mean_free.h"
#include "nsamp/targets/target.h"

namespace nsamp::samplers {

struct EgnnConfig {
  std::int64_t hidden = 128;
  int layers = 3;
  ag::Activation act = ag::Activation::SiLU;  // iDEM: SiLU; DiKL: ReLU
  bool attention = true;
  bool tanh = true;            // tanh-bounded coordinate updates (else phi_x unbounded, no C)
  double coords_range = 15.0;  // C = coords_range / layers
  enum class Output { Displacement, Position } output = Output::Displacement;
  enum class Impl { Auto, Fused, Composed } impl = Impl::Auto;
};

// The samplers' EGNNs: layers x hidden with `act` and the given output, the other settings the spec's.
EgnnConfig egnn_config(std::int64_t hidden, int layers, ag::Activation act,
                       EgnnConfig::Output output = EgnnConfig::Output::Displacement);

class Egnn : public ag::Module {
 public:
  Egnn(const targets::Particles& p, const EgnnConfig& config, DType dtype, Context& ctx,
       const std::string& name = "egnn");
  // x [B, n * D]. feature: [B, 1] per-sample node feature (the time), or undefined for all ones. Returns
  // [B, n * D], mean-free.
  ag::Var forward(ag::Tape& tp, const ag::Var& feature, const ag::Var& x) const;
  std::vector<ag::Var> parameters() const override;
  const EgnnConfig& config() const { return cfg_; }
  void set_impl(EgnnConfig::Impl impl) { cfg_.impl = impl; }
  void set_fused(bool on) { cfg_.impl = on ? EgnnConfig::Impl::Fused : EgnnConfig::Impl::Composed; }
  const targets::Particles& particles() const { return p_; }
  // Multiply-adds of one forward pass per sample (the edge and node GEMMs; for benchmarks).
  double flops_per_sample() const;

 private:
  struct Layer {
    ag::Linear edge1, edge2, att, coord1, coord2, node1, node2;
  };
  struct Graph {  // node (and, for the composed path, pair) indices for one batch size, on the device
    std::int64_t batch = -1;
    Tensor row, col, node_sample;
  };
  const Graph& graph(std::int64_t B, bool edges, Context& ctx) const;
  ag::Var forward_fused(ag::Tape& tp, const ag::Var& h0, const ag::Var& x) const;

  targets::Particles p_;
  EgnnConfig cfg_;
  DType dtype_;
  MeanFree mean_free_;
  ag::Linear embed_;
  std::vector<Layer> layers_;
  mutable std::map<std::int64_t, Graph> graphs_;  // by batch size
};

}  // namespace nsamp::samplers
