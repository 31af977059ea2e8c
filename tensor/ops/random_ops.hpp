// Random tensors from a Philox Generator (tensor/random.hpp). Element i of a call draws from
// counter block (first + i / 4), word i % 4 (uniform f64 and normal use several words per element;
// the exact layout is documented in random_ops.cpp),
// so results are identical for any thread count. A null generator means default_generator().
// Tests: tests/tensor/test_random.cpp
#pragma once

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

Tensor uniform(const Shape& shape, double low = 0.0, double high = 1.0, DType dtype = DType::f32,
               Generator* generator = nullptr);
Tensor normal(const Shape& shape, double mean = 0.0, double std = 1.0, DType dtype = DType::f32,
              Generator* generator = nullptr);
// Each element is 1 with probability p[i] (p broadcast to its own shape), else 0; dtype of p.
Tensor bernoulli(const Tensor& p, Generator* generator = nullptr);
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::f32, Generator* generator = nullptr);
// Integers uniform in [low, high), int64.
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* generator = nullptr);
// A random permutation of 0..n-1 (int64).
Tensor permutation(int64_t n, Generator* generator = nullptr);

}  // namespace loupe
