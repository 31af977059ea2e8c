// Inception-ResNet-v2 (Szegedy et al. 2017) as timm builds it ("inception_resnet_v2", the
// Cadene port), with timm's state-dict names: conv2d_1a, conv2d_2a, conv2d_2b, conv2d_3b,
// conv2d_4a (each .conv and .bn), mixed_5b, repeat (Block35 x 10, scale 0.17), mixed_6a,
// repeat_1 (Block17 x 20, scale 0.10), mixed_7a, repeat_2 (Block8 x 9, scale 0.20), block8
// (scale 1, no final ReLU), conv2d_7b, classif. Branches are named branch0, branch1, ... with
// Sequential children "0", "1", ...; batch norms use eps 0.001.
// timm gives this model no custom initialisation: every layer keeps PyTorch's default (conv and
// linear uniform +-1/sqrt(fan_in), batch norm weight 1, bias 0).
//   x (N, in_channels, H, W) -> logits (N, num_classes); H, W >= 75.
// Tests: tests/nn/models/test_models.cpp, tests/nn/models/test_fixtures.cpp
#pragma once

#include <functional>
#include <memory>

#include "nn/models/common.hpp"

namespace loupe::nn {

// Block35 / Block17 / Block8: y = act(x + scale * conv2d(cat(branches(x)))), conv2d a 1x1
// convolution with bias back to x's channels; act is a ReLU, or nothing for the final block8.
class ResidualInceptionBlock : public Module {
 public:
  ResidualInceptionBlock(std::string type, std::vector<std::shared_ptr<Module>> branches, int64_t branch_channels,
                         int64_t channels, double scale, bool relu, Generator* generator);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return type_; }

 private:
  std::string type_;
  std::vector<std::shared_ptr<Module>> branches_;
  std::shared_ptr<Conv2d> conv2d_;
  std::shared_ptr<ReLU> relu_;  // null: no activation
  double scale_;
};

class InceptionResNetV2 : public Module {
 public:
  explicit InceptionResNetV2(const ModelOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "InceptionResNetV2"; }

 private:
  std::shared_ptr<Module> conv2d_1a_, conv2d_2a_, conv2d_2b_, maxpool_3a_, conv2d_3b_, conv2d_4a_, maxpool_5a_;
  std::shared_ptr<Module> mixed_5b_, repeat_, mixed_6a_, repeat_1_, mixed_7a_, repeat_2_, block8_, conv2d_7b_;
  std::shared_ptr<Linear> classif_;
};

std::shared_ptr<InceptionResNetV2> inception_resnet_v2(const ModelOptions& options = {});

}  // namespace loupe::nn
