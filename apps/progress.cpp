#include "progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "nsamp/core/error.h"

namespace nsamp::apps {

ProgressMode parse_progress_mode(const std::string& s) {
  if (s == "auto") return isatty(fileno(stderr)) ? ProgressMode::Bar : ProgressMode::Plain;
  if (s == "bar") return ProgressMode::Bar;
  if (s == "plain") return ProgressMode::Plain;
  if (s == "off") return ProgressMode::Off;
  NSAMP_FAIL("unknown progress mode '", s, "' (valid: auto, bar, plain, off)");
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof(buf), "%lds", t);
  return buf;
}

Progress::Progress(ProgressMode mode, std::string unit, double plain_seconds)
    : mode_(mode), unit_(std::move(unit)), plain_seconds_(plain_seconds) {}

Progress::~Progress() { finish(); }

void Progress::start(std::int64_t done) {
  started_ = true;
  first_done_ = done;
  t0_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(std::int64_t done, std::int64_t total) {
  if (mode_ == ProgressMode::Off) return;
  if (!started_) start(done);
  last_done_ = done;
  last_total_ = total;
  draw(done, total, done >= total);
}

void Progress::draw(std::int64_t done, std::int64_t total, bool force) {
  const auto now = std::chrono::steady_clock::now();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  const double min_gap = mode_ == ProgressMode::Bar ? 0.2 : plain_seconds_;
  if (!force && since_draw < min_gap) return;
  if (mode_ == ProgressMode::Plain && force && done >= total && !drawn_) return;  // short runs: no line
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - t0_).count();
  const double units = double(done - first_done_);
  const double rate = elapsed > 0 && units > 0 ? units / elapsed : 0;
  const double eta = rate > 0 ? double(total - done) / rate : NAN;
  const double frac = total > 0 ? double(done) / double(total) : 1.0;
  char stats[160];
  if (rate >= 1 || rate == 0)
    std::snprintf(stats, sizeof(stats), "%5.1f%%  %.3g %s/s  ETA %s", 100 * frac, rate, unit_.c_str(),
                  format_duration(eta).c_str());
  else
    std::snprintf(stats, sizeof(stats), "%5.1f%%  %.3g s/%s  ETA %s", 100 * frac, 1 / rate, unit_.c_str(),
                  format_duration(eta).c_str());
  if (mode_ == ProgressMode::Bar) {
    const int width = 30, fill = int(frac * width);
    std::string bar(std::size_t(width), ' ');
    for (int i = 0; i < fill && i < width; ++i) bar[std::size_t(i)] = '=';
    if (fill < width) bar[std::size_t(fill)] = '>';
    std::fprintf(stderr, "\r\033[K  %s %lld/%lld [%s] %s", unit_.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total), bar.c_str(), stats);
  } else {
    std::cout << "  progress: " << unit_ << " " << done << "/" << total << "  " << stats << "\n"
              << std::flush;
  }
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::line(const std::string& text) {
  if (mode_ == ProgressMode::Bar && drawn_) std::fprintf(stderr, "\r\033[K");
  std::cout << text << "\n" << std::flush;  // the next update redraws the bar
}

void Progress::finish() {
  if (mode_ == ProgressMode::Bar && drawn_) {
    std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
  drawn_ = false;
  mode_ = ProgressMode::Off;
}

}  // namespace nsamp::apps
