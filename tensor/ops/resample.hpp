// 2-d resampling of (N, C, H, W) images: F.interpolate's 'nearest' and 'bilinear' modes.
// Source coordinates follow PyTorch exactly:
//   nearest (legacy):            src = min(floor(dst * scale), in - 1)   (copy when out == in,
//                                src = dst / 2 when out == 2 in)
//   bilinear, align_corners off: src = max((dst + 0.5) * scale - 0.5, 0)
//   bilinear, align_corners on:  src = dst * (in - 1) / (out - 1)
// where scale = 1 / scale_factor when a scale factor was given, else in / out. So giving a scale
// factor is not the same as giving the size it produces (out = floor(in * scale_factor)), as in
// PyTorch with recompute_scale_factor left unset.
// Tests: tests/ops/op_table_resample.cpp
#pragma once

#include <array>

#include "tensor/tensor.hpp"

namespace loupe {

// Declared in namespace loupe (and named in ops too) so that argument-dependent lookup on it
// does not make an unqualified interpolate(...) in namespace loupe ambiguous with ops::interpolate.
enum class InterpolateMode { nearest, bilinear };

}  // namespace loupe

namespace loupe::ops {

using loupe::InterpolateMode;

const char* interpolate_mode_name(InterpolateMode mode);

// (N, C, H, W) -> (N, C, size[0], size[1]). align_corners only with bilinear (as in PyTorch).
Tensor interpolate(const Tensor& x, std::array<int64_t, 2> size, InterpolateMode mode, bool align_corners = false);
// (N, C, H, W) -> (N, C, floor(H * scale_h), floor(W * scale_w)).
Tensor interpolate(const Tensor& x, double scale_h, double scale_w, InterpolateMode mode, bool align_corners = false);

// The gradient with respect to x of shape input_shape, given grad of the output's shape.
// scales are the scale factors the forward was given ({0, 0} when it was given a size).
Tensor interpolate_backward(const Tensor& grad, const Shape& input_shape, InterpolateMode mode, bool align_corners,
                            std::array<double, 2> scales = {0.0, 0.0});

}  // namespace loupe::ops
