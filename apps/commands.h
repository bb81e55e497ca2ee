// The nsamp subcommands: each registers its flags on the CLI11 app and returns the action to run once parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace nsamp::apps {

using Action = std::function<int()>;

Action add_info(CLI::App& app);
Action add_energy(CLI::App& app);
Action add_sample_target(CLI::App& app);
Action add_reference(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_train(CLI::App& app);
Action add_sample(CLI::App& app);
Action add_bench(CLI::App& app);

}  // namespace nsamp::apps
