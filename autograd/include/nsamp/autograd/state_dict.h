// A training state in one safetensors file: named host tensors (parameters, optimiser moments, a replay
// buffer) and string metadata (step counters, RNG offsets, learning rates), written atomically
// (core/atomic_file.h). Numbers in the metadata round-trip exactly (%.17g, integers in decimal), so a run
// resumed from a state continues bit for bit.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nsamp/autograd/tape.h"

namespace nsamp::ag {

class StateDict {
 public:
  // Stores a host copy of t under name (replacing an earlier one of that name; the order of first puts is
  // the file's order).
  void put(const std::string& name, const Tensor& t, Context& ctx);
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const Tensor& at(const std::string& name) const;  // throws naming the missing entry
  // Copies the entry into dst (any device), checking dtype and shape first.
  void copy_to(const std::string& name, Tensor& dst, Context& ctx) const;
  const std::vector<std::string>& names() const { return order_; }

  void set(const std::string& key, const std::string& value) { meta_[key] = value; }
  void set_int(const std::string& key, std::int64_t v);
  void set_u64(const std::string& key, std::uint64_t v);
  void set_double(const std::string& key, double v);
  bool has_meta(const std::string& key) const { return meta_.count(key) != 0; }
  const std::string& get(const std::string& key) const;  // throws naming the missing key
  std::int64_t get_int(const std::string& key) const;
  std::uint64_t get_u64(const std::string& key) const;
  double get_double(const std::string& key) const;
  const std::map<std::string, std::string>& meta() const { return meta_; }
  // The file it was read from ("state" for one built in memory), for messages.
  std::string source() const { return source_.empty() ? "state" : source_; }

  void save(const std::string& path) const;  // atomic
  // Reads and validates a whole file (header, offsets, sizes); a damaged file throws naming the problem.
  static StateDict load(const std::string& path, Context& ctx);

 private:
  std::string where() const { return source(); }
  std::map<std::string, Tensor> tensors_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> meta_;
  std::string source_;  // the file it was read from, for messages
};

// Parameters under their own names (names must be unique and non-empty).
void put_parameters(StateDict& s, const std::vector<Var>& params, Context& ctx);
// Reads every parameter by name, checking dtype and shape of all before changing any. Entries other than
// the parameters are an error unless their names start with one of `ignore_prefixes` (a checkpoint's
// training state under "state/").
void get_parameters(const StateDict& s, std::vector<Var>& params, Context& ctx,
                    const std::vector<std::string>& ignore_prefixes = {});

}  // namespace nsamp::ag
