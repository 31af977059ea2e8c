// loupe::Error: the one exception type every user-facing failure raises.
// A message names the op and what was wrong with its arguments (shapes, dtype, device, file),
// so a user can fix the call without reading the engine's source.
// Tests: tests/tensor/test_errors.cpp
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace loupe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
// Streams every argument into one string: make_message("matmul: ", a.shape(), " vs ", b.shape()).
template <typename... Parts>
std::string make_message(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace loupe

// LOUPE_CHECK(condition, "op: ", details...) throws loupe::Error when the condition is false.
#define LOUPE_CHECK(condition, ...)                                  \
  do {                                                               \
    if (!(condition)) {                                              \
      throw ::loupe::Error(::loupe::detail::make_message(__VA_ARGS__)); \
    }                                                                \
  } while (false)
