// Direct depthwise convolution on the CPU: every output channel reads exactly one input channel
// (groups == in_channels; out_channels = multiplier x in_channels, output channel o reads input
// channel o / multiplier), as in MobileNet / EfficientNet blocks.
//
// Through im2col + GEMM such a convolution is one GEMM per channel of shape
// (multiplier x kh kw) @ (kh kw x Ho Wo): a 1-row product with a depth of 9 that spends all its time
// packing. Here each output row is accumulated directly from kh input rows, tap by tap, with the
// row in L1: forward and backward-data are a handful of vectorised multiply-adds per element, and
// backward-weight is one dot product per tap and output row.
//
// Determinism: work is split over whole (image, channel) planes (forward, backward-data) or
// whole output channels (backward-weight), and every sum runs in an order fixed by the shape, so
// results do not depend on the thread count.
// Layouts as in tensor/cpu/conv.hpp. Reference: the im2col + GEMM kernels of tensor/cpu/conv.cpp.
// Tests: tests/ops/test_fast_kernels.cpp ("fast kernels: direct depthwise convolution ..."), and
// the op table's depthwise entries (f64 gradcheck) in tests/ops/op_table_conv.cpp.
#pragma once

#include "tensor/cpu/conv.hpp"

namespace loupe::cpu::depthwise {

// Whether the direct kernels handle geometry g: more than one group, one input channel per group.
inline bool applies(const ConvGeometry& g) { return g.groups > 1 && g.group_in() == 1; }

// out = conv2d(x, weight) + bias (bias may be null).
template <typename T>
void forward(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* out);
// grad_x (N, C, H, W) from grad_out and weight.
template <typename T>
void backward_input(const ConvGeometry& g, const T* grad_out, const T* weight, T* grad_x);
// grad_weight (O, 1, kh, kw) from grad_out and x.
template <typename T>
void backward_weight(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_weight);

}  // namespace loupe::cpu::depthwise
