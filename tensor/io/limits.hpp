// The one limit on how large a tensor or decoded image a file may declare. Files come from
// anywhere; a corrupt or hostile header (an .npy shape, a safetensors entry, an IDX dimension, a
// PNG's width and height, a gzip trailer) could otherwise ask for terabytes before any data is
// read. Every reader compares the declared size with max_tensor_bytes() *before* allocating and
// refuses with a loupe::Error naming the file, the size and the variable that raises the limit.
//
//   LOUPE_MAX_TENSOR_BYTES   bytes, with an optional K, M, G or T suffix (powers of 1024);
//                            default 4G. Anything else (0, negative, "abc") is refused.
// Tests: tests/tensor/test_limits.cpp
#pragma once

#include <cstdint>
#include <string>

namespace loupe::io {

constexpr uint64_t kDefaultMaxTensorBytes = uint64_t(4) << 30;

// The limit in bytes: LOUPE_MAX_TENSOR_BYTES when set (read on every call, so tests may change it),
// else kDefaultMaxTensorBytes. Throws loupe::Error when the variable is malformed.
uint64_t max_tensor_bytes();
// Parses "123", "64K", "512M", "4G", "1T" into bytes; throws loupe::Error naming the variable.
uint64_t parse_byte_size(const std::string& text, const char* variable);
// Throws "<op>: '<name>': <what> declares <bytes> bytes, above the limit of <limit> bytes (set
// LOUPE_MAX_TENSOR_BYTES to allow more)" when bytes > max_tensor_bytes().
void check_declared_bytes(const char* op, const std::string& name, const std::string& what, uint64_t bytes);

}  // namespace loupe::io
