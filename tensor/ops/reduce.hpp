// Reductions over any set of dims (empty dims = all dims), with keepdim, and the scans.
// Sums of float32 accumulate in float64 for accuracy; integer and bool sums give int64.
// Tests: tests/ops/op_table_reduce.cpp
#pragma once

#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::ops {

using Dims = std::vector<int64_t>;

// Wrapped, sorted, duplicate-free dims (empty stays empty = all dims).
Dims normalize_dims(const Dims& dims, int64_t ndim, const char* op);
// x's shape with the reduced dims removed (or kept as 1).
Shape reduced_shape(const Shape& shape, const Dims& dims, bool keepdim);

Tensor sum(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
// Values of the max/min over ONE dim and the index where it occurs (first occurrence).
struct ValuesIndices {
  Tensor values;
  Tensor indices;  // int64
};
ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor amax(const Tensor& x, const Dims& dims = {}, bool keepdim = false);  // max over several dims
Tensor amin(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// correction = 1 is the unbiased estimator (PyTorch's default), 0 the population variance.
Tensor var(const Tensor& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor norm(const Tensor& x, double p = 2.0, const Dims& dims = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim = false);
Tensor all(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor any(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor cumsum(const Tensor& x, int64_t dim);  // integer and bool inputs give int64
// out[i] = sum of x[j] for j >= i along dim: cumsum's backward.
Tensor reverse_cumsum(const Tensor& x, int64_t dim);

// Sums a broadcast gradient back down to `shape` (the helper every broadcasting backward uses).
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace loupe::ops
