// iDEM / IW-SM family: the per-step numbers of an inner step (idem_iwsm.md) computed where the batch lives,
// so that the step makes no host transfer and can be replayed as a CUDA graph: the VE noise levels of the
// drawn times, the replay-buffer rows to start from, IW-SM's self-normalised weights with their ESS and the
// loss weights, and the running sums the log reports. Arithmetic in float64, rounded to the batch's dtype
// where a tensor of that dtype is written, in the order the host loop used before. The two backends compute
// the same formulas in the same order; CUDA's log / expm1 and the multiply-adds nvcc fuses can differ from
// the CPU's in the last bits.
#pragma once

#include <cstdint>

#include "nsamp/core/hd.h"
#include "nsamp/core/tensor.h"

namespace nsamp::kernels {

struct VeLevels {
  double sigma_min = 1e-5, sigma_max = 1.0;  // h(t) = sigma_min^2 (exp(2 t log(sigma_max / sigma_min)) - 1)
  double coord_scale = 1;                    // a: target units = a * training units
  double d_eff = 1;                          // degrees of freedom of the noise (mean-free: (n - 1) D)
  std::int64_t buffer_rows = 1;              // N of the buffer density
  bool lambda_h = true;                      // lambda(t) = h(t) + lambda_eps, else 1
  double lambda_eps = 0;
  // 0: point i's time is u_i; G >= 1: the batch in G groups (point i in group i mod G) sharing one time each,
  // stratified over [0, 1): t_i = (g + u_g) / G with g = i mod G.
  std::int64_t time_groups = 0;
};

// From uniforms u (float64 [B], as time_groups says: t = u, or one stratified time per group): t_col [B, 1]
// (t in the batch's dtype, the network's input), sigma
// [B, 1] = sqrt(h(t)), sigma_x [B] = a sigma (target units), the buffer density's kernel scale 0.5 / sigma^2
// [B] (all in the dtype of t_col), its log-normaliser shift = -log N - d_eff / 2 log(2 pi sigma^2) and
// lambda(t) (float64 [B] each).
void idem_noise_levels(const Tensor& t, const VeLevels& v, Tensor& t_col, Tensor& sigma, Tensor& sigma_x,
                       Tensor& scale, Tensor& shift, Tensor& lambda, Context& ctx);

// The loss weights coef [B] = lambda w / dim (coef's dtype) and the normalised ESS 1 / (B sum w^2) (float64
// [1]). With log_p (log p~_t, [B]) and kernel_sum ([B], the buffer's log-kernel sum), w are the
// self-normalised weights of l = log_p - log p^B, log p^B = kernel_sum + shift rounded to their dtype:
// over the whole batch (groups 0 or 1), or within each of `groups` groups (point i in group i mod groups, as
// VeLevels::time_groups), each group's weights summing to its share n_g / B of the batch. Entries with a
// non-finite l weigh 0, and where none of a group's is finite its weights are NaN (the loss is then NaN and
// the optimiser skips the step). With uniform_mix m in [0, 1], w = (1 - m) w + m / B (defensive_weight: a
// share m of every group's weight spread evenly, as iDEM's; m = 0 leaves w bit for bit, m = 1 gives iDEM's
// 1 / B exactly except in a group with no finite l, which stays NaN), and the ESS is that of the mixed
// weights. Without log_p, w = 1/B and the ESS is 1.
void idem_loss_weights(const Tensor* log_p, const Tensor* kernel_sum, const Tensor& shift,
                       const Tensor& lambda, double dim, Tensor& coef, Tensor& ess, Context& ctx,
                       std::int64_t groups = 0, double uniform_mix = 0);

// Replay-buffer rows from uniforms u (float64 [B]): idx = min(size - 1, floor(u size)), int32 [B].
void buffer_indices(const Tensor& u, std::int64_t size, Tensor& idx, Context& ctx);

// The training log's running sums: acc (float64 [4]) += (loss, ess, the loss if finite else 0, 1 if finite
// else 0); loss is one float value, ess one float64.
void idem_accumulate(const Tensor& loss, const Tensor& ess, Tensor& acc, Context& ctx);

// ---- element math (host + device)

struct VeElement {
  double t_value, sigma, sigma_x, scale, shift, lambda;
};

NSAMP_HD_INLINE VeElement ve_element(double t, const VeLevels& v) {
  const double ld = hd::log(v.sigma_max / v.sigma_min);
  const double h = v.sigma_min * v.sigma_min * hd::expm1(2 * t * ld);
  const double s = hd::sqrt(h);
  constexpr double kPi = 3.14159265358979323846;
  return {t,
          s,
          v.coord_scale * s,
          0.5 / (s * s),
          -hd::log(double(v.buffer_rows)) - 0.5 * v.d_eff * hd::log(2 * kPi * s * s),
          v.lambda_h ? h + v.lambda_eps : 1.0};
}

// Point i's time from the uniforms u (VeLevels::time_groups).
NSAMP_HD_INLINE double group_time(const double* u, std::int64_t i, std::int64_t groups) {
  return groups > 0 ? (double(i % groups) + u[i % groups]) / double(groups) : u[i];
}

// Members of group g of `groups` in a batch of B (g < B): g, g + groups, ...
NSAMP_HD_INLINE std::int64_t group_size(std::int64_t B, std::int64_t g, std::int64_t groups) {
  return (B - 1 - g) / groups + 1;
}

// A self-normalised weight w of a batch of B mixed with the uniform 1 / B (idem_loss_weights' uniform_mix).
NSAMP_HD_INLINE double defensive_weight(double w, double mix, std::int64_t B) {
  return (1 - mix) * w + mix / double(B);
}

// Entry i of idem_noise_levels' outputs.
template <class T>
NSAMP_HD_INLINE void store_ve(const VeElement& e, std::int64_t i, T* tc, T* sg, T* sx, T* sc, double* sh,
                              double* la) {
  tc[i] = T(e.t_value);
  sg[i] = T(e.sigma);
  sx[i] = T(e.sigma_x);
  sc[i] = T(e.scale);
  sh[i] = e.shift;
  la[i] = e.lambda;
}

namespace detail {
void idem_noise_levels_cuda(const Tensor& t, const VeLevels& v, Tensor& t_col, Tensor& sigma, Tensor& sigma_x,
                            Tensor& scale, Tensor& shift, Tensor& lambda, Context& ctx);
void idem_loss_weights_cuda(const Tensor* log_p, const Tensor* kernel_sum, const Tensor& shift,
                            const Tensor& lambda, double dim, Tensor& coef, Tensor& ess, Context& ctx,
                            std::int64_t groups, double uniform_mix);
void buffer_indices_cuda(const Tensor& u, std::int64_t size, Tensor& idx, Context& ctx);
void idem_accumulate_cuda(const Tensor& loss, const Tensor& ess, Tensor& acc, Context& ctx);
}  // namespace detail

}  // namespace nsamp::kernels
