// 2-d convolution (PyTorch's conv2d, i.e. cross-correlation) and its two raw backward kernels.
//   x:      (N, C, H, W) or unbatched (C, H, W)
//   weight: (O, C / groups, kh, kw)
//   bias:   (O) or undefined
//   out:    (N, O, Ho, Wo) with Ho = (H + 2 ph - dh (kh - 1) - 1) / sh + 1 (same for W)
// Computed by im2col + GEMM per sample and group (tensor/cpu/conv.hpp).
// Tests: tests/ops/op_table_conv.cpp
#pragma once

#include <array>
#include <cstdint>

#include "tensor/cpu/conv.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

// Declared in namespace loupe (and named loupe::ops::Conv2dParams below) on purpose: if it lived
// only in loupe::ops, argument-dependent lookup would find ops::conv2d next to loupe::conv2d and
// make every unqualified conv2d(x, w, b, params) call ambiguous.
struct Conv2dParams {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};

}  // namespace loupe

namespace loupe::ops {

using Conv2dParams = loupe::Conv2dParams;

// The shapes of one conv2d call (input (N, C, H, W) or (C, H, W), weight (O, C / groups, kh, kw))
// with every check of the op; each inconsistency raises an Error naming `op`. Shared by the CPU
// and CUDA backends so both accept and reject exactly the same calls.
cpu::ConvGeometry conv2d_geometry(const Shape& input, const Shape& weight, const Conv2dParams& params, const char* op);

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dParams& params = {});

// dL/dx for conv2d: grad_out (N, O, Ho, Wo) or (O, Ho, Wo), weight (O, C / groups, kh, kw);
// returns a tensor of input_shape (col2im of weight^T @ grad_out).
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dParams& params);
// dL/dweight for conv2d: grad_out as above, x the forward input; returns a tensor of weight_shape.
Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& params);

}  // namespace loupe::ops
