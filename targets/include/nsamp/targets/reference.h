// Reference sample sets (shared/data) for the targets without an exact sampler.
#pragma once

#include <string>

#include "nsamp/targets/target.h"

namespace nsamp::targets {

// Where reference files are looked up: $NSAMP_DATA_DIR when set, else this build's default, the shared/data
// folder beside the source tree.
std::string data_dir();

// Reads the target's reference file of `split` (or `path` when given) into a host tensor [N, dim] of
// `dtype`. Particle systems come back mean-free (each sample's centre of mass removed per spatial axis), as
// the metrics expect.
Tensor load_reference(const Target& target, ReferenceSplit split, Context& ctx, DType dtype = DType::F32,
                      const std::string& path = "");
// The file name (in data_dir()) of the target's reference set of `split`; empty if it has none.
std::string reference_file(const Target& target, ReferenceSplit split);

// Subtracts each sample's centre of mass (per spatial axis) from a host tensor [N, n * spatial], in place.
void remove_centre_of_mass(Tensor& x, const Particles& p);

}  // namespace nsamp::targets
