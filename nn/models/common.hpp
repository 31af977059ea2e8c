// What the model zoo shares: construction options and the conv -> batch norm -> ReLU unit of the
// Inception family (torchvision's BasicConv2d, timm's ConvNormAct: children "conv" and "bn").
// Tests: tests/nn/models/test_models.cpp
#pragma once

#include <array>
#include <memory>
#include <string>

#include "nn/layers/layers.hpp"

namespace loupe::nn {

struct ModelOptions {
  int64_t num_classes = 1000;
  int64_t in_channels = 3;  // 1 for grey-scale images (only the first convolution changes)
  Generator* generator = nullptr;  // for the initial weights; null: the default generator
};

void check_model_options(const ModelOptions& options, const char* model);

// A convolution without bias (the zoo's convolutions are all followed by batch norm).
std::shared_ptr<Conv2d> conv_no_bias(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
                                     std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                                     Generator* generator);

// conv (no bias) -> BatchNorm2d(eps) -> ReLU.
class ConvBnRelu : public Module {
 public:
  ConvBnRelu(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
             std::array<int64_t, 2> stride, std::array<int64_t, 2> padding, double eps, Generator* generator);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ConvBnRelu"; }

  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
};

}  // namespace loupe::nn
