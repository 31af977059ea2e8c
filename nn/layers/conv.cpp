// Conv2d. See conv.hpp.
#include "nn/layers/conv.hpp"

#include "nn/init.hpp"

namespace loupe::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
               const Conv2dOptions& options, Generator* generator)
    : in_channels_(in_channels), out_channels_(out_channels) {
  LOUPE_CHECK(in_channels > 0 && out_channels > 0, "Conv2d: channels must be positive, got ", in_channels, " -> ",
              out_channels);
  LOUPE_CHECK(options.groups > 0 && in_channels % options.groups == 0 && out_channels % options.groups == 0,
              "Conv2d: groups ", options.groups, " must divide in_channels ", in_channels, " and out_channels ",
              out_channels);
  LOUPE_CHECK(kernel_size[0] > 0 && kernel_size[1] > 0, "Conv2d: kernel size must be positive, got (", kernel_size[0],
              ", ", kernel_size[1], ")");
  for (int i = 0; i < 2; ++i) {
    LOUPE_CHECK(options.stride[i] > 0 && options.dilation[i] > 0 && options.padding[i] >= 0,
                "Conv2d: stride and dilation must be positive and padding non-negative");
  }
  params_.stride = options.stride;
  params_.padding = options.padding;
  params_.dilation = options.dilation;
  params_.groups = options.groups;
  weight = register_parameter(
      "weight", Tensor::empty({out_channels, in_channels / options.groups, kernel_size[0], kernel_size[1]}));
  init::default_weight_(weight, generator);
  if (options.bias) {
    bias = register_parameter("bias", Tensor::empty({out_channels}));
    init::default_bias_(bias, init::calculate_fans(weight).fan_in, generator);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  LOUPE_CHECK(x.defined() && (x.dim() == 4 || x.dim() == 3) && x.size(-3) == in_channels_, "Conv2d: expected input (N, ",
              in_channels_, ", H, W) or (", in_channels_, ", H, W), got ", x.defined() ? shape_str(x.shape()) : "undefined");
  return conv2d(x, weight, bias, params_);
}

void Conv2d::set_bias(const Tensor& value) {
  LOUPE_CHECK(value.defined() && value.dim() == 1 && value.size(0) == out_channels_, "Conv2d::set_bias: expected (",
              out_channels_, "), got ", value.defined() ? shape_str(value.shape()) : "undefined");
  NoGradGuard no_grad;
  if (bias.defined()) {
    ops::copy_(bias, value);
  } else {
    Tensor b = Tensor::empty({out_channels_}, weight.dtype(), weight.device());
    ops::copy_(b, value);
    bias = register_parameter("bias", b);
  }
}

}  // namespace loupe::nn
