// Differentiable indexing ops. Forward: tensor/ops/index.hpp (same names, same arguments).
// Backward: each op's adjoint movement of the gradient:
//   gather       -> scatter_add of g into zeros of x's shape
//   scatter_add  -> g for x, gather(g) for src
//   index_select -> index_add of g into zeros of x's shape
//   index_add    -> g for x, alpha * index_select(g) for src
//   masked_fill  -> g with the filled positions zeroed
//   embedding    -> g rows summed into a zero (V, D) table, padding_idx row left at zero
// Index and mask inputs get no gradient; one_hot is not differentiable.
// Tests: tests/ops/op_table_index.cpp
#pragma once

#include "tensor/ops/index.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha = 1.0);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);  // int64, no gradient

}  // namespace loupe
