// Pooling layers. See pool.hpp.
#include "nn/layers/pool.hpp"

namespace loupe::nn {

namespace {
Pool2dParams square(int64_t kernel_size, int64_t stride, int64_t padding, bool ceil_mode) {
  Pool2dParams p;
  p.kernel = {kernel_size, kernel_size};
  p.stride = {stride, stride};
  p.padding = {padding, padding};
  p.ceil_mode = ceil_mode;
  return p;
}
}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel_size, int64_t stride, int64_t padding, bool ceil_mode)
    : params_(square(kernel_size, stride, padding, ceil_mode)) {}

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, params_); }

AvgPool2d::AvgPool2d(int64_t kernel_size, int64_t stride, int64_t padding, bool ceil_mode, bool count_include_pad)
    : params_(square(kernel_size, stride, padding, ceil_mode)) {
  params_.count_include_pad = count_include_pad;
}

Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, params_); }

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size_); }

}  // namespace loupe::nn
