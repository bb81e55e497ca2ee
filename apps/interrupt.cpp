#include "interrupt.h"

#include <unistd.h>

namespace nsamp::apps {

namespace {

volatile std::sig_atomic_t g_requests = 0;
volatile std::sig_atomic_t g_first = 0;

extern "C" void on_interrupt(int sig) {
  if (g_requests > 0) {
    // The second request: back to the default action, which ends the process with this signal's status.
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_requests = 1;
  g_first = sig;
  const char msg[] = "\nnsamp: stopping at the next step to write a checkpoint (again to quit at once)\n";
  (void)!::write(2, msg, sizeof(msg) - 1);
}

}  // namespace

InterruptGuard::InterruptGuard() {
  g_requests = 0;
  g_first = 0;
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

bool InterruptGuard::requested() { return g_requests != 0; }
int InterruptGuard::signal_number() { return int(g_first); }

}  // namespace nsamp::apps
