#include "nsamp/samplers/idem.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "device_values.h"
#include "nsamp/core/fill.h"
#include "nsamp/kernels/idem.h"
#include "nsamp/kernels/index.h"
#include "nsamp/kernels/transport.h"

namespace nsamp::samplers {

VeSchedule::VeSchedule(double smin, double smax) : sigma_min(smin), sigma_max(smax) {
  NSAMP_CHECK(smin > 0 && smax > smin && std::isfinite(smax),
              "VE schedule: need 0 < sigma_min < sigma_max, got ", smin, " and ", smax);
}

double VeSchedule::h(double t) const {
  const double ld = std::log(sigma_max / sigma_min);
  return sigma_min * sigma_min * std::expm1(2 * t * ld);
}

double VeSchedule::sigma(double t) const { return std::sqrt(h(t)); }

double VeSchedule::g(double t) const {
  const double ld = std::log(sigma_max / sigma_min);
  return sigma_min * std::exp(t * ld) * std::sqrt(2 * ld);
}

ReplayBuffer::ReplayBuffer(std::int64_t capacity, std::int64_t dim, DType dtype, Context& ctx)
    : ctx_(ctx), capacity_(capacity), dim_(dim) {
  NSAMP_CHECK(capacity >= 1 && dim >= 1, "ReplayBuffer: capacity and dim must be positive, got ", capacity,
              " and ", dim);
  data_ = Tensor::empty(Shape{capacity, dim}, dtype, ctx);
}

void ReplayBuffer::push(const Tensor& x) {
  NSAMP_CHECK(x.defined() && x.rank() == 2 && x.cols() == dim_ && x.dtype() == data_.dtype(),
              "ReplayBuffer::push: rows must be [n, ", dim_, "] ", dtype_name(data_.dtype()), ", got ",
              x.desc());
  std::int64_t n = x.rows(), from = 0;
  if (n > capacity_) from = n - capacity_, n = capacity_;  // only the newest capacity rows survive
  while (n > 0) {
    const std::int64_t k = std::min(n, capacity_ - next_);
    Tensor dst = data_.slice_rows(next_, next_ + k);
    copy(x.slice_rows(from, from + k), dst, ctx_);
    next_ = (next_ + k) % capacity_;
    size_ = std::min(capacity_, size_ + k);
    from += k;
    n -= k;
  }
}

void ReplayBuffer::save_state(ag::StateDict& s, const std::string& prefix) const {
  s.put(prefix + "rows", data_.slice_rows(0, size_), ctx_);
  s.set_int(prefix + "size", size_);
  s.set_int(prefix + "next", next_);
}

void ReplayBuffer::load_state(const ag::StateDict& s, const std::string& prefix) {
  const std::int64_t size = s.get_int(prefix + "size"), next = s.get_int(prefix + "next");
  const Tensor& rows = s.at(prefix + "rows");
  NSAMP_CHECK(size >= 0 && size <= capacity_ && next >= 0 && next < capacity_ && rows.rank() == 2 &&
                  rows.rows() == size && rows.cols() == dim_ && rows.dtype() == data_.dtype(),
              s.source(), ": replay buffer state (", rows.desc(), ", size ", size, ", next ", next,
              ") does not fit a buffer of ", capacity_, " x ", dim_, " ", dtype_name(data_.dtype()));
  if (size > 0) {
    Tensor dst = data_.slice_rows(0, size);
    copy(rows, dst, ctx_);
  }
  size_ = size;
  next_ = next;
}

Tensor ReplayBuffer::sample(std::int64_t n) const {
  NSAMP_CHECK(n >= 0, "ReplayBuffer::sample: n must be >= 0, got ", n);
  Tensor u = Tensor::empty(Shape{n}, DType::F64, ctx_), idx = Tensor::empty(Shape{n}, DType::I32, ctx_),
         out = Tensor::empty(Shape{n, dim_}, data_.dtype(), ctx_);
  sample_at(ctx_.seed(), ctx_.reserve_rng(rng_counters(n, DType::F64)), u, idx, out);
  return out;
}

void ReplayBuffer::sample_at(std::uint64_t seed, philox::Offset offset, Tensor& u, Tensor& idx,
                             Tensor& out) const {
  NSAMP_CHECK(size_ > 0, "ReplayBuffer::sample: the buffer is empty");
  if (u.numel() == 0) return;
  fill_uniform_at(u, seed, offset, ctx_);
  kernels::buffer_indices(u, size_, idx, ctx_);
  kernels::gather_rows(data_, idx, out, ctx_);
}

Tensor buffer_log_density(const Tensor& x, const Tensor& buffer, const std::vector<double>& sigma,
                          double d_eff, Context& ctx) {
  NSAMP_CHECK(std::int64_t(sigma.size()) == x.rows(), "buffer_log_density: one sigma per row of x (",
              x.rows(), "), got ", sigma.size());
  NSAMP_CHECK(buffer.defined() && buffer.rows() > 0, "buffer_log_density: the buffer is empty");
  std::vector<double> scale(sigma.size()), shift(sigma.size());
  for (std::size_t i = 0; i < sigma.size(); ++i) {
    NSAMP_CHECK(sigma[i] > 0 && std::isfinite(sigma[i]), "buffer_log_density: sigma must be positive, row ",
                i, " has ", sigma[i]);
    scale[i] = 0.5 / (sigma[i] * sigma[i]);
    shift[i] = -std::log(double(buffer.rows())) - 0.5 * d_eff * std::log(2 * M_PI * sigma[i] * sigma[i]);
  }
  Tensor out = Tensor::empty(Shape{x.rows()}, x.dtype(), ctx);
  kernels::log_kernel_sum(x, buffer, detail::device_values(scale, Shape{x.rows()}, x.dtype(), ctx), out, ctx);
  std::vector<double> v = out.to_doubles(ctx);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] += shift[i];
  return detail::device_values(v, Shape{x.rows()}, x.dtype(), ctx);
}

ImportanceWeights iw_weights(const std::vector<double>& log_p_tilde, const std::vector<double>& log_p_buffer,
                             std::int64_t groups, double uniform_mix) {
  NSAMP_CHECK(log_p_tilde.size() == log_p_buffer.size() && !log_p_tilde.empty(),
              "iw_weights: need two equal, non-empty sets of log densities, got ", log_p_tilde.size(),
              " and ", log_p_buffer.size());
  ImportanceWeights r;
  for (std::size_t i = 0; i < log_p_tilde.size(); ++i)
    if (!std::isfinite(log_p_tilde[i] - log_p_buffer[i])) ++r.dropped;
  NSAMP_CHECK(r.dropped < std::int64_t(log_p_tilde.size()),
              "iw_weights: no finite log-weight in the batch of ", log_p_tilde.size());
  // The training step's own weights (kernels::idem_loss_weights) with lambda = 1, dim = 1 and no shift.
  Context host(Device::cpu());
  const Shape n{std::int64_t(log_p_tilde.size())};
  const Tensor lp = Tensor::from_vector(log_p_tilde, n, Device::cpu(), host),
               lb = Tensor::from_vector(log_p_buffer, n, Device::cpu(), host),
               zero = Tensor::zeros(n, DType::F64, host);
  Tensor one = Tensor::empty(n, DType::F64, host), w = Tensor::empty(n, DType::F64, host),
         ess = Tensor::empty(Shape{1}, DType::F64, host);
  fill_constant(one, 1.0, host);
  kernels::idem_loss_weights(&lp, &lb, zero, one, 1.0, w, ess, host, groups, uniform_mix);
  r.w = w.to_vector<double>(host);
  r.ess = ess.to_vector<double>(host)[0];
  return r;
}

}  // namespace nsamp::samplers
