// Value types, device discovery and names.
#include "nsamp/core/device.h"

#include <cstdlib>
#include <limits>

#include "cuda_runtime_internal.h"
#include "nsamp/core/config.h"
#include "nsamp/core/error.h"

namespace nsamp {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "float32";
    case DType::F64:
      return "float64";
    default:
      return "int32";
  }
}

std::string Device::str() const { return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index); }

Shape::Shape(std::initializer_list<std::int64_t> dims) {
  NSAMP_CHECK(dims.size() <= static_cast<std::size_t>(kMaxRank), "Shape: rank ", dims.size(),
              " exceeds the maximum rank ", kMaxRank);
  for (std::int64_t d : dims) {
    NSAMP_CHECK(d >= 0, "Shape: negative dimension ", d);
    dims_[rank_++] = d;
  }
  (void)numel();  // validates that the element count fits in int64
}

Shape Shape::from(const std::int64_t* dims, int rank) {
  NSAMP_CHECK(rank >= 0 && rank <= kMaxRank, "Shape: rank ", rank, " outside [0, ", kMaxRank, "]");
  Shape s;
  for (int i = 0; i < rank; ++i) {
    NSAMP_CHECK(dims[i] >= 0, "Shape: negative dimension ", dims[i]);
    s.dims_[s.rank_++] = dims[i];
  }
  (void)s.numel();
  return s;
}

std::int64_t Shape::operator[](int i) const {
  NSAMP_CHECK(i >= 0 && i < rank_, "Shape", str(), ": dimension index ", i, " out of range");
  return dims_[i];
}

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (int i = 0; i < rank_; ++i) {
    if (dims_[i] != 0 && n > std::numeric_limits<std::int64_t>::max() / dims_[i]) {
      NSAMP_FAIL("Shape: element count overflows int64");
    }
    n *= dims_[i];
  }
  return n;
}

std::int64_t Shape::rows() const {
  std::int64_t r = 1;
  for (int i = 0; i + 1 < rank_; ++i) r *= dims_[i];
  return r;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
  return s + "]";
}

bool operator==(const Shape& a, const Shape& b) {
  if (a.rank_ != b.rank_) return false;
  for (int i = 0; i < a.rank_; ++i)
    if (a.dims_[i] != b.dims_[i]) return false;
  return true;
}

int cuda_device_count() {
  if constexpr (kCudaBuilt) return detail::cuda_device_count();
  return 0;
}

std::vector<CudaDeviceInfo> cuda_devices() {
  std::vector<CudaDeviceInfo> out;
  if constexpr (kCudaBuilt) {
    for (int i = 0, n = cuda_device_count(); i < n; ++i) out.push_back(detail::cuda_device_info(i));
  }
  return out;
}

Device default_device() { return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu(); }

Device parse_device(const std::string& s) {
  if (s == "auto") return default_device();
  if (s == "cpu") return Device::cpu();
  if (s == "cuda") return Device::cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5) {
    const std::string idx = s.substr(5);
    char* end = nullptr;
    const long v = std::strtol(idx.c_str(), &end, 10);
    if (end && *end == '\0' && v >= 0 && v < 1024) return Device::cuda(static_cast<int>(v));
  }
  NSAMP_FAIL("device: '", s, "' is not a device (expected auto, cpu, cuda or cuda:N)");
}

}  // namespace nsamp
