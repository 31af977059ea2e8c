// ResNet18 and ResNet34 (He et al. 2016) exactly as torchvision builds them: BasicBlocks [2,2,2,2]
// and [3,4,6,3], state-dict names conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, ..., fc.
// Initialisation as torchvision: convolutions kaiming_normal (fan_out, relu), batch norm weight 1
// and bias 0, fc torch.nn.Linear's default.
//   x (N, in_channels, H, W) -> logits (N, num_classes); any H, W >= 32 works (global pooling).
// Variants for small images (not torchvision's; the defaults build torchvision's model):
//   small_input  the stem is a 3x3 stride-1 convolution (padding 1) instead of 7x7 stride 2, the
//                max-pool stays, so a 28x28 image reaches layer1 at 14x14 (not 7x7)
//   width        channels of layer1 (then 2x, 4x, 8x); 64 in torchvision
// Tests: tests/nn/models/test_models.cpp, tests/nn/models/test_fixtures.cpp, tests/nn/train/
#pragma once

#include <memory>
#include <vector>

#include "nn/models/common.hpp"

namespace loupe::nn {

// conv3x3 -> bn -> relu -> conv3x3 -> bn, plus the input (through downsample when the shape
// changes), then relu.
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_planes, int64_t planes, int64_t stride, Generator* generator);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<Sequential> downsample_;  // null when the block keeps its input's shape
};

struct ResNetVariant {
  bool small_input = false;
  int64_t width = 64;
};

class ResNet : public Module {
 public:
  ResNet(const std::vector<int64_t>& blocks_per_layer, const ModelOptions& options = {},
         const ResNetVariant& variant = {});
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ResNet"; }

 private:
  std::shared_ptr<Module> conv1_, maxpool_, avgpool_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<ReLU> relu_;
  std::vector<std::shared_ptr<Sequential>> layers_;
  std::shared_ptr<Linear> fc_;
};

std::shared_ptr<ResNet> resnet18(const ModelOptions& options = {}, const ResNetVariant& variant = {});
std::shared_ptr<ResNet> resnet34(const ModelOptions& options = {}, const ResNetVariant& variant = {});

}  // namespace loupe::nn
