// How a caller steers a training loop from outside (nsamp train): resume from a saved state, checkpoints at
// moments it chooses, a stop request (Ctrl-C), and progress. Every loop saves the whole state that its
// continuation depends on (parameters, optimiser moments and counters, schedules, EMA, replay buffer, the
// context's Philox offset), so a resumed run continues exactly as the uninterrupted one would have: same
// numbers, bit for bit, on the same device and thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "nsamp/autograd/state_dict.h"
#include "nsamp/core/context.h"

namespace nsamp::samplers {

struct TrainControl {
  // Continue from this state (written through `save` by the same loop with the same options).
  const ag::StateDict* resume = nullptr;
  // Asked after every unit of work with the units done (path samplers and DiKL: iterations; iDEM / IW-SM:
  // epochs, also asked after each inner step with the epochs completed); true makes the loop save.
  std::function<bool(std::int64_t done)> checkpoint_due;
  std::function<void(ag::StateDict& state, std::int64_t done)> save;  // may add entries before writing
  // Polled after every unit of work; true makes the loop save (when `save` is set) and return early.
  std::function<bool()> stop_requested;
  std::function<void(std::int64_t done, std::int64_t total)> progress;
  bool stopped = false;  // set when the loop returned early on a stop request
};

namespace detail {

// The state every loop shares: which loop wrote it, the units done, the context's Philox state.
void put_loop_state(ag::StateDict& s, const std::string& loop, std::int64_t done, const Context& ctx);
// After a unit of work (units `done` of `total`): progress, then `save` when a checkpoint is due or a stop
// is requested. Returns true when the loop must return now (a stop before the end; control->stopped set).
bool end_of_unit(TrainControl* control, std::int64_t done, std::int64_t total,
                 const std::function<void()>& save);

// Checks that the state is the given loop's and restores the Philox state; returns the units done.
std::int64_t get_loop_state(const ag::StateDict& s, const std::string& loop, std::int64_t total,
                            Context& ctx);

}  // namespace detail

}  // namespace nsamp::samplers
