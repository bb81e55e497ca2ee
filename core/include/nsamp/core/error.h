// Errors: one exception type whose message names the op, the shapes and the values involved.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace nsamp {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A CUDA, cuBLAS or driver failure (kept distinct so that callers may retry on another device).
class CudaError : public Error {
 public:
  explicit CudaError(const std::string& what) : Error(what) {}
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
[[noreturn]] void throw_error(const std::string& msg);
}  // namespace detail

}  // namespace nsamp

// NSAMP_CHECK(cond, "op: what went wrong ", value, ...): throws nsamp::Error with the pieces concatenated.
#define NSAMP_CHECK(cond, ...)                                                       \
  do {                                                                               \
    if (!(cond)) ::nsamp::detail::throw_error(::nsamp::detail::concat(__VA_ARGS__)); \
  } while (0)

#define NSAMP_FAIL(...) ::nsamp::detail::throw_error(::nsamp::detail::concat(__VA_ARGS__))
