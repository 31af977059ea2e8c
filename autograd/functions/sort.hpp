// Differentiable sort and topk: the values are differentiable (the gradient goes back to the
// positions the indices name), the int64 indices are not. Forward: tensor/ops/sort.hpp.
// Tests: tests/ops/op_table_sort.cpp
#pragma once

#include "tensor/ops/sort.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

ops::ValuesIndices sort(const Tensor& x, int64_t dim = -1, bool descending = false, bool stable = false);
ops::ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);

}  // namespace loupe
