// Run configurations: a flat JSON object whose keys and value types are fixed by the method's defaults.
// Overlays (a preset file, a --config file, --set key=value) may only set existing keys, with values of the
// same type and inside the key's valid range; anything else is an error that names the key and lists the
// valid keys or states the valid range.
//
// Ranges are written as "int [1, inf)", "real (0, 1]", "int [4, inf) even" (bounds: numbers, -inf or inf,
// brackets closed, parentheses open) or "{kl, lv, lv_traj}" for strings.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nsamp::apps {

class RunConfig {
 public:
  explicit RunConfig(nlohmann::json defaults, std::map<std::string, std::string> ranges = {});

  void overlay(const nlohmann::json& obj, const std::string& source);  // every key must exist
  void overlay_file(const std::string& path);
  void overlay_text(const std::string& json_text, const std::string& source);  // a JSON object's text
  void set(const std::string& assignment);  // "key=value", value parsed as the key's type

  double num(const std::string& key) const;
  std::int64_t integer(const std::string& key) const;  // throws unless the value is a whole number
  bool flag(const std::string& key) const;
  std::string str(const std::string& key) const;
  const nlohmann::json& json() const { return j_; }
  // Every value against its range (a default that no preset replaced included); throws naming the first bad.
  void check_ranges(const std::string& source) const;
  // The valid range of a key in words ("" when only its type is checked).
  std::string range_text(const std::string& key) const;

  struct Range {
    std::string text;  // as written
    bool integer = false, even = false, lo_open = false, hi_open = false;
    double lo = 0, hi = 0;
    std::vector<std::string> choices;  // strings
  };

 private:
  void assign(const std::string& key, const nlohmann::json& value, const std::string& source);
  void check_range(const std::string& key, const nlohmann::json& value, const std::string& source) const;
  std::string keys() const;
  nlohmann::json j_;
  std::map<std::string, Range> ranges_;
};

// The folder of preset files: $NSAMP_CONFIG_DIR, else the source tree's configs/.
std::string config_dir();

// Writes text to path through a temporary file and a rename (readers never see half a file).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace nsamp::apps
