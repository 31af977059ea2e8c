// Pooling layers over (N, C, H, W) or (C, H, W): MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, with
// torch.nn's arguments and defaults (stride defaults to the kernel size). Forward:
// autograd/functions/pool.hpp. No parameters.
// Tests: tests/nn/models/test_layers.cpp
#pragma once

#include <array>
#include <string>

#include "nn/module.hpp"

namespace loupe::nn {

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const Pool2dParams& params) : params_(params) {}
  // stride 0 = the kernel size.
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }

 private:
  Pool2dParams params_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const Pool2dParams& params) : params_(params) {}
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false,
                     bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AvgPool2d"; }

 private:
  Pool2dParams params_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(std::array<int64_t, 2> output_size) : output_size_(output_size) {}
  explicit AdaptiveAvgPool2d(int64_t output_size) : output_size_{output_size, output_size} {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }

 private:
  std::array<int64_t, 2> output_size_;
};

}  // namespace loupe::nn
