// Figures for `nsamp eval --plot`: PNG files drawn with Cairo (Debian's libcairo2-dev). 2-D targets: the
// model samples over the target's log-density (filled bands with contour lines); other targets: histograms
// of the energy and of the interatomic distances (particle systems) or of the first coordinate, model over
// reference. Builds without Cairo report plots_available() == false and write_eval_plot throws.
#pragma once

#include <string>

#include "nsamp/samplers/evaluation.h"

namespace nsamp::apps {

bool plots_available();
void write_eval_plot(const targets::Target& target, const samplers::EvalReport& report,
                     const std::string& path, Context& ctx);

}  // namespace nsamp::apps
