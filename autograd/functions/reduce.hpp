// Differentiable reductions and scans. Forward: tensor/ops/reduce.hpp.
// Tests: tests/ops/op_table_reduce.cpp
#pragma once

#include <vector>

#include "tensor/ops/reduce.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

using Dims = std::vector<int64_t>;

Tensor sum(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
ops::ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim = false);  // values differentiable
ops::ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor amax(const Tensor& x, const Dims& dims = {}, bool keepdim = false);  // ties share the gradient
Tensor amin(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor var(const Tensor& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor norm(const Tensor& x, double p = 2.0, const Dims& dims = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim = false);
Tensor cumsum(const Tensor& x, int64_t dim);

// Not differentiable (integer or bool results): the raw ops, here so that code using the
// differentiable catalogue finds every reduction under one name.
inline Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false) { return ops::argmax(x, dim, keepdim); }
inline Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false) { return ops::argmin(x, dim, keepdim); }
inline Tensor all(const Tensor& x, const Dims& dims = {}, bool keepdim = false) { return ops::all(x, dims, keepdim); }
inline Tensor any(const Tensor& x, const Dims& dims = {}, bool keepdim = false) { return ops::any(x, dims, keepdim); }

}  // namespace loupe
