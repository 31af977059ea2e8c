// Shared model parts. See common.hpp.
#include "nn/models/common.hpp"

namespace loupe::nn {

void check_model_options(const ModelOptions& options, const char* model) {
  LOUPE_CHECK(options.num_classes > 0, model, ": num_classes must be positive, got ", options.num_classes);
  LOUPE_CHECK(options.in_channels > 0, model, ": in_channels must be positive, got ", options.in_channels);
}

std::shared_ptr<Conv2d> conv_no_bias(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
                                     std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                                     Generator* generator) {
  Conv2dOptions o;
  o.stride = stride;
  o.padding = padding;
  o.bias = false;
  return std::make_shared<Conv2d>(in_channels, out_channels, kernel_size, o, generator);
}

ConvBnRelu::ConvBnRelu(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
                       std::array<int64_t, 2> stride, std::array<int64_t, 2> padding, double eps, Generator* generator) {
  conv = register_module("conv", conv_no_bias(in_channels, out_channels, kernel_size, stride, padding, generator));
  BatchNormOptions bo;
  bo.eps = eps;
  bn = register_module("bn", std::make_shared<BatchNorm2d>(out_channels, bo));
}

Tensor ConvBnRelu::forward(const Tensor& x) {
  // The ReLU is not a module here: batch norm and ReLU are one pass unless a hook watches bn.
  const Tensor y = (*conv)(x);
  return bn->forward_hook_count() == 0 ? bn->forward_then_relu(y) : relu((*bn)(y));
}

}  // namespace loupe::nn
