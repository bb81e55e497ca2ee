#include "nsamp/core/context.h"

#include <atomic>

#include "nsamp/core/tensor.h"

#include "cuda_runtime_internal.h"
#include "nsamp/core/config.h"
#include "nsamp/core/device.h"
#include "nsamp/core/error.h"

namespace nsamp {

Context::Context(Device device, std::uint64_t seed) : Context(ContextOptions{device, seed, nullptr, false}) {}

Context::Context(const ContextOptions& o)
    : device_(o.device),
      seed_(o.seed),
      allow_tf32_(o.allow_tf32),
      host_alloc_(make_caching_allocator(Device::cpu())) {
  if (device_.is_cpu()) {
    NSAMP_CHECK(o.stream == nullptr, "Context: a CUDA stream was given for a CPU context");
    device_alloc_ = host_alloc_;
    return;
  }
  if constexpr (kCudaBuilt) {
    const int n = cuda_device_count();
    NSAMP_CHECK(device_.index >= 0 && device_.index < n, "Context: ", device_.str(), " is not available (", n,
                " CUDA device", n == 1 ? "" : "s", " visible)");
    detail::cuda_set_device(device_.index);
    device_alloc_ = make_caching_allocator(device_);
    if (o.stream) {
      stream_ = o.stream;
    } else {
      stream_ = detail::cuda_stream_create(device_.index);
      owns_stream_ = true;
    }
    try {
      cublas_workspace_ = device_alloc_->allocate(kCublasWorkspaceBytes);
      cublas_ = detail::cublas_create(stream_, allow_tf32_, cublas_workspace_, kCublasWorkspaceBytes);
    } catch (...) {
      device_alloc_->deallocate(cublas_workspace_);
      if (owns_stream_) detail::cuda_stream_destroy(stream_);
      throw;
    }
  } else {
    NSAMP_FAIL("Context: ", device_.str(), " requested, but nsamp was built without CUDA (NSAMP_CUDA=OFF)");
  }
}

Context::~Context() {
  if constexpr (kCudaBuilt) {
    if (device_.is_cuda()) {
      try {
        detail::cuda_stream_synchronize(stream_, "Context teardown");
      } catch (...) {  // a destructor reports nothing; the fault already surfaced at the failing op
      }
      detail::cublas_destroy(cublas_);
      device_alloc_->deallocate(cublas_workspace_);
      if (owns_stream_) detail::cuda_stream_destroy(stream_);
    }
  }
}

const std::shared_ptr<Allocator>& Context::allocator_for(Device device) const {
  if (device == device_) return device_alloc_;
  if (device.is_cpu()) return host_alloc_;
  NSAMP_FAIL("Context(", device_.str(), "): cannot allocate on ", device.str(),
             " (a context serves its own device and the host)");
}

StreamHandle Context::stream() const {
  NSAMP_CHECK(device_.is_cuda(), "Context: stream() requested on a CPU context");
  return stream_;
}

BlasHandle Context::cublas() const {
  NSAMP_CHECK(device_.is_cuda(), "Context: cublas() requested on a CPU context");
  return cublas_;
}

void Context::synchronize() const {
  if constexpr (kCudaBuilt) {
    if (device_.is_cuda()) detail::cuda_stream_synchronize(stream_, "Context::synchronize");
  }
}

void Context::make_current() const {
  if constexpr (kCudaBuilt) {
    if (device_.is_cuda()) detail::cuda_set_device(device_.index);
  }
}

const Tensor& Context::constant(std::uint64_t owner, int tag, const std::function<Tensor()>& make) {
  std::lock_guard<std::mutex> lock(constants_mu_);
  auto& slot = constants_[{owner, tag}];
  if (!slot) {
    slot = std::make_shared<Tensor>(make());
    NSAMP_CHECK(slot->defined() && (slot->device().is_cpu() || slot->owner() == device_alloc_.get()),
                "Context::constant: the buffer must be allocated from this context");
  }
  return *slot;
}

std::uint64_t Context::new_constant_owner() {
  static std::atomic<std::uint64_t> next{1};
  return next++;
}

}  // namespace nsamp
