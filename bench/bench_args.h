// The command line every benchmark executable shares (CLI11): the common options (--device, --out), checks
// for comma-separated lists and counts, the JSON-line output (stdout, and --out FILE when given) and the
// main() wrapper that turns parse errors and nsamp errors into exit codes. Header-only.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "nsamp/core/cpu_arch.h"
#include "nsamp/core/device.h"
#include "nsamp/core/error.h"

namespace nsamp::bench {

// "a,b,c" -> {"a", "b", "c"} (empty items are dropped).
inline std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) v.push_back(item);
  return v;
}

// Whether s is a whole base-10 integer that fits in int64; the value in *v.
inline bool parse_int(const std::string& s, std::int64_t* v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0') return false;
  *v = x;
  return true;
}

// A list the option's check has accepted ("1000,65536") -> {1000, 65536}.
inline std::vector<std::int64_t> split_ints(const std::string& s) {
  std::vector<std::int64_t> v;
  for (const std::string& item : split(s)) {
    std::int64_t x = 0;
    NSAMP_CHECK(parse_int(item, &x), "'", item, "' is not an integer");
    v.push_back(x);
  }
  return v;
}

// Check: an integer >= 1.
inline CLI::Validator positive() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        std::int64_t v = 0;
        if (!parse_int(s, &v) || v < 1) return "'" + s + "' is not a positive integer";
        return {};
      },
      "POSITIVE");
}

// Check: an integer >= 0.
inline CLI::Validator nonnegative() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        std::int64_t v = 0;
        if (!parse_int(s, &v) || v < 0) return "'" + s + "' is not a non-negative integer";
        return {};
      },
      "NONNEGATIVE");
}

// --reps N: timed repetitions of each case (`what`: "timed calls per case"), after one warm-up.
template <class Int>
inline void add_reps(CLI::App& app, Int& reps, const std::string& what) {
  app.add_option("--reps", reps, what + " (after one warm-up)")->capture_default_str()->check(positive());
}

// --float64: time in float64 instead of float32.
inline void add_float64(CLI::App& app, bool& float64) {
  app.add_flag("--float64", float64, "time in float64 (default: float32)");
}

// Check through an nsamp function that throws nsamp::Error on a bad value (parse_device, make_target, ...):
// its message becomes CLI11's.
inline CLI::Validator checked_by(std::function<void(const std::string&)> f) {
  return CLI::Validator(
      [f = std::move(f)](std::string& s) -> std::string {
        try {
          f(s);
        } catch (const nsamp::Error& e) {
          return e.what();
        }
        return {};
      },
      "");
}

// Check: a non-empty comma-separated list whose every item passes `each`.
inline CLI::Validator list_of(const CLI::Validator& each) {
  return CLI::Validator(
      [each](std::string& s) -> std::string {
        const std::vector<std::string> items = split(s);
        if (items.empty()) return "'" + s + "' is an empty list";
        for (std::string item : items) {
          const std::string err = each(item);
          if (!err.empty()) return err;
        }
        return {};
      },
      "");
}

// A comma-separated list option ("a,b,c": one argument; the last one given wins), checked item by item.
inline CLI::Option* add_list(CLI::App& app, const std::string& name, std::string& value,
                             const std::string& description, const CLI::Validator& each) {
  return app.add_option(name, value, "comma-separated " + description)
      ->type_name("LIST")
      ->capture_default_str()
      ->check(list_of(each));
}

// The options every benchmark takes.
struct CommonArgs {
  std::string device = "auto";
  std::string out;  // empty: stdout only
};

// Registers --device (checked by parse_device) and --out on app. Call it first: it also makes every option
// added after it take the last value when given twice (as the hand-written parsers did).
inline void add_common(CLI::App& app, CommonArgs& args) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--device", args.device, "auto | cpu | cuda | cuda:N")
      ->capture_default_str()
      ->check(checked_by([](const std::string& s) { parse_device(s); }));
  app.add_option("--out", args.out, "also append each JSON line to FILE (e.g. bench/results/...jsonl)")
      ->type_name("FILE");
}

// printf into a std::string (the JSON lines keep their printf formats, which the compiler checks).
inline std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string format(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string s(n > 0 ? std::size_t(n) : 0, '\0');
  if (n > 0) std::vsnprintf(&s[0], std::size_t(n) + 1, fmt, ap2);
  va_end(ap2);
  return s;
}

// Where the JSON lines go: stdout (flushed after each line) and, with --out FILE, appended to FILE (opened
// before any case runs, so a bad path fails at once).
class Emitter {
 public:
  explicit Emitter(const CommonArgs& args) : path_(args.out) {
    if (path_.empty()) return;
    file_.open(path_, std::ios::out | std::ios::app);
    NSAMP_CHECK(file_.is_open(), "--out: cannot open '", path_, "' for appending");
  }

  // One JSON line (a flat object), without its newline. The host instruction set is appended to every line:
  // CPU timings depend on it as much as on the machine.
  void emit(std::string json_line) {
    if (!json_line.empty() && json_line.back() == '}')
      json_line.insert(json_line.size() - 1, std::string(", \"cpu_arch\": \"") + built_cpu_arch() + "\"");
    std::fwrite(json_line.data(), 1, json_line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (path_.empty()) return;
    file_ << json_line << '\n';
    file_.flush();
    NSAMP_CHECK(file_.good(), "--out: writing '", path_, "' failed");
  }
  void operator()(std::string json_line) { emit(std::move(json_line)); }

 private:
  std::string path_;
  std::ofstream file_;
};

// main(): parses argv (--help prints and exits 0; a bad command line prints CLI11's message and exits
// non-zero), then runs body; an nsamp::Error from it prints its message and exits 1.
inline int run(CLI::App& app, int argc, char** argv, const std::function<void()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    body();
  } catch (const nsamp::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace nsamp::bench
