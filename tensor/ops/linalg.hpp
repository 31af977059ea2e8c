// Matrix products: matmul with numpy semantics (1-d operands promoted and squeezed back, batch
// dims broadcast) and linear (x W^T + b, PyTorch's layout: W is (out_features, in_features)).
// Tests: tests/ops/op_table_linalg.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe::ops {

Tensor matmul(const Tensor& a, const Tensor& b);
// x: (..., in), weight: (out, in), bias: (out) or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace loupe::ops
