// CPU kernels of 2-d convolution: im2col / col2im and the forward and backward drivers built on
// them and on GEMM (tensor/cpu/gemm.hpp). All tensors are contiguous here; tensor/ops/conv.cpp
// checks shapes and makes operands contiguous before calling in.
//   x (N, C, H, W), weight (O, C / groups, kh, kw), out (N, O, Ho, Wo)
// For one sample and group, im2col turns the (C / groups, H, W) input into the matrix
//   cols (C / groups * kh * kw, Ho * Wo),  cols[(c * kh + i) * kw + j][oh * Wo + ow]
//                                            = x[c][oh * sh - ph + i * dh][ow * sw - pw + j * dw]
// (zero where that falls in the padding), so the convolution is weight_g (O / groups, rows) @ cols.
// Tests: tests/ops/op_table_conv.cpp
#pragma once

#include <algorithm>
#include <cstdint>

namespace loupe::cpu {

struct ConvGeometry {
  int64_t batch, in_channels, height, width;  // x (N, C, H, W)
  int64_t out_channels, kernel_h, kernel_w;   // weight (O, C / groups, kh, kw)
  int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups;
  int64_t out_h, out_w;

  int64_t group_in() const { return in_channels / groups; }
  int64_t group_out() const { return out_channels / groups; }
  int64_t col_rows() const { return group_in() * kernel_h * kernel_w; }  // GEMM depth
  int64_t col_cols() const { return out_h * out_w; }
  // A 1x1 kernel with stride 1 and no padding reads x as it is: cols == x, no im2col needed.
  bool is_pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

// The output positions o in [0, out) whose input position o * stride + offset lies in [0, size):
// [first, last). Lets the im2col / col2im inner loops run without bounds checks.
inline void valid_range(int64_t out, int64_t stride, int64_t offset, int64_t size, int64_t& first, int64_t& last) {
  // o * stride + offset >= 0  <=>  o >= ceil(-offset / stride)
  first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  // o * stride + offset <= size - 1  <=>  o <= floor((size - 1 - offset) / stride)
  last = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  first = std::min(first, out);
  last = std::clamp(last, first, out);
}

// One row of an im2col matrix: the input plane (H, W) sampled at every output position for kernel
// offset (ki, kj), with zeros where the window lies in the padding. row holds out_h * out_w values.
template <typename T>
void im2col_row(const ConvGeometry& g, const T* plane, int64_t ki, int64_t kj, T* row) {
  const int64_t off_h = ki * g.dilation_h - g.pad_h, off_w = kj * g.dilation_w - g.pad_w;
  int64_t ow0, ow1;
  valid_range(g.out_w, g.stride_w, off_w, g.width, ow0, ow1);
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    T* dst = row + oh * g.out_w;
    const int64_t ih = oh * g.stride_h + off_h;
    if (ih < 0 || ih >= g.height) {
      std::fill(dst, dst + g.out_w, T(0));
      continue;
    }
    const T* src = plane + ih * g.width;
    std::fill(dst, dst + ow0, T(0));
    if (g.stride_w == 1) {
      std::copy(src + ow0 + off_w, src + ow1 + off_w, dst + ow0);
    } else {
      for (int64_t ow = ow0; ow < ow1; ++ow) dst[ow] = src[ow * g.stride_w + off_w];
    }
    std::fill(dst + ow1, dst + g.out_w, T(0));
  }
}

// x_group (C / groups, H, W) -> cols (col_rows, col_cols).
template <typename T>
void im2col(const ConvGeometry& g, const T* x_group, T* cols);
// x_group (C / groups, H, W) += the columns scattered back (the adjoint of im2col).
template <typename T>
void col2im_add(const ConvGeometry& g, const T* cols, T* x_group);

// out = conv2d(x, weight) + bias; bias may be null.
template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* out);
// grad_x (N, C, H, W) from grad_out (N, O, Ho, Wo) and weight.
template <typename T>
void conv2d_backward_input(const ConvGeometry& g, const T* grad_out, const T* weight, T* grad_x);
// grad_weight (O, C / groups, kh, kw) from grad_out and x.
template <typename T>
void conv2d_backward_weight(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_weight);

}  // namespace loupe::cpu
