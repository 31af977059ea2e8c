// softmax and log_softmax along one dim (max-subtracted for stability), raw forward and the
// backward kernels the autograd functions use.
// Tests: tests/ops/op_table_softmax.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe::ops {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Given y = softmax(x) and g = dL/dy: dL/dx = y * (g - sum(g * y, dim)).
Tensor softmax_backward(const Tensor& y, const Tensor& g, int64_t dim);
// Given y = log_softmax(x) and g: dL/dx = g - exp(y) * sum(g, dim).
Tensor log_softmax_backward(const Tensor& y, const Tensor& g, int64_t dim);

}  // namespace loupe::ops
