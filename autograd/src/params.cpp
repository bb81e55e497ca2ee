// Parameters in safetensors files (through StateDict).
#include "nsamp/autograd/params.h"

#include "nsamp/autograd/state_dict.h"

namespace nsamp::ag {

void save_parameters(const std::string& path, const std::vector<Var>& params, Context& ctx) {
  StateDict s;
  put_parameters(s, params, ctx);
  s.save(path);
}

void load_parameters(const std::string& path, std::vector<Var>& params, Context& ctx) {
  const StateDict s = StateDict::load(path, ctx);
  get_parameters(s, params, ctx, {"state/"});
}

}  // namespace nsamp::ag
