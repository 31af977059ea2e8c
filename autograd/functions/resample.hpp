// Differentiable 2-d interpolation (nearest, bilinear). Forward and backward kernels:
// tensor/ops/resample.hpp. Nodes have kind interpolate and attrs {mode (0 nearest, 1 bilinear),
// align_corners, scale_h, scale_w} (scales 0 when a size was given).
// Tests: tests/ops/op_table_resample.cpp
#pragma once

#include <array>

#include "tensor/ops/resample.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

// (N, C, H, W) -> (N, C, size[0], size[1])
Tensor interpolate(const Tensor& x, std::array<int64_t, 2> size, InterpolateMode mode, bool align_corners = false);
// (N, C, H, W) -> (N, C, floor(H * scale_h), floor(W * scale_w))
Tensor interpolate(const Tensor& x, double scale_h, double scale_w, InterpolateMode mode, bool align_corners = false);

}  // namespace loupe
