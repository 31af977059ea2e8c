// The IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed): a magic number giving
// the element type and rank, big-endian dim sizes, then the elements in row-major order.
// Tests: tests/nn/test_data.cpp
#pragma once

#include <string>

#include "tensor/tensor.hpp"

namespace loupe::nn {

// Reads an .idx or .idx.gz file into a tensor of `dtype` (f32, f64 or i64) with the file's shape.
Tensor load_idx(const std::string& path, DType dtype = DType::f32);
Tensor parse_idx(const std::vector<uint8_t>& bytes, const std::string& name, DType dtype);

}  // namespace loupe::nn
