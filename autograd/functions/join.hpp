// Differentiable joining, splitting and padding. Forward: tensor/ops/join.hpp (same names, same
// arguments). Backward:
//   cat          -> the slice of g each input filled (cast back to the input's dtype)
//   stack        -> unsqueeze + cat, so each input gets its slice of g along the new dim
//   split, chunk -> every piece is a differentiable slice of x
//   pad          -> constant: the inverse crop (pad g by the negated pads);
//                   reflect / replicate: g folded back onto the element each position read
// Tests: tests/ops/op_table_join.cpp
#pragma once

#include <vector>

#include "tensor/ops/join.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
// C++ reads split(x, {4}) as the int64_t overload: write split(x, std::vector<int64_t>{4}).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode = PadMode::constant, double value = 0.0);

}  // namespace loupe
