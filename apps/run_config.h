// Run configurations: a flat JSON object whose keys and value types are fixed by the method's defaults.
// Overlays (a preset file, a --config file, --set key=value) may only set existing keys, with values of the
// same type; anything else is an error that lists the valid keys.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace nsamp::apps {

class RunConfig {
 public:
  explicit RunConfig(nlohmann::json defaults);

  void overlay(const nlohmann::json& obj, const std::string& source);  // every key must exist
  void overlay_file(const std::string& path);
  void overlay_text(const std::string& json_text, const std::string& source);  // a JSON object's text
  void set(const std::string& assignment);  // "key=value", value parsed as the key's type

  double num(const std::string& key) const;
  std::int64_t integer(const std::string& key) const;  // throws unless the value is a whole number
  bool flag(const std::string& key) const;
  std::string str(const std::string& key) const;
  const nlohmann::json& json() const { return j_; }

 private:
  void assign(const std::string& key, const nlohmann::json& value, const std::string& source);
  std::string keys() const;
  nlohmann::json j_;
};

// The folder of preset files: $NSAMP_CONFIG_DIR, else the source tree's configs/.
std::string config_dir();

// Writes text to path through a temporary file and a rename (readers never see half a file).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace nsamp::apps
