// .npy files (NumPy format 1.0/2.0/3.0): float32 and float64, little-endian, C order, rank 1 to 4.
// Anything else (bad magic, malformed header, other dtypes, Fortran order, short or over-long data) is
// rejected with an nsamp::Error naming the file and the problem; nothing is ever misread silently.
#pragma once

#include <optional>
#include <string>

#include "nsamp/core/tensor.h"

namespace nsamp {

struct NpyHeader {
  DType dtype = DType::F32;
  Shape shape;
  std::size_t data_offset = 0;  // bytes from the start of the file
};

// Parses and validates a whole .npy image held in memory (used by read_npy and by fuzzers).
NpyHeader parse_npy_header(const char* bytes, std::size_t size, const std::string& name);

// Reads into a host tensor; with `as`, converts float32 <-> float64 on load.
Tensor read_npy(const std::string& path, Context& ctx, std::optional<DType> as = std::nullopt);
// Writes a host tensor atomically (temporary file in the same folder, then rename).
void write_npy(const std::string& path, const Tensor& host_tensor);

}  // namespace nsamp
