// 2-d pooling over NCHW (or CHW) input: max (with indices, padding, dilation, ceil_mode), average
// (count_include_pad, ceil_mode) and adaptive average. Output sizes follow PyTorch exactly:
//   out = floor_or_ceil((in + 2 pad - dilation (k - 1) - 1) / stride) + 1, and with ceil_mode the
//   last window must start inside the input or its left padding.
// Tests: tests/ops/op_table_pool.cpp
#pragma once

#include <array>

#include "tensor/ops/reduce.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

// In namespace loupe (not ops) so that loupe::max_pool2d(x, params) is never ambiguous with
// ops::max_pool2d through argument-dependent lookup.
struct Pool2dParams {
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> stride{0, 0};  // 0 = same as kernel (PyTorch's default)
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};  // max pooling only
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
};

}  // namespace loupe

namespace loupe::ops {

using loupe::Pool2dParams;

// values (N, C, OH, OW) and int64 indices into each input plane (h * W + w), as PyTorch returns.
ValuesIndices max_pool2d_with_indices(const Tensor& x, const Pool2dParams& params);
Tensor max_pool2d(const Tensor& x, const Pool2dParams& params);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params);
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

// Backward kernels: scatter-add g to the recorded argmax of each window / spread it over windows.
Tensor max_pool2d_backward(const Tensor& grad, const Tensor& indices, const Shape& input_shape);
Tensor avg_pool2d_backward(const Tensor& grad, const Shape& input_shape, const Pool2dParams& params);
Tensor adaptive_avg_pool2d_backward(const Tensor& grad, const Shape& input_shape);

}  // namespace loupe::ops
