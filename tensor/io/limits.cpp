// The declared-size limit. See limits.hpp.
#include "tensor/io/limits.hpp"

#include <cstdlib>

#include "tensor/error.hpp"

namespace loupe::io {

uint64_t parse_byte_size(const std::string& text, const char* variable) {
  uint64_t value = 0;
  size_t pos = 0;
  bool overflow = false;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    overflow |= __builtin_mul_overflow(value, 10, &value) || __builtin_add_overflow(value, text[pos] - '0', &value);
    ++pos;
  }
  int shift = 0;
  if (pos + 1 == text.size()) {
    switch (text[pos]) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      case 'T': case 't': shift = 40; break;
      default: shift = -1; break;
    }
    if (shift > 0) ++pos;
  }
  const bool valid = pos > 0 && pos == text.size() && value > 0 && !overflow && shift >= 0 &&
                     (shift == 0 || value <= (UINT64_MAX >> shift));
  LOUPE_CHECK(valid, variable, " must be a positive number of bytes with an optional K, M, G or T suffix (e.g. 4G), got '",
              text, "'");
  return value << shift;
}

uint64_t max_tensor_bytes() {
  const char* env = std::getenv("LOUPE_MAX_TENSOR_BYTES");
  if (env == nullptr || *env == '\0') return kDefaultMaxTensorBytes;
  return parse_byte_size(env, "LOUPE_MAX_TENSOR_BYTES");
}

void check_declared_bytes(const char* op, const std::string& name, const std::string& what, uint64_t bytes) {
  const uint64_t limit = max_tensor_bytes();
  LOUPE_CHECK(bytes <= limit, op, ": '", name, "': ", what, " declares ", bytes, " bytes, above the limit of ", limit,
              " bytes (set LOUPE_MAX_TENSOR_BYTES to allow more, e.g. LOUPE_MAX_TENSOR_BYTES=16G)");
}

}  // namespace loupe::io
