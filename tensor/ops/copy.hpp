// Copies between tensors of any layout and dtype: the one strided copy kernel behind contiguous(),
// clone(), to(dtype) and every "materialise this view" step.
// Tests: tests/tensor/test_tensor.cpp, tests/ops/op_table_view.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe::ops {

// dst[...] = src[...] converted to dst's dtype; src is broadcast to dst's shape.
void copy_(const Tensor& dst, const Tensor& src);
void fill_(const Tensor& dst, double value);

Tensor contiguous(const Tensor& x);  // x itself when already contiguous
Tensor clone(const Tensor& x);       // always a new contiguous copy
Tensor to_dtype(const Tensor& x, DType dtype);  // x itself when the dtype already matches

}  // namespace loupe::ops
