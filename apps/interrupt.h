// Ctrl-C (SIGINT) and SIGTERM during training: the first asks the loop to stop at the next unit boundary,
// where it writes a checkpoint and returns; a second one gives up waiting and ends the process at once (the
// checkpoint on disk is still whole: writes are atomic).
#pragma once

#include <csignal>

namespace nsamp::apps {

class InterruptGuard {
 public:
  InterruptGuard();   // installs the handlers
  ~InterruptGuard();  // restores the previous ones
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  static bool requested();
  static int signal_number();  // of the first request (0 when none)

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

}  // namespace nsamp::apps
