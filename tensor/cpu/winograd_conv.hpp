// 3x3 stride-1 convolutions by Winograd's minimal filtering, F(2x2, 3x3) (Lavin and Gray, 2015).
//
// A 2x2 block of outputs of a 3x3 filter needs 36 multiplications done directly; Winograd's
// transform does it with 16, by moving to a basis where the convolution is elementwise:
//   Y = A^T [ (G g G^T) . (B^T d B) ] A
// with d the 4x4 input patch under the 2x2 output tile, g the 3x3 filter and "." the elementwise
// product (the matrices are in winograd_conv.cpp). Summed over input channels, each of the 16
// positions xi of the 4x4 transformed tile is one matrix product:
//   M[xi] (O, tiles) = U[xi] (O, C) @ V[xi] (C, tiles),  U = G g G^T,  V = B^T d B,
// so a convolution becomes 16 GEMMs that are each 1/9 of im2col's (2.25x fewer multiplications in
// total) plus three cheap transforms: weights once per call, input tiles, output tiles.
//
// F(2x2, 3x3) is the variant with small transform coefficients (0, +-1, +-1/2): its rounding
// error is within a few units of a direct float sum (tested against the reference kernel). The
// larger tiles (F(4x4, 3x3): 4x fewer multiplications) have coefficients up to 8 and lose about
// two more digits; they are not used.
//
// Used by tensor/cpu/fast_conv.cpp for float 3x3 stride-1 convolutions without groups or dilation
// (the bulk of ResNet's work), forward and, through the flipped-weight route, backward-data; and
// for their weight gradients, by the same identity read the other way round (F(3x3, 2x2)).
// Results do not depend on the thread count: every output is the same GEMM dot products
// (fixed order over the input channels) and the same transform arithmetic however the tiles are
// split into blocks.
// Tests: tests/ops/test_fast_kernels.cpp (against the reference convolution).
#pragma once

#include "tensor/cpu/conv.hpp"

namespace loupe::cpu::winograd {

// Whether geometry g runs here (T = float only: double keeps the exact im2col route, which the
// float64 gradchecks rely on), at least 32 input and output channels and an output of at least
// 16x16, or of at least 12x12 with 64 channels and 256 tiles in the batch (measured, see
// winograd_conv.cpp). LOUPE_CONV_WINOGRAD=0 turns it off (benchmarks compare both).
bool applies(const ConvGeometry& g);

// out (N, O, Ho, Wo) = conv(x, weight) + bias (bias may be null); layouts as in conv.hpp. With
// weights_flipped, weight is (C, O, 3, 3): the convolution whose input gradient g computes
// (backward-data as a forward convolution), read with its taps reversed and channels swapped.
void forward(const ConvGeometry& g, const float* x, const float* weight, bool weights_flipped, const float* bias,
             float* out);

// Whether backward_weight runs geometry g: as applies(), from outputs of 12x12 on (measured).
bool applies_to_weight_gradient(const ConvGeometry& g);

// grad_weight (O, C, 3, 3) = the weight gradient of the same convolution, by the transposed
// algorithm F(3x3, 2x2): 16 GEMMs over the tiles (winograd_conv.cpp explains the identity).
void backward_weight(const ConvGeometry& g, const float* grad_out, const float* x, float* grad_weight);

}  // namespace loupe::cpu::winograd
