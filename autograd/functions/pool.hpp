// Differentiable 2-d pooling. Forward and backward kernels: tensor/ops/pool.hpp.
// max_pool2d nodes save {x, y, indices} and attrs {kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode}
// (stride already resolved from 0 to the kernel), the convention rules such as DeepLIFT's read.
// Tests: tests/ops/op_table_pool.cpp
#pragma once

#include <array>

#include "tensor/ops/pool.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

using ops::Pool2dParams;

ops::ValuesIndices max_pool2d_with_indices(const Tensor& x, const Pool2dParams& params);  // values differentiable
Tensor max_pool2d(const Tensor& x, const Pool2dParams& params);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params);
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

}  // namespace loupe
