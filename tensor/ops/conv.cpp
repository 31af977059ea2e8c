// conv2d and its raw backward kernels: argument checks and shapes here, the arithmetic in
// tensor/cpu/fast_conv.cpp (im2col + GEMM over blocks of images) or, with
// LOUPE_REFERENCE_KERNELS=1, the reference kernels of tensor/cpu/conv.cpp (one image per GEMM).
// See conv.hpp.
#include "tensor/ops/conv.hpp"

#include "tensor/cpu/conv.hpp"
#include "tensor/cpu/fast_conv.hpp"
#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/view.hpp"
#include "tensor/cuda/ops.hpp"

namespace loupe::ops {

namespace {

std::string params_str(const Conv2dParams& p) {
  return detail::make_message("stride (", p.stride[0], ", ", p.stride[1], "), padding (", p.padding[0], ", ",
                              p.padding[1], "), dilation (", p.dilation[0], ", ", p.dilation[1], "), groups ",
                              p.groups);
}

// The geometry of conv2d on an input of shape (N, C, H, W) (or unbatched (C, H, W)) with a
// weight of shape (O, C / groups, kh, kw); every inconsistency raises an Error naming `op`.
}  // namespace

cpu::ConvGeometry conv2d_geometry(const Shape& input, const Shape& weight, const Conv2dParams& p, const char* op) {
  LOUPE_CHECK(input.size() == 3 || input.size() == 4, op,
              ": expected input of shape (N, C, H, W) or (C, H, W), got ", shape_str(input));
  LOUPE_CHECK(weight.size() == 4, op, ": expected weight of shape (O, C / groups, kh, kw), got ", shape_str(weight));
  LOUPE_CHECK(p.groups >= 1 && p.stride[0] >= 1 && p.stride[1] >= 1 && p.padding[0] >= 0 && p.padding[1] >= 0 &&
                  p.dilation[0] >= 1 && p.dilation[1] >= 1,
              op, ": invalid parameters: ", params_str(p), " (stride, dilation and groups must be positive, padding >= 0)");
  const bool batched = input.size() == 4;
  cpu::ConvGeometry g{};
  g.batch = batched ? input[0] : 1;
  g.in_channels = input[batched ? 1 : 0];
  g.height = input[batched ? 2 : 1];
  g.width = input[batched ? 3 : 2];
  g.out_channels = weight[0];
  g.kernel_h = weight[2];
  g.kernel_w = weight[3];
  g.stride_h = p.stride[0];
  g.stride_w = p.stride[1];
  g.pad_h = p.padding[0];
  g.pad_w = p.padding[1];
  g.dilation_h = p.dilation[0];
  g.dilation_w = p.dilation[1];
  g.groups = p.groups;
  LOUPE_CHECK(g.in_channels % p.groups == 0 && g.out_channels % p.groups == 0, op, ": input channels (",
              g.in_channels, ") and output channels (", g.out_channels, ") must both be divisible by groups (",
              p.groups, "); input ", shape_str(input), ", weight ", shape_str(weight));
  LOUPE_CHECK(weight[1] == g.in_channels / p.groups, op, ": weight ", shape_str(weight), " expects ",
              weight[1] * p.groups, " input channels for groups = ", p.groups, ", but input ", shape_str(input),
              " has ", g.in_channels);
  LOUPE_CHECK(g.kernel_h >= 1 && g.kernel_w >= 1, op, ": kernel size must be positive, weight ", shape_str(weight));
  const int64_t padded_h = g.height + 2 * g.pad_h, padded_w = g.width + 2 * g.pad_w;
  const int64_t span_h = g.dilation_h * (g.kernel_h - 1) + 1, span_w = g.dilation_w * (g.kernel_w - 1) + 1;
  LOUPE_CHECK(span_h <= padded_h && span_w <= padded_w, op, ": padded input size (", padded_h, " x ", padded_w,
              ") is smaller than the dilated kernel (", span_h, " x ", span_w, "); input ", shape_str(input),
              ", weight ", shape_str(weight), ", ", params_str(p));
  g.out_h = (padded_h - span_h) / g.stride_h + 1;
  g.out_w = (padded_w - span_w) / g.stride_w + 1;
  return g;
}

namespace {

Shape output_shape(const cpu::ConvGeometry& g, bool batched) {
  if (batched) return {g.batch, g.out_channels, g.out_h, g.out_w};
  return {g.out_channels, g.out_h, g.out_w};
}

void check_tensor(const Tensor& t, const char* what, DType dtype, const char* op) {
  LOUPE_CHECK(t.defined(), op, ": ", what, " is undefined");
  LOUPE_CHECK(t.device().is_cpu(), op, ": only CPU tensors are supported");
  LOUPE_CHECK(t.dtype() == dtype, op, ": ", what, " has dtype ", t.dtype(), " but expected ", dtype);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params) {
  if (x.device().is_cuda()) return cuda::conv2d(x, weight, bias, params);
  LOUPE_CHECK(x.defined(), "conv2d: input is undefined");
  LOUPE_CHECK(is_floating(x.dtype()), "conv2d: expected a floating dtype (float32 or float64), got ", x.dtype());
  check_tensor(x, "input", x.dtype(), "conv2d");
  check_tensor(weight, "weight", x.dtype(), "conv2d");
  const cpu::ConvGeometry g = conv2d_geometry(x.shape(), weight.shape(), params, "conv2d");
  if (bias.defined()) {
    check_tensor(bias, "bias", x.dtype(), "conv2d");
    LOUPE_CHECK(bias.dim() == 1 && bias.size(0) == g.out_channels, "conv2d: bias must have shape (",
                g.out_channels, "), got ", shape_str(bias.shape()));
  }
  const bool batched = x.dim() == 4;
  Tensor out = Tensor::empty(output_shape(g, batched), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  const Tensor xc = contiguous(x), wc = contiguous(weight), bc = bias.defined() ? contiguous(bias) : Tensor();
  dispatch_floating(x.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* b = bc.defined() ? bc.data<T>() : nullptr;
    if (cpu::fast::enabled()) {
      cpu::fast::conv2d_forward<T>(g, xc.data<T>(), wc.data<T>(), b, out.data<T>());
    } else {
      cpu::conv2d_forward<T>(g, xc.data<T>(), wc.data<T>(), b, out.data<T>());
    }
  });
  return out;
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dParams& params) {
  if (grad_out.device().is_cuda()) return cuda::conv2d_backward_input(grad_out, weight, input_shape, params);
  const char* op = "conv2d_backward_input";
  LOUPE_CHECK(grad_out.defined() && is_floating(grad_out.dtype()), op, ": expected a floating grad_out");
  check_tensor(weight, "weight", grad_out.dtype(), op);
  const cpu::ConvGeometry g = conv2d_geometry(input_shape, weight.shape(), params, op);
  const Shape expected = output_shape(g, input_shape.size() == 4);
  LOUPE_CHECK(grad_out.shape() == expected, op, ": grad_out has shape ", shape_str(grad_out.shape()),
              " but the convolution output has shape ", shape_str(expected));
  Tensor grad_x = Tensor::empty(input_shape, grad_out.dtype(), grad_out.device());
  if (grad_x.numel() == 0) return grad_x;
  const Tensor go = contiguous(grad_out), wc = contiguous(weight);
  dispatch_floating(grad_out.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (cpu::fast::enabled()) {
      cpu::fast::conv2d_backward_input<T>(g, go.data<T>(), wc.data<T>(), grad_x.data<T>());
    } else {
      cpu::conv2d_backward_input<T>(g, go.data<T>(), wc.data<T>(), grad_x.data<T>());
    }
  });
  return grad_x;
}

Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& params) {
  if (grad_out.device().is_cuda()) return cuda::conv2d_backward_weight(grad_out, x, weight_shape, params);
  const char* op = "conv2d_backward_weight";
  LOUPE_CHECK(grad_out.defined() && is_floating(grad_out.dtype()), op, ": expected a floating grad_out");
  check_tensor(x, "input", grad_out.dtype(), op);
  const cpu::ConvGeometry g = conv2d_geometry(x.shape(), weight_shape, params, op);
  const Shape expected = output_shape(g, x.dim() == 4);
  LOUPE_CHECK(grad_out.shape() == expected, op, ": grad_out has shape ", shape_str(grad_out.shape()),
              " but the convolution output has shape ", shape_str(expected));
  Tensor grad_w = Tensor::empty(weight_shape, grad_out.dtype(), grad_out.device());
  if (grad_w.numel() == 0) return grad_w;
  const Tensor go = contiguous(grad_out), xc = contiguous(x);
  dispatch_floating(grad_out.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (cpu::fast::enabled()) {
      cpu::fast::conv2d_backward_weight<T>(g, go.data<T>(), xc.data<T>(), grad_w.data<T>());
    } else {
      cpu::conv2d_backward_weight<T>(g, go.data<T>(), xc.data<T>(), grad_w.data<T>());
    }
  });
  return grad_w;
}

}  // namespace loupe::ops
