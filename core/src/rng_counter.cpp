#include "nsamp/core/rng_counter.h"

#include <cstring>

#include "nsamp/core/config.h"

namespace nsamp {

RngCounter::RngCounter(Context& ctx, std::uint64_t value) : buf_(Tensor::empty(Shape{2}, DType::I32, ctx)) {
  set(value, ctx);
}

void RngCounter::set(std::uint64_t value, Context& ctx) {
  auto* p = static_cast<std::uint64_t*>(buf_.raw_data());
  if (buf_.device().is_cpu()) {
    *p = value;
    return;
  }
  if constexpr (kCudaBuilt) detail::counter_update_cuda(p, false, value, ctx);
}

void RngCounter::advance(std::uint64_t n, Context& ctx) {
  auto* p = static_cast<std::uint64_t*>(buf_.raw_data());
  if (buf_.device().is_cpu()) {
    *p += n;
    return;
  }
  if constexpr (kCudaBuilt) detail::counter_update_cuda(p, true, n, ctx);
}

std::uint64_t RngCounter::value(Context& ctx) const {
  const std::vector<std::int32_t> w = buf_.to_vector<std::int32_t>(ctx);
  std::uint64_t v = 0;
  std::memcpy(&v, w.data(), sizeof v);
  return v;
}

RngCounter::Scope::Scope(Context& ctx, const RngCounter& counter) : ctx_(ctx) {
  NSAMP_CHECK(!ctx.rng_counter(), "RngCounter::Scope: the context already draws from a device counter");
  ctx.attach_rng_counter(counter.ptr());
}

RngCounter::Scope::~Scope() { ctx_.attach_rng_counter(nullptr); }

std::uint64_t RngCounter::Scope::used() const { return ctx_.rng_counter_drawn(); }

}  // namespace nsamp
