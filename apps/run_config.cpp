#include "run_config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "nsamp/core/atomic_file.h"
#include "nsamp/core/error.h"

namespace nsamp::apps {

namespace {

std::string trim(const std::string& s) {
  const std::size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

double parse_bound(const std::string& t, const std::string& spec) {
  const std::string s = trim(t);
  if (s == "inf" || s == "+inf") return HUGE_VAL;
  if (s == "-inf") return -HUGE_VAL;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  NSAMP_CHECK(!s.empty() && *end == '\0', "config: malformed range '", spec, "'");
  return v;
}

RunConfig::Range parse_range(const std::string& spec) {
  RunConfig::Range r;
  r.text = spec;
  const std::string s = trim(spec);
  if (!s.empty() && s.front() == '{') {
    NSAMP_CHECK(s.back() == '}', "config: malformed range '", spec, "'");
    std::stringstream in(s.substr(1, s.size() - 2));
    for (std::string item; std::getline(in, item, ',');) r.choices.push_back(trim(item));
    return r;
  }
  std::string rest;
  if (s.rfind("int ", 0) == 0) {
    r.integer = true;
    rest = s.substr(4);
  } else {
    NSAMP_CHECK(s.rfind("real ", 0) == 0, "config: malformed range '", spec, "'");
    rest = s.substr(5);
  }
  rest = trim(rest);
  if (rest.size() > 5 && rest.compare(rest.size() - 5, 5, " even") == 0) {
    r.even = true;
    rest = trim(rest.substr(0, rest.size() - 5));
  }
  const std::size_t comma = rest.find(',');
  NSAMP_CHECK(rest.size() >= 5 && (rest.front() == '[' || rest.front() == '(') &&
                  (rest.back() == ']' || rest.back() == ')') && comma != std::string::npos,
              "config: malformed range '", spec, "'");
  r.lo_open = rest.front() == '(';
  r.hi_open = rest.back() == ')';
  r.lo = parse_bound(rest.substr(1, comma - 1), spec);
  r.hi = parse_bound(rest.substr(comma + 1, rest.size() - comma - 2), spec);
  return r;
}

std::string describe(const RunConfig::Range& r) {
  if (!r.choices.empty()) {
    std::string s = "one of ";
    for (std::size_t i = 0; i < r.choices.size(); ++i) s += (i ? ", " : "") + r.choices[i];
    return s;
  }
  std::string rest = trim(r.text.substr(r.integer ? 4 : 5));
  if (r.even) rest = trim(rest.substr(0, rest.size() - 5));
  return std::string(r.integer ? (r.even ? "an even whole number in " : "a whole number in ")
                               : "a number in ") +
         rest;
}

std::string shown(const nlohmann::json& v) {
  if (v.is_string()) return "'" + v.get<std::string>() + "'";
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d == std::floor(d) && std::abs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  }
  return v.dump();
}

}  // namespace

RunConfig::RunConfig(nlohmann::json defaults, std::map<std::string, std::string> ranges)
    : j_(std::move(defaults)) {
  NSAMP_CHECK(j_.is_object(), "config: defaults must be a JSON object");
  for (const auto& [key, spec] : ranges) {
    NSAMP_CHECK(j_.contains(key), "config: a range for '", key, "', which has no default");
    if (!spec.empty()) ranges_[key] = parse_range(spec);
  }
}

std::string RunConfig::range_text(const std::string& key) const {
  auto it = ranges_.find(key);
  return it == ranges_.end() ? std::string() : describe(it->second);
}

void RunConfig::check_range(const std::string& key, const nlohmann::json& v,
                            const std::string& source) const {
  auto it = ranges_.find(key);
  if (it == ranges_.end()) return;
  const Range& r = it->second;
  bool ok = true;
  if (!r.choices.empty()) {
    ok = v.is_string() &&
         std::find(r.choices.begin(), r.choices.end(), v.get<std::string>()) != r.choices.end();
  } else if (v.is_number()) {
    const double d = v.get<double>();
    ok = std::isfinite(d) && (r.lo_open ? d > r.lo : d >= r.lo) && (r.hi_open ? d < r.hi : d <= r.hi);
    if (r.integer) ok = ok && d == std::floor(d) && std::abs(d) < 9e15;
    if (r.even) ok = ok && std::fmod(d, 2.0) == 0.0;
  }
  NSAMP_CHECK(ok, "config: '", key, "' = ", shown(v), " in ", source,
              " is out of range; valid: ", describe(r));
}

void RunConfig::check_ranges(const std::string& source) const {
  for (const auto& [key, r] : ranges_) check_range(key, j_.at(key), source);
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
  const std::string valid = range_text(key);
  NSAMP_CHECK(ok, "config: key '", key, "' in ", source, " must be a ", cur.type_name(), ", got ",
              value.dump(), valid.empty() ? "" : " (valid: " + valid + ")");
  check_range(key, value, source);
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
