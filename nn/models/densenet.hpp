// DenseNet-BC (Huang et al. 2017) exactly as torchvision builds it, with its state-dict names:
// features.conv0, features.norm0, features.denseblock1.denselayer1.{norm1,conv1,norm2,conv2},
// features.transition1.{norm,conv}, ..., features.norm5, classifier.
//   densenet121: growth 32, blocks [6, 12, 24, 16], 64 initial features
//   densenet161: growth 48, blocks [6, 12, 36, 24], 96 initial features   (bn_size 4, no dropout)
// Initialisation as torchvision: convolutions kaiming_normal (fan_in, gain sqrt(2)), batch norm
// weight 1 and bias 0, classifier bias 0 (weight: torch.nn.Linear's default).
//   x (N, in_channels, H, W) -> logits (N, num_classes); H, W >= 32.
// Tests: tests/nn/models/test_models.cpp, tests/nn/models/test_fixtures.cpp
#pragma once

#include <memory>
#include <vector>

#include "nn/models/common.hpp"

namespace loupe::nn {

struct DenseNetConfig {
  int64_t growth_rate = 32;
  std::vector<int64_t> block_config{6, 12, 24, 16};
  int64_t num_init_features = 64;
  int64_t bn_size = 4;
};

// norm1 -> relu1 -> conv1 (1x1, bn_size * growth) -> norm2 -> relu2 -> conv2 (3x3, growth).
// Input: the concatenation of every earlier feature map of the block.
class DenseLayer : public Module {
 public:
  DenseLayer(int64_t in_features, int64_t growth_rate, int64_t bn_size, Generator* generator);
  Tensor forward(const Tensor& x) override;
  // forward(cat(features, 1)), with the concatenation, norm1 and relu1 done in one pass when
  // nothing is recorded and norm1 is plain inference (batch_norm_relu_of_concat). DenseBlock calls
  // it when the layer has no forward hook (a hook wants the layer's input as one tensor).
  Tensor forward_features(const std::vector<Tensor>& features);
  std::string type_name() const override { return "DenseLayer"; }

 private:
  std::shared_ptr<BatchNorm2d> norm1_, norm2_;
  std::shared_ptr<ReLU> relu1_, relu2_;
  std::shared_ptr<Module> conv1_, conv2_;
};

// Each layer sees cat(input, every earlier layer's output); the block returns that whole
// concatenation: (N, C, H, W) -> (N, C + layers * growth, H, W).
class DenseBlock : public Module {
 public:
  DenseBlock(int64_t layers, int64_t in_features, int64_t growth_rate, int64_t bn_size, Generator* generator);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "DenseBlock"; }

 private:
  std::vector<std::shared_ptr<DenseLayer>> layers_;
};

class DenseNet : public Module {
 public:
  DenseNet(const DenseNetConfig& config, const ModelOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "DenseNet"; }

  std::shared_ptr<Sequential> features;  // (N, in_channels, H, W) -> (N, F, H / 32, W / 32)
  std::shared_ptr<Linear> classifier;
};

std::shared_ptr<DenseNet> densenet121(const ModelOptions& options = {});
std::shared_ptr<DenseNet> densenet161(const ModelOptions& options = {});

}  // namespace loupe::nn
