// The nsamp subcommands: each registers its flags on the CLI11 app and returns the action to run once parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>

namespace nsamp::apps {

using Action = std::function<int()>;

// Whole-number checks with plain messages ("-3 is not a whole number >= 0"; CLI11's own print the double
// range).
inline CLI::Validator whole_at_least(long long lo) {
  return CLI::Validator(
      [lo](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0' || errno != 0 || v < lo)
          return s + " is not a whole number >= " + std::to_string(lo);
        return {};
      },
      ">= " + std::to_string(lo));
}
inline CLI::Validator non_negative() { return whole_at_least(0); }
inline CLI::Validator positive_real() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || !(v > 0) || v == HUGE_VAL) return s + " is not a positive number";
        return {};
      },
      "> 0");
}
inline CLI::Validator positive() { return whole_at_least(1); }

Action add_info(CLI::App& app);
Action add_energy(CLI::App& app);
Action add_sample_target(CLI::App& app);
Action add_reference(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_train(CLI::App& app);
Action add_sample(CLI::App& app);
Action add_bench(CLI::App& app);

}  // namespace nsamp::apps
