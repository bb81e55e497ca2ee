// Named parameters in one file, in the safetensors format (an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the raw little-endian data), which Python's safetensors
// reads too.
#pragma once

#include <string>
#include <vector>

#include "nsamp/autograd/tape.h"

namespace nsamp::ag {

// Writes every parameter's value under its name (names must be unique and non-empty), atomically.
void save_parameters(const std::string& path, const std::vector<Var>& params, Context& ctx);
// Reads values into the given parameters by name, on their own devices. Every parameter must be in the file
// with its dtype and shape; a missing name, an extra tensor (but a checkpoint's training state, named
// "state/..."), a shape or dtype mismatch or a damaged file throws before any parameter is changed.
void load_parameters(const std::string& path, std::vector<Var>& params, Context& ctx);

}  // namespace nsamp::ag
