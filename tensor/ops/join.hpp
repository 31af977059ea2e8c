// Joining and splitting (raw forward): cat, stack, split, chunk, and pad in the constant, reflect
// and replicate modes. The differentiable versions with the same names live in
// autograd/functions/join.hpp.
// Tests: tests/ops/op_table_join.cpp
#pragma once

#include <vector>

#include "tensor/tensor.hpp"

namespace loupe {

// How pad fills the border (see ops::pad). It lives in namespace loupe, not loupe::ops, so that a
// call like pad(x, pads, PadMode::reflect) finds only the differentiable pad by argument lookup.
enum class PadMode { constant, reflect, replicate };
const char* pad_mode_name(PadMode mode);

}  // namespace loupe

namespace loupe::ops {

// Joins tensors along an existing dim. All must have the same shape except along dim; the result
// has the promoted dtype of all inputs (torch.cat). As in PyTorch, 1-d tensors of size 0 are
// skipped whatever their shape, and a 0-d tensor cannot be joined.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Joins equally shaped tensors along a new dim (dim may be in [-(ndim + 1), ndim]).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

// Pieces of split_size along dim (the last one smaller when the size does not divide); views of x.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
// Pieces of the given sizes (which must sum to x.size(dim)); views of x. Note that C++ reads
// split(x, {4}) as the int64_t overload: write split(x, std::vector<int64_t>{4}) for one piece.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
// `chunks` pieces of ceil(size / chunks) along dim, as torch.chunk: fewer when that size already
// covers the dim (chunk(6 elements, 4) gives 3 pieces of 2).
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
// The piece sizes split(x, split_size, dim) and chunk(x, chunks, dim) produce for a dim of `size`.
std::vector<int64_t> split_sizes(int64_t size, int64_t split_size);
std::vector<int64_t> chunk_sizes(int64_t size, int64_t chunks);

// torch.nn.functional.pad: `pads` lists (before, after) pairs starting from the LAST dim:
// {left, right} pads the last dim, {left, right, top, bottom} the last two, and so on.
//   constant:  fills with `value`; any number of dims up to x.dim(); negative pads crop.
//   reflect:   mirrors without repeating the edge (a b c -> c b | a b c | b a); pads must be
//              smaller than the padded dim.
//   replicate: repeats the edge element.
// reflect and replicate pad the last 1, 2 or 3 dims of a tensor with 1 or 2 more dims
// (e.g. 2 pads for (C, W) or (N, C, W), 4 pads for (C, H, W) or (N, C, H, W)).
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode = PadMode::constant, double value = 0.0);
// The gradient of pad w.r.t. x (shape input_shape): every element of grad is added to the input
// element it was read from; padding filled with `value` gets nothing.
Tensor pad_backward(const Tensor& grad, const Shape& input_shape, const std::vector<int64_t>& pads, PadMode mode);

}  // namespace loupe::ops
