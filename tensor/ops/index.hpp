// Indexing ops (raw forward): gather / scatter_add along one dim, index_select / index_add of whole
// slices, masked_fill, embedding lookup and one_hot. The differentiable versions with the same
// names live in autograd/functions/index.hpp.
//
// Index tensors are int64 of any layout. As in PyTorch, gather, scatter_add, index_select,
// index_add and embedding do NOT wrap negative indices: any index outside [0, size) raises
// loupe::Error naming the op, the index value, the dim and its size. The "add" ops are
// out-of-place here: they return a new tensor holding x plus the scattered values.
// Tests: tests/ops/op_table_index.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe::ops {

// out[i][j][k] = x[i][index[i][j][k]][k] for dim = 1 (likewise for other dims).
// index has x's number of dims and index.size(d) <= x.size(d) for d != dim; out has index's shape.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);

// A copy of x with out[i][index[i][j][k]][k] += src[i][j][k] (dim = 1) for every position of
// index. index.size(d) <= src.size(d) for all d and <= x.size(d) for d != dim; src has x's dtype.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

// The slices x[..., index[i], ...] along dim, stacked in index order. index is 1-d (or 0-d).
// out.shape = x.shape with size(dim) = index.numel().
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

// A copy of x with slice index[i] along dim increased by alpha * (slice i of src); repeated
// indices accumulate. src.shape = x.shape with size(dim) = index.numel(); src has x's dtype.
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha = 1.0);

// x where mask is false, value where it is true. mask is bool; x and mask broadcast together
// (the output has the broadcast shape, as PyTorch's out-of-place masked_fill). value is
// converted to x's dtype.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// Rows of weight (V, D) picked by indices (any shape, int64): out.shape = indices.shape + (D).
// padding_idx follows aten::embedding: a row in [0, V) that receives no gradient, or any
// negative number for none (F.embedding's negative padding_idx counts from the end; pass V - k).
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
// The gradient of embedding w.r.t. weight: grad (indices.shape + (D)) summed into a zero
// (num_weights, D) per index, with the padding_idx row left at zero.
Tensor embedding_backward(const Tensor& grad, const Tensor& indices, int64_t num_weights, int64_t padding_idx);

// int64 one-hot codes: out.shape = indices.shape + (num_classes). num_classes = -1 uses
// max(indices) + 1 (an error for an empty input). Values must lie in [0, num_classes).
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);

}  // namespace loupe::ops
