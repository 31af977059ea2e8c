// Differentiable dropout (inverted, as in PyTorch): in training each element is kept with
// probability 1 - p and scaled by 1 / (1 - p), so the expected value is unchanged and eval mode is
// the identity. The keep-mask comes from bernoulli(x.shape(), 1 - p) (tensor/ops/random_ops.hpp)
// drawn from `generator` (the default generator when null), so a seeded generator reproduces it.
// Tests: tests/tensor/test_random.cpp
#pragma once

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

// x: any shape, floating. Returns x itself when !training or p == 0, zeros when p == 1 (the
// gradient is then zero too). p outside [0, 1] raises loupe::Error.
// The node (OpKind::dropout) saves {mask} (x's dtype, 0/1) and attrs {p, scale}; backward is
// g * mask * scale.
Tensor dropout(const Tensor& x, double p, bool training, Generator* generator = nullptr);

}  // namespace loupe
