// libFuzzer target: run configurations (apps/run_config.h). The input is a JSON overlay, optionally followed
// by a line "--" and then one `--set key=value` assignment per line; every key is then read back with its
// type's getter. Bad input must be rejected with nsamp::Error; anything else is a bug.
#include <cstdint>
#include <sstream>
#include <string>

#include "../../apps/run_config.h"
#include "nsamp/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nsamp;
  const std::string text(reinterpret_cast<const char*>(data), size);
  apps::RunConfig c(
      {{"method", "idem"}, {"K", 500}, {"lr", 5e-4}, {"plateau", false}, {"seed", 0}, {"emb", 128}},
      {{"method", "{idem, iwsm}"},
       {"K", "int [1, inf)"},
       {"lr", "real (0, 1]"},
       {"seed", "int [0, 9007199254740992]"},
       {"emb", "int [4, inf) even"}});
  const std::size_t split = text.find("\n--\n");
  try {
    c.overlay_text(text.substr(0, split), "fuzz input");
  } catch (const Error&) {
  }
  if (split != std::string::npos) {
    std::istringstream lines(text.substr(split + 4));
    for (std::string line; std::getline(lines, line);) {
      try {
        c.set(line);
      } catch (const Error&) {
      }
    }
  }
  try {
    (void)c.str("method");
    (void)c.integer("K");
    (void)c.num("lr");
    (void)c.flag("plateau");
    (void)c.integer("seed");
    (void)c.integer("emb");
    c.check_ranges("fuzz input");
  } catch (const Error&) {
  }
  return 0;
}
