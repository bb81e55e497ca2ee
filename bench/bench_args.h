// Small helpers the benchmark executables share for their command lines.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace nsamp::bench {

// "a,b,c" -> {"a", "b", "c"}
inline std::vector<std::string> split(const char* s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) v.push_back(item);
  return v;
}

}  // namespace nsamp::bench
