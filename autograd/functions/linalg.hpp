// Differentiable matmul and linear. Forward: tensor/ops/linalg.hpp.
// Tests: tests/ops/op_table_linalg.cpp
#pragma once

#include "tensor/ops/linalg.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

// numpy semantics: 1-d operands promoted and squeezed back, batch dims broadcast (their
// gradients are summed back over the broadcast).
Tensor matmul(const Tensor& a, const Tensor& b);
// x (..., in), weight (out, in), bias (out) or undefined -> (..., out).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace loupe
