// Tensors made from nothing (or from plain C++ values): zeros, ones, full, arange, linspace, eye,
// the *_like family, and tensors built from std::vector data.
// Random creation (uniform, normal, ...) is in tensor/ops/random_ops.hpp.
// Tests: tests/tensor/test_creation.cpp
#pragma once

#include <vector>

#include "tensor/tensor.hpp"

namespace loupe {

Tensor zeros(const Shape& shape, DType dtype = DType::f32);
Tensor ones(const Shape& shape, DType dtype = DType::f32);
Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
Tensor scalar_tensor(double value, DType dtype = DType::f32);  // 0-d

Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);
Tensor full_like(const Tensor& like, double value);
Tensor empty_like(const Tensor& like);

// [start, end) in steps of `step`; i64 unless a dtype is given.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::i64);
Tensor arange(int64_t end, DType dtype = DType::i64);
Tensor linspace(double start, double end, int64_t steps, DType dtype = DType::f32);
Tensor eye(int64_t n, int64_t m = -1, DType dtype = DType::f32);

// A tensor holding `values` (converted to dtype) in row-major order.
Tensor from_values(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);
Tensor from_values(const std::vector<int64_t>& values, const Shape& shape, DType dtype = DType::i64);
Tensor from_values(const std::vector<float>& values, const Shape& shape);

// All elements, converted to T, in row-major order (any layout).
template <typename T>
std::vector<T> to_vector(const Tensor& tensor);

}  // namespace loupe
