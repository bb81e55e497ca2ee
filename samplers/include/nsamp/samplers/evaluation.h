// Evaluation protocols: the metrics of ../shared/spec/metrics.md computed on a sample set against a
// reference, the way the papers compute them, as named presets.
//
//   full  every metric once: x-W2, Sinkhorn (sde_sampler), Sinkhorn divergence (Beyond-ELBOs), MMD on
//         min(N, M, max_pairs) samples per side; energy TVD and energy W2^2 on all samples; interatomic-
//         distance TVD and W2^2 for particle systems; mode coverage for targets with a mode list (mixtures,
//         multiwell); log Z / ELBO / ESS / var(R) from log-weights.
//   idem  iDEM: x-W2 on 1000 vs 1000 samples (1024 for lj13, 10000 for lj55; at most what both sets hold),
//         energy and distance W2^2 (iDEM reports the square), distance TVD for particle systems.
//   dikl  DiKL: 10 repeats of k vs k drawn without replacement, k = min(N, M, 2000) (2000 in the paper but
//         for MW-32's 1000 evaluation samples): x-W2, energy TVD and distance TVD, reported as mean and std
//         (population std, ddof = 0, as numpy's default).
//
// Rows with a NaN or Inf coordinate are counted and excluded first (with their log-weights); samples whose
// energy is not finite are kept for the sample-space metrics and dropped from the energy metrics (counted).
// Particle systems are compared in mean-free coordinates. Subsets are drawn with a Fisher-Yates shuffle on
// std::mt19937_64(seed), so a seed gives the same subsets on every platform and device.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nsamp/core/tensor.h"
#include "nsamp/targets/target.h"

namespace nsamp::samplers {

enum class Protocol { Full, Idem, Dikl };
const char* protocol_name(Protocol p);
Protocol parse_protocol(const std::string& name);  // throws, listing the valid names

struct EvalOptions {
  Protocol protocol = Protocol::Full;
  std::uint64_t seed = 0;
  std::int64_t max_pairs = 2000;  // full: cap on the samples per side of the pairwise metrics
  // Metric names to compute (empty = all the protocol defines): x_w2, sinkhorn, sinkhorn_divergence, mmd,
  // energy_tvd, energy_w2, distance_tvd, distance_w2, modes, weights.
  std::vector<std::string> metrics;
};

// One reported number: the mean over `repeats` (1 for single-shot metrics) and the population std.
struct MetricValue {
  std::string name;
  double value = 0;
  double std = 0;
  int repeats = 1;
  std::int64_t samples = 0;  // samples per side (model) the metric saw
  std::string convention;    // which paper's convention produced it
  double seconds = 0;
  bool converged = true;  // iterative metrics (Sinkhorn): met their tolerance in every repeat
};

struct EvalReport {
  std::string target, protocol, reference_source;
  std::uint64_t seed = 0;
  std::int64_t samples_in = 0, samples_used = 0, nonfinite_rows = 0, nonfinite_energies = 0;
  std::int64_t reference_samples = 0, nonfinite_log_weights = 0;
  std::vector<MetricValue> metrics;
  std::vector<std::int64_t> mode_counts;  // for targets with a mode list
  // Metrics of the protocol left out by default, with the reason (the Sinkhorn divergence on the CPU beyond
  // 2000 pairs: three dense problems of up to 2000 iterations; ask for it with `metrics` to run it anyway).
  std::vector<std::pair<std::string, std::string>> skipped;
  // Host copies the plots use: the filtered model samples and the reference (mean-free for particles), and
  // their energies.
  std::vector<double> model, reference, model_energy, reference_energy;
  std::int64_t dim = 0;
};

// samples [N, d] and reference [M, d] (any device, float32/float64); log_w [N] optional. Computes on the
// context's device. Without a reference, the caller draws one (see reference_for).
EvalReport evaluate(const targets::Target& target, const Tensor& samples, const Tensor& reference,
                    const Tensor* log_w, const std::string& reference_source, const EvalOptions& opt,
                    Context& ctx);

// The quick summary training loops log: the mean log p (-E - log Z, -E alone when log Z is unknown) of the
// finite samples, how many were not finite, and mode coverage (20% of the expected share) for targets with a
// mode list.
struct SampleSummary {
  std::int64_t samples = 0, nonfinite = 0;
  double mean_log_p = 0;
  int modes_covered = -1, modes = 0;
};
SampleSummary summarize_samples(const targets::Target& target, const Tensor& x, Context& ctx);

// The default reference: `n` exact samples of the target (drawn from Philox seed `seed`) where it has a
// sampler, else its reference file of `split` (the test split by default: the one the papers report
// against). Returns the tensor (host, float64) and a description of its source.
Tensor reference_for(const targets::Target& target, std::int64_t n, std::uint64_t seed, std::string& source,
                     Context& ctx, targets::ReferenceSplit split = targets::ReferenceSplit::Test);

}  // namespace nsamp::samplers
