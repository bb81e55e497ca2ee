// Value types shared by every layer: element types, devices and shapes (rank <= 4, row-major).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace nsamp {

// Floating types carry the numbers; I32 carries indices (row gathers, scatter-adds) and nothing else.
enum class DType : std::uint8_t { F32, F64, I32 };

constexpr std::size_t dtype_size(DType t) { return t == DType::F64 ? 8 : 4; }
constexpr bool is_floating(DType t) { return t != DType::I32; }
const char* dtype_name(DType t);  // "float32" / "float64" / "int32"

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::I32;
}

enum class DeviceKind : std::uint8_t { CPU, CUDA };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;

  static constexpr Device cpu() { return Device{DeviceKind::CPU, 0}; }
  static constexpr Device cuda(int i = 0) { return Device{DeviceKind::CUDA, i}; }
  constexpr bool is_cpu() const { return kind == DeviceKind::CPU; }
  constexpr bool is_cuda() const { return kind == DeviceKind::CUDA; }
  std::string str() const;  // "cpu", "cuda:0"
  friend constexpr bool operator==(Device a, Device b) { return a.kind == b.kind && a.index == b.index; }
  friend constexpr bool operator!=(Device a, Device b) { return !(a == b); }
};

class Shape {
 public:
  static constexpr int kMaxRank = 4;

  Shape() = default;  // rank 0: a scalar with one element
  Shape(std::initializer_list<std::int64_t> dims);
  static Shape from(const std::int64_t* dims, int rank);

  int rank() const { return rank_; }
  std::int64_t operator[](int i) const;
  std::int64_t numel() const;
  // The 2-D view every kernel uses: all leading dimensions folded into rows, the last one is columns.
  std::int64_t rows() const;
  std::int64_t cols() const { return rank_ == 0 ? 1 : dims_[rank_ - 1]; }
  std::string str() const;  // "[3, 4]"

  friend bool operator==(const Shape& a, const Shape& b);
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

 private:
  std::int64_t dims_[kMaxRank] = {0, 0, 0, 0};
  int rank_ = 0;
};

}  // namespace nsamp
