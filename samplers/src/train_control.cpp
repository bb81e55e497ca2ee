#include "nsamp/samplers/train_control.h"

namespace nsamp::samplers::detail {

void put_loop_state(ag::StateDict& s, const std::string& loop, std::int64_t done, const Context& ctx) {
  s.set("state/loop", loop);
  s.set_int("state/done", done);
  s.set_u64("state/rng_seed", ctx.seed());
  s.set_u64("state/rng_offset", ctx.rng_offset());
}

bool end_of_unit(TrainControl* c, std::int64_t done, std::int64_t total, const std::function<void()>& save) {
  if (!c) return false;
  if (c->progress) c->progress(done, total);
  const bool stop = c->stop_requested && c->stop_requested();
  if (c->save && (stop || (c->checkpoint_due && c->checkpoint_due(done)))) save();
  if (!stop || done >= total) return false;
  c->stopped = true;
  return true;
}

std::int64_t get_loop_state(const ag::StateDict& s, const std::string& loop, std::int64_t total,
                            Context& ctx) {
  const std::string& l = s.get("state/loop");
  NSAMP_CHECK(l == loop, s.source(), ": holds the state of a ", l, " loop, not of ", loop);
  const std::int64_t done = s.get_int("state/done");
  NSAMP_CHECK(done >= 0 && done <= total, s.source(), ": ", done, " units done, outside [0, ", total, "]");
  ctx.set_rng_state(s.get_u64("state/rng_seed"), s.get_u64("state/rng_offset"));
  return done;
}

}  // namespace nsamp::samplers::detail
