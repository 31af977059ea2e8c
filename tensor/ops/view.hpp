// Views: new shapes and strides over the same storage, no copies (reshape copies only when the
// strides make a view impossible, as in PyTorch). These are the raw forward ops; the
// differentiable versions with the same names live in autograd/functions/view.hpp.
// Tests: tests/tensor/test_tensor.cpp, tests/ops/op_table_view.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe::ops {

// `shape` may hold one -1, inferred from the element count.
Tensor view(const Tensor& x, const Shape& shape);     // throws if the strides do not allow a view
Tensor reshape(const Tensor& x, const Shape& shape);  // view when possible, else a copy
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
// Elements start, start+step, ... < end along dim (negative start/end count from the end and
// are clamped, like Python slicing); step >= 1.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);  // removes dim
Tensor expand(const Tensor& x, const Shape& shape);           // -1 keeps a size
Tensor squeeze(const Tensor& x);                               // all size-1 dims
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor as_strided(const Tensor& x, const Shape& shape, const Strides& strides, int64_t offset);

// The shape after resolving one -1 against x's element count (with the op name for errors).
Shape infer_shape(const Shape& shape, int64_t numel, const char* op);

}  // namespace loupe::ops
