// libFuzzer target: the .npy reader. Any input must either parse or be rejected with nsamp::Error; a crash,
// a sanitizer report or another exception is a bug. Headers that parse are also read in full from a file
// (both dtypes, with and without conversion), which exercises the data-size checks.
#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "nsamp/core/error.h"
#include "nsamp/core/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nsamp;
  try {
    parse_npy_header(reinterpret_cast<const char*>(data), size, "fuzz input");
  } catch (const Error&) {
    return 0;
  }
  const std::string path =
      (std::filesystem::temp_directory_path() / ("nsamp_fuzz_npy_" + std::to_string(::getpid()) + ".npy"))
          .string();
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    Context ctx(Device::cpu());
    for (int as = 0; as < 3; ++as) {
      try {
        if (as == 0)
          read_npy(path, ctx);
        else
          read_npy(path, ctx, as == 1 ? DType::F32 : DType::F64);
      } catch (const Error&) {
      }
    }
    std::remove(path.c_str());
  }
  return 0;
}
