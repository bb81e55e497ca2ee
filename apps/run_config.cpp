#include "run_config.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "nsamp/core/atomic_file.h"
#include "nsamp/core/error.h"

namespace nsamp::apps {

RunConfig::RunConfig(nlohmann::json defaults) : j_(std::move(defaults)) {
  NSAMP_CHECK(j_.is_object(), "config: defaults must be a JSON object");
}

std::string RunConfig::keys() const {
  std::string s;
  for (auto it = j_.begin(); it != j_.end(); ++it) s += (s.empty() ? "" : ", ") + it.key();
  return s;
}

void RunConfig::assign(const std::string& key, const nlohmann::json& value, const std::string& source) {
  NSAMP_CHECK(j_.contains(key), "config: unknown key '", key, "' in ", source, " (valid: ", keys(), ")");
  const nlohmann::json& cur = j_.at(key);
  const bool ok = (cur.is_number() && value.is_number()) || (cur.is_boolean() && value.is_boolean()) ||
                  (cur.is_string() && value.is_string());
  NSAMP_CHECK(ok, "config: key '", key, "' in ", source, " must be a ", cur.type_name(), ", got ",
              value.dump());
  j_[key] = value;
}

void RunConfig::overlay(const nlohmann::json& obj, const std::string& source) {
  NSAMP_CHECK(obj.is_object(), "config: ", source, " must hold a JSON object");
  for (auto it = obj.begin(); it != obj.end(); ++it) assign(it.key(), it.value(), source);
}

void RunConfig::overlay_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  NSAMP_CHECK(f.good(), "config: cannot read ", path);
  std::stringstream text;
  text << f.rdbuf();
  overlay_text(text.str(), path);
}

void RunConfig::overlay_text(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    NSAMP_FAIL("config: ", source, " is not valid JSON: ", e.what());
  }
  overlay(j, source);
}

void RunConfig::set(const std::string& assignment) {
  const std::size_t eq = assignment.find('=');
  NSAMP_CHECK(eq != std::string::npos && eq > 0, "config: --set wants key=value, got '", assignment, "'");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  NSAMP_CHECK(j_.contains(key), "config: unknown key '", key, "' in --set (valid: ", keys(), ")");
  const nlohmann::json& cur = j_.at(key);
  nlohmann::json v;
  if (cur.is_string()) {
    v = text;
  } else if (cur.is_boolean()) {
    NSAMP_CHECK(text == "true" || text == "false", "config: key '", key, "' wants true or false, got '", text,
                "'");
    v = text == "true";
  } else {
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    NSAMP_CHECK(!text.empty() && end && *end == '\0' && std::isfinite(d), "config: key '", key,
                "' wants a number, got '", text, "'");
    v = d;
  }
  assign(key, v, "--set");
}

double RunConfig::num(const std::string& key) const { return j_.at(key).get<double>(); }

std::int64_t RunConfig::integer(const std::string& key) const {
  const double d = num(key);
  NSAMP_CHECK(d == std::floor(d) && std::abs(d) < 9e15, "config: key '", key,
              "' must be a whole number, got ", d);
  return std::int64_t(d);
}

bool RunConfig::flag(const std::string& key) const { return j_.at(key).get<bool>(); }
std::string RunConfig::str(const std::string& key) const { return j_.at(key).get<std::string>(); }

std::string config_dir() {
  if (const char* e = std::getenv("NSAMP_CONFIG_DIR"); e && *e) return e;
  return NSAMP_SOURCE_CONFIG_DIR;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  nsamp::write_file_atomic(path, text);
}

}  // namespace nsamp::apps
