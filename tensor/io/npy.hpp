// NumPy .npy files: one array per file.
//
// Reading accepts format versions 1.0, 2.0 and 3.0, dtypes '<f4' '<f8' '<i8' '|b1' (float32,
// float64, int64, bool), C or Fortran order (Fortran arrays are returned as C-contiguous
// tensors), 0-d and zero-size arrays. Everything else (big-endian, float16, int32, structured
// dtypes, object arrays) raises loupe::Error, as do bad magic, a malformed header, a shape whose
// bytes disagree with the file's length (truncated or trailing bytes).
// Writing produces version 1.0 (2.0 when the header exceeds 64 KiB), C order, the header padded
// with spaces to a multiple of 64 bytes and ended by '\n' (as numpy does). The write is atomic:
// a temporary file beside `path` is renamed over it only once complete.
// Tests: tests/tensor/test_io.cpp
#pragma once

#include <string>

#include "tensor/tensor.hpp"

namespace loupe {

Tensor load_npy(const std::string& path);
// t: any shape and layout on the CPU; dtype float32, float64, int64 or bool.
void save_npy(const std::string& path, const Tensor& t);

}  // namespace loupe
