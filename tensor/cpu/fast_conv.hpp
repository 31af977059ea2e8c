// Fast 2-d convolution on the CPU: im2col + GEMM over blocks of several images at once.
//
// The reference kernels (tensor/cpu/conv.hpp) run one GEMM per image; for the deep layers of a
// CNN (a 7x7 or 14x14 output) that GEMM is thin (N = 49 or 196 columns) and the GEMM spends its
// time packing instead of multiplying. Here `nb` images share one GEMM:
//   cols (rows, nb * Ho * Wo), image i's columns at [i * Ho * Wo, (i + 1) * Ho * Wo)
//   forward          out_blk (cout, nb Ho Wo) = weight_g (cout, rows) @ cols
//   backward-data    dcols = weight_g^T @ grad_blk (cout, nb Ho Wo), then col2im per image
//   backward-weight  grad_w (cout, rows) += grad_blk @ cols^T, blocks summed in a fixed order
// nb is chosen from the shape alone (enough columns for the GEMM, a cols buffer that stays in the
// last-level cache), so results never depend on the thread count. A 1x1 stride-1 convolution of
// one image reads x (and writes out) in place, with no im2col at all; otherwise forward and
// backward-weight generate the im2col values straight into the GEMM's packed operand
// (gemm_packed_b) rather than into a cols matrix. Depthwise convolutions (one
// input channel per group) go to the direct kernels of tensor/cpu/depthwise_conv.hpp instead, and
// float 3x3 stride-1 convolutions with 32+ channels to Winograd's F(2x2, 3x3)
// (tensor/cpu/winograd_conv.hpp; their backward-data runs as the flipped forward convolution).
// Layouts as in tensor/cpu/conv.hpp: x (N, C, H, W), weight (O, C / groups, kh, kw), out (N, O, Ho, Wo).
// Tests: tests/ops/test_fast_kernels.cpp (against the reference kernels).
#pragma once

#include "tensor/cpu/conv.hpp"

namespace loupe::cpu::fast {

// Images per GEMM for geometry g and element size `bytes`.
int64_t conv_images_per_block(const ConvGeometry& g, int64_t bytes);

template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* out);
template <typename T>
void conv2d_backward_input(const ConvGeometry& g, const T* grad_out, const T* weight, T* grad_x);
template <typename T>
void conv2d_backward_weight(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_weight);

}  // namespace loupe::cpu::fast
