// Tensor: a shape (rank <= 4), an element type and a device over a shared, contiguous row-major buffer from a
// context's caching allocator. Views (row ranges, reshape) share the buffer. Data never moves between host
// and device except through the explicit copy functions below.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nsamp/core/allocator.h"
#include "nsamp/core/context.h"
#include "nsamp/core/error.h"
#include "nsamp/core/types.h"

namespace nsamp {

// A buffer returned to its allocator when the last tensor viewing it goes away.
class Storage {
 public:
  Storage(std::shared_ptr<Allocator> allocator, std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return allocator_->device(); }
  const Allocator* allocator() const { return allocator_.get(); }

 private:
  std::shared_ptr<Allocator> allocator_;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // Uninitialised memory on `device` (default: the context's own device).
  static Tensor empty(const Shape& shape, DType dtype, Context& ctx);
  static Tensor empty(const Shape& shape, DType dtype, Device device, Context& ctx);
  static Tensor zeros(const Shape& shape, DType dtype, Context& ctx);
  static Tensor zeros(const Shape& shape, DType dtype, Device device, Context& ctx);
  // Copies host values into a new tensor on `device` (explicit host-to-device copy).
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device, Context& ctx);

  bool defined() const { return static_cast<bool>(storage_); }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  std::int64_t dim(int i) const { return shape_[i]; }
  std::int64_t numel() const { return shape_.numel(); }
  std::int64_t rows() const { return shape_.rows(); }
  std::int64_t cols() const { return shape_.cols(); }
  DType dtype() const { return dtype_; }
  Device device() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  std::string desc() const;  // "float32[4, 3]@cuda:0", for error messages

  void* raw_data() const;
  template <class T>
  T* data() const {
    NSAMP_CHECK(dtype_of<T>() == dtype_, "Tensor::data: requested ", dtype_name(dtype_of<T>()), " from a ",
                desc());
    return static_cast<T*>(raw_data());
  }

  // Views sharing the buffer.
  Tensor slice_rows(std::int64_t begin, std::int64_t end) const;  // along dimension 0
  Tensor reshape(const Shape& shape) const;                       // same element count
  bool same_storage(const Tensor& other) const { return storage_ && storage_ == other.storage_; }
  std::int64_t storage_offset() const { return offset_; }  // in elements
  // The allocator (and so the context) that owns the buffer.
  const Allocator* owner() const { return storage_ ? storage_->allocator() : nullptr; }

  // Explicit copies. Copying to host memory synchronises the context's stream, so the data can be read on
  // return.
  Tensor to(Device device, Context& ctx) const;
  Tensor clone(Context& ctx) const { return to(device(), ctx); }
  template <class T>
  std::vector<T> to_vector(Context& ctx) const;
  // The values widened to float64, whatever the dtype (a host copy, like to_vector).
  std::vector<double> to_doubles(Context& ctx) const;

 private:
  std::shared_ptr<Storage> storage_;
  std::int64_t offset_ = 0;  // in elements
  Shape shape_;
  DType dtype_ = DType::F32;
};

// dst <- src (same dtype and element count; any pair of host/device placements).
void copy(const Tensor& src, Tensor& dst, Context& ctx);
// Sets every element to zero (byte-wise; also valid for float and double).
void zero(Tensor& t, Context& ctx);

// Checks used at op boundaries: throw nsamp::Error naming the op and the tensors.
void check_defined(const char* op, const Tensor& t, const char* name);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
// A device tensor must come from this context: its buffer is cached for the context's own stream.
void check_on_context(const char* op, const Tensor& t, const Context& ctx);
// Outputs may alias an input exactly (in-place ops) but never overlap it partly: the GPU would race.
void check_no_partial_overlap(const char* op, const Tensor& out, const Tensor& in, const char* in_name);

}  // namespace nsamp
