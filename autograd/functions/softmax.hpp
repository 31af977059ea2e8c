// Differentiable softmax and log_softmax along one dim. Forward and backward kernels:
// tensor/ops/softmax.hpp. Nodes save {x, y} and attrs {dim} (the DeepLIFT rule reads them).
// Tests: tests/ops/op_table_softmax.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace loupe
