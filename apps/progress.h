// Training progress for people: on a terminal a bar redrawn in place (units done, rate, ETA) on stderr;
// elsewhere (logs, CI) a plain line every `plain_seconds`. Lines printed through line() clear the bar first
// so that the two never interleave on a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace nsamp::apps {

enum class ProgressMode { Bar, Plain, Off };

// "auto" (bar when stderr is a terminal, else plain), "bar", "plain", "off".
ProgressMode parse_progress_mode(const std::string& s);

class Progress {
 public:
  Progress(ProgressMode mode, std::string unit, double plain_seconds = 30);
  ~Progress();  // ends the bar's line
  // The clock starts with `done` units already done (a resumed run's), so the rate is this process's own.
  void start(std::int64_t done);
  // `done` of `total` units (starts the clock at the first call when start() was not called).
  void update(std::int64_t done, std::int64_t total);
  void line(const std::string& text);  // a whole line to stdout
  void finish();

 private:
  void draw(std::int64_t done, std::int64_t total, bool force);
  ProgressMode mode_;
  std::string unit_;
  double plain_seconds_;
  bool started_ = false, drawn_ = false;
  std::int64_t first_done_ = 0, last_done_ = 0, last_total_ = 0;
  std::chrono::steady_clock::time_point t0_, last_draw_;
};

// "1h02m", "5m06s", "42s".
std::string format_duration(double seconds);

}  // namespace nsamp::apps
