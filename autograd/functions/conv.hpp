// Differentiable conv2d. Forward and raw backward kernels: tensor/ops/conv.hpp.
// Node: OpKind::conv2d, inputs {x, weight, bias}, saved {x, weight},
//       attrs {stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups}.
// Tests: tests/ops/op_table_conv.cpp
#pragma once

#include "tensor/ops/conv.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

// x (N, C, H, W) or (C, H, W), weight (O, C / groups, kh, kw), bias (O) or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dParams& params = {});

}  // namespace loupe
