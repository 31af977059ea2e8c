// Sorting along one dim (raw forward): sort and topk, each returning values and int64 indices,
// plus the scatter their backward uses. NaN sorts as larger than every number (PyTorch's order);
// equal values keep their original order (sort is always stable, topk breaks ties by index).
// Tests: tests/ops/op_table_sort.cpp
#pragma once

#include "tensor/ops/reduce.hpp"
#include "tensor/tensor.hpp"

namespace loupe::ops {

// Sorts every line along dim. `stable` is accepted for PyTorch parity; the sort is always stable.
ValuesIndices sort(const Tensor& x, int64_t dim = -1, bool descending = false, bool stable = false);
// The k largest (or smallest) elements along dim, 0 <= k <= size. `sorted` is accepted for
// PyTorch parity; the result is always in order (largest first, or smallest first).
ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);

// The backward of picking elements along dim (sort, topk, max/min with keepdim): a zero tensor of
// `input_shape` with g[..., j, ...] added at position indices[..., j, ...] along dim. g and
// indices share one shape, equal to input_shape except along dim.
Tensor sort_backward(const Tensor& g, const Tensor& indices, int64_t dim, const Shape& input_shape);

}  // namespace loupe::ops
