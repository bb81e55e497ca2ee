#include "nsamp/targets/reference.h"

#include <cstdlib>
#include <filesystem>

#include "nsamp/core/npy.h"

#ifndef NSAMP_DEFAULT_DATA_DIR
#define NSAMP_DEFAULT_DATA_DIR "../shared/data"
#endif

namespace nsamp::targets {

std::string data_dir() {
  const char* env = std::getenv("NSAMP_DATA_DIR");
  return env && *env ? std::string(env) : std::string(NSAMP_DEFAULT_DATA_DIR);
}

namespace {
template <class T>
void centre(T* x, std::int64_t N, int n, int D) {
  for (std::int64_t b = 0; b < N; ++b) {
    T* s = x + b * n * D;
    for (int k = 0; k < D; ++k) {
      double m = 0;
      for (int i = 0; i < n; ++i) m += s[i * D + k];
      m /= n;
      for (int i = 0; i < n; ++i) s[i * D + k] = static_cast<T>(s[i * D + k] - m);
    }
  }
}
}  // namespace

void remove_centre_of_mass(Tensor& x, const Particles& p) {
  NSAMP_CHECK(x.device().is_cpu(), "remove_centre_of_mass: needs a host tensor, got ", x.desc());
  NSAMP_CHECK(p.n > 0 && x.rank() == 2 && x.cols() == std::int64_t(p.n) * p.spatial,
              "remove_centre_of_mass: ", x.desc(), " is not [N, ", p.n, " x ", p.spatial, "]");
  if (x.dtype() == DType::F32)
    centre(x.data<float>(), x.rows(), p.n, p.spatial);
  else
    centre(x.data<double>(), x.rows(), p.n, p.spatial);
}

std::string reference_file(const Target& target, ReferenceSplit split) {
  return split == ReferenceSplit::Test ? target.test_reference_file() : target.reference_file();
}

Tensor load_reference(const Target& target, ReferenceSplit split, Context& ctx, DType dtype,
                      const std::string& path) {
  std::string file = path;
  if (file.empty()) {
    const std::string name = reference_file(target, split);
    NSAMP_CHECK(!name.empty(), "load_reference(", target.name(),
                "): the target has no reference file; pass one explicitly");
    file = data_dir() + "/" + name;
    NSAMP_CHECK(std::filesystem::exists(file), "load_reference(", target.name(), "): ", file,
                " not found (set $NSAMP_DATA_DIR to the folder that holds it; `nsamp reference --target ",
                target.name(), " --out ", file, "` writes a checked MCMC reference set)");
  }
  Tensor x = read_npy(file, ctx, dtype);
  NSAMP_CHECK(x.rank() == 2 && x.cols() == target.dim(), "load_reference(", target.name(), "): ", file,
              " holds ", x.shape().str(), ", expected [N, ", target.dim(), "]");
  if (target.particles().n > 0) remove_centre_of_mass(x, target.particles());
  return x;
}

}  // namespace nsamp::targets
