#include "nsamp/core/tensor.h"
#include "nsamp/core/nvtx.h"

#include <cstring>

#include "cuda_runtime_internal.h"
#include "nsamp/core/config.h"

namespace nsamp {

Storage::Storage(std::shared_ptr<Allocator> allocator, std::size_t bytes)
    : allocator_(std::move(allocator)), bytes_(bytes) {
  data_ = allocator_->allocate(bytes);
}

Storage::~Storage() { allocator_->deallocate(data_); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Context& ctx) {
  return empty(shape, dtype, ctx.device(), ctx);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device, Context& ctx) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(ctx.allocator_for(device), t.nbytes());
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Context& ctx) {
  return zeros(shape, dtype, ctx.device(), ctx);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device, Context& ctx) {
  Tensor t = empty(shape, dtype, device, ctx);
  zero(t, ctx);
  return t;
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device, Context& ctx) {
  NSAMP_CHECK(static_cast<std::int64_t>(values.size()) == shape.numel(),
              "Tensor::from_vector: ", values.size(), " values for shape ", shape.str());
  Tensor t = empty(shape, dtype_of<T>(), device, ctx);
  if (device == ctx.device()) ctx.count_host_transfer();
  if (device.is_cpu()) {
    if (!values.empty()) std::memcpy(t.raw_data(), values.data(), t.nbytes());
  } else if constexpr (kCudaBuilt) {
    detail::cuda_memcpy(t.raw_data(), false, values.data(), true, t.nbytes(), ctx.stream());
  }
  return t;
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&, Device, Context&);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&, Device, Context&);
template Tensor Tensor::from_vector<std::int32_t>(const std::vector<std::int32_t>&, const Shape&, Device,
                                                  Context&);

Device Tensor::device() const {
  NSAMP_CHECK(defined(), "Tensor::device: undefined tensor");
  return storage_->device();
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype_)) + shape_.str() + "@" + device().str();
}

void* Tensor::raw_data() const {
  NSAMP_CHECK(defined(), "Tensor::data: undefined tensor");
  if (!storage_->data()) return nullptr;
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<std::int64_t>(dtype_size(dtype_));
}

Tensor Tensor::slice_rows(std::int64_t begin, std::int64_t end) const {
  NSAMP_CHECK(defined() && rank() >= 1, "Tensor::slice_rows: needs a tensor of rank >= 1, got ", desc());
  NSAMP_CHECK(0 <= begin && begin <= end && end <= shape_[0], "Tensor::slice_rows: range [", begin, ", ", end,
              ") outside dimension 0 of ", desc());
  std::int64_t dims[Shape::kMaxRank];
  for (int i = 0; i < rank(); ++i) dims[i] = shape_[i];
  const std::int64_t row_elems = shape_[0] == 0 ? 0 : numel() / shape_[0];
  dims[0] = end - begin;
  Tensor v = *this;
  v.shape_ = Shape::from(dims, rank());
  v.offset_ = offset_ + begin * row_elems;
  return v;
}

Tensor Tensor::reshape(const Shape& shape) const {
  NSAMP_CHECK(defined(), "Tensor::reshape: undefined tensor");
  NSAMP_CHECK(shape.numel() == numel(), "Tensor::reshape: cannot view ", desc(), " as ", shape.str());
  Tensor v = *this;
  v.shape_ = shape;
  return v;
}

Tensor Tensor::to(Device device, Context& ctx) const {
  NSAMP_CHECK(defined(), "Tensor::to: undefined tensor");
  Tensor out = empty(shape_, dtype_, device, ctx);
  copy(*this, out, ctx);
  return out;
}

template <class T>
std::vector<T> Tensor::to_vector(Context& ctx) const {
  NSAMP_CHECK(dtype_of<T>() == dtype_, "Tensor::to_vector: requested ", dtype_name(dtype_of<T>()), " from a ",
              desc());
  std::vector<T> out(static_cast<std::size_t>(numel()));
  if (out.empty()) return out;
  if (device() == ctx.device()) ctx.count_host_transfer();
  if (device().is_cpu()) {
    std::memcpy(out.data(), raw_data(), nbytes());
  } else if constexpr (kCudaBuilt) {
    check_on_context("Tensor::to_vector", *this, ctx);
    detail::cuda_memcpy(out.data(), true, raw_data(), false, nbytes(), ctx.stream());
  }
  return out;
}
std::vector<double> Tensor::to_doubles(Context& ctx) const {
  switch (dtype_) {
    case DType::F64:
      return to_vector<double>(ctx);
    case DType::F32: {
      const std::vector<float> v = to_vector<float>(ctx);
      return {v.begin(), v.end()};
    }
    case DType::I32: {
      const std::vector<std::int32_t> v = to_vector<std::int32_t>(ctx);
      return {v.begin(), v.end()};
    }
  }
  return {};
}

template std::vector<float> Tensor::to_vector<float>(Context&) const;
template std::vector<double> Tensor::to_vector<double>(Context&) const;
template std::vector<std::int32_t> Tensor::to_vector<std::int32_t>(Context&) const;

void copy(const Tensor& src, Tensor& dst, Context& ctx) {
  check_defined("copy", src, "src");
  check_defined("copy", dst, "dst");
  check_same_dtype("copy", src, dst);
  NSAMP_CHECK(src.numel() == dst.numel(), "copy: element counts differ: src ", src.desc(), ", dst ",
              dst.desc());
  check_no_partial_overlap("copy", dst, src, "src");
  if (src.numel() == 0 || src.raw_data() == dst.raw_data()) return;
  const bool src_host = src.device().is_cpu(), dst_host = dst.device().is_cpu();
  if (src_host && dst_host) {
    std::memmove(dst.raw_data(), src.raw_data(), src.nbytes());
    return;
  }
  if (!src_host) check_on_context("copy", src, ctx);
  if (!dst_host) check_on_context("copy", dst, ctx);
  if (src_host != dst_host)
    ctx.count_host_transfer();  // as to_vector / from_vector: a captured step refuses it
  if constexpr (kCudaBuilt) {
    NSAMP_RANGE(src_host   ? "copy/host_to_device"
                : dst_host ? "copy/device_to_host"
                           : "copy/device_to_device");
    detail::cuda_memcpy(dst.raw_data(), dst_host, src.raw_data(), src_host, src.nbytes(), ctx.stream());
  }
}

void zero(Tensor& t, Context& ctx) {
  check_defined("zero", t, "t");
  if (t.numel() == 0) return;
  if (t.device().is_cpu()) {
    std::memset(t.raw_data(), 0, t.nbytes());
    return;
  }
  check_on_context("zero", t, ctx);
  if constexpr (kCudaBuilt) {
    NSAMP_RANGE("fill/zero");
    detail::cuda_memset_zero(t.raw_data(), t.nbytes(), ctx.stream());
  }
}

void check_defined(const char* op, const Tensor& t, const char* name) {
  NSAMP_CHECK(t.defined(), op, ": argument '", name, "' is an undefined tensor");
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  NSAMP_CHECK(a.device() == b.device(), op, ": tensors on different devices: ", a.desc(), " and ", b.desc());
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  NSAMP_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a.desc(), " and ", b.desc());
}

void check_on_context(const char* op, const Tensor& t, const Context& ctx) {
  if (t.device().is_cpu()) return;
  NSAMP_CHECK(t.device() == ctx.device(), op, ": ", t.desc(), " is not on the context's device ",
              ctx.device().str());
  NSAMP_CHECK(
      t.owner() == &ctx.allocator(), op, ": ", t.desc(),
      " belongs to another context (device memory is cached per context and its stream); copy it first");
}

void check_no_partial_overlap(const char* op, const Tensor& out, const Tensor& in, const char* in_name) {
  if (!out.same_storage(in) || out.numel() == 0 || in.numel() == 0) return;
  const std::int64_t a0 = out.storage_offset(), a1 = a0 + out.numel();
  const std::int64_t b0 = in.storage_offset(), b1 = b0 + in.numel();
  const bool exact = a0 == b0 && a1 == b1;
  NSAMP_CHECK(exact || a1 <= b0 || b1 <= a0, op, ": the output ", out.desc(), " overlaps ", in_name, " ",
              in.desc(), " partly (only exact in-place aliasing is allowed)");
}

}  // namespace nsamp
