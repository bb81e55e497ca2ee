// Building blocks of iDEM (Akhound-Sadegh et al., ICML 2024) and IW-SM (Wang et al., arXiv 2505.19431):
// ../shared/spec/idem_iwsm.md. The Monte Carlo noisy score S_K itself is Target::mc_score.
//  - VeSchedule: the geometric VE schedule, sigma_t^2 = h(t) = sigma_min^2 (sigma_d^(2t) - 1) and the
//    diffusion coefficient g(t) = sigma_min sigma_d^t sqrt(2 ln sigma_d), sigma_d = sigma_max / sigma_min.
//  - ReplayBuffer: a FIFO of samples on the device (capacity rows; the oldest overwritten first), sampled
//    uniformly with replacement from the context's Philox stream.
//  - IW-SM's weights: log p^B_t(x_i), the density at x_i of the buffer convolved with N(0, sigma_i^2 I)
//    (one fused log-sum-exp over the buffer, kernels::log_kernel_sum), log w_i = log p~_t(x_i) - log p^B_t,
//    self-normalised over the batch, and their normalised effective sample size.
#pragma once

#include <cstdint>

#include <string>
#include <vector>
#include "nsamp/core/philox.h"

#include "nsamp/autograd/state_dict.h"
#include "nsamp/core/tensor.h"

namespace nsamp::samplers {

struct VeSchedule {
  double sigma_min = 1e-5, sigma_max = 1.0;
  VeSchedule(double smin, double smax);
  double sigma(double t) const;  // sqrt(h(t)), t in [0, 1]
  double h(double t) const;
  double g(double t) const;
};

class ReplayBuffer {
 public:
  ReplayBuffer(std::int64_t capacity, std::int64_t dim, DType dtype, Context& ctx);
  // Appends the rows of x [n, dim] (on the context's device); beyond capacity the oldest rows go first.
  void push(const Tensor& x);
  std::int64_t size() const { return size_; }
  std::int64_t capacity() const { return capacity_; }
  // The stored rows [size, dim] (in ring order: which row is oldest does not matter to the estimators).
  Tensor rows() const { return data_.slice_rows(0, size_); }
  // n rows drawn uniformly with replacement (one float64 uniform per row from the context's stream).
  Tensor sample(std::int64_t n) const;
  // The same into out [n, dim] from explicit counters (read on the device when the offset says so), with
  // u float64 [n] and idx int32 [n] as workspaces: no host transfer.
  void sample_at(std::uint64_t seed, philox::Offset offset, Tensor& u, Tensor& idx, Tensor& out) const;
  // Rows, size and ring position under `prefix` (checkpoints); load checks the shape first.
  void save_state(ag::StateDict& s, const std::string& prefix) const;
  void load_state(const ag::StateDict& s, const std::string& prefix);

 private:
  Context& ctx_;
  std::int64_t capacity_, dim_, size_ = 0, next_ = 0;
  Tensor data_;
};

// log p^B(x_i) = LSE_j(-|x_i - b_j|^2 / (2 sigma_i^2)) - log M - (d_eff / 2) log(2 pi sigma_i^2) over the
// buffer rows b [M, dim]; x [B, dim], sigma [B] (positive); d_eff = dim, or (n - 1) D for mean-free
// particles.
Tensor buffer_log_density(const Tensor& x, const Tensor& buffer, const std::vector<double>& sigma,
                          double d_eff, Context& ctx);

struct ImportanceWeights {
  std::vector<double> w;     // self-normalised, sum 1 (0 at a non-finite log-weight, m / N with uniform_mix)
  double ess = 0;            // 1 / (N sum w^2), in (0, 1]
  std::int64_t dropped = 0;  // rows with a non-finite log-weight
};

// w = softmax(log_p_tilde - log_p_buffer) over the batch (host vectors; Z cancels), or within each of
// `groups` groups (row i in group i mod groups; IdemTrainOptions::iw_time_groups), each group's weights
// summing to its share of the batch; a group with no finite log-weight gets NaN weights (the training step
// then skips), whereas a batch with none throws. uniform_mix m: w = (1 - m) w + m / N (IdemTrainOptions::
// iw_uniform_mix).
ImportanceWeights iw_weights(const std::vector<double>& log_p_tilde, const std::vector<double>& log_p_buffer,
                             std::int64_t groups = 0, double uniform_mix = 0);

}  // namespace nsamp::samplers
