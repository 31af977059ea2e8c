// Inception-v3 (Szegedy et al. 2016) exactly as torchvision builds it (transform_input=False),
// with its state-dict names: Conv2d_1a_3x3.conv / .bn, ..., Mixed_5b.branch1x1, ..., Mixed_7c,
// AuxLogits.conv0 / conv1 / fc, fc. Every convolution is conv (no bias) -> BatchNorm(eps 0.001)
// -> ReLU. The auxiliary classifier reads Mixed_6e's output and runs only in training (as
// torchvision's); train with loss = loss(logits) + aux_loss_weight * loss(aux) (weight 0.4).
// Initialisation as torchvision: convolutions and linear weights trunc_normal(std 0.1, bounds
// +-2) — std 0.01 for AuxLogits.conv1 and 0.001 for AuxLogits.fc — batch norm weight 1, bias 0;
// linear biases keep torch.nn.Linear's default.
//   x (N, in_channels, H, W) -> logits (N, num_classes); H, W >= 75 (the auxiliary head, in
//   training, needs Mixed_6e maps of at least 17x17: H, W >= 299).
// Tests: tests/nn/models/test_models.cpp, tests/nn/models/test_fixtures.cpp
#pragma once

#include <memory>
#include <utility>

#include "nn/models/common.hpp"

namespace loupe::nn {

struct InceptionV3Options {
  bool aux_logits = true;  // build the auxiliary head (its parameters are in the state dict)
  double dropout = 0.5;    // before fc
};

class InceptionV3 : public Module {
 public:
  static constexpr double aux_loss_weight = 0.4;

  explicit InceptionV3(const ModelOptions& options = {}, const InceptionV3Options& v3 = {});
  // The main logits (N, num_classes), in training and in eval.
  Tensor forward(const Tensor& x) override;
  // {logits, aux logits}; aux is defined only in training with aux_logits.
  std::pair<Tensor, Tensor> forward_with_aux(const Tensor& x);
  std::string type_name() const override { return "InceptionV3"; }

  std::shared_ptr<Module> aux_head() const { return aux_; }  // null without aux_logits

 private:
  std::shared_ptr<Module> stem_[5], mixed_[11], aux_, dropout_;
  std::shared_ptr<Linear> fc_;
};

std::shared_ptr<InceptionV3> inception_v3(const ModelOptions& options = {}, const InceptionV3Options& v3 = {});

}  // namespace loupe::nn
