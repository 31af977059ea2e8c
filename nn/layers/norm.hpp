// Normalisation layers with PyTorch's state-dict layout.
//
// BatchNorm2d: parameters weight, bias (C) when affine; buffers running_mean (C, zeros),
// running_var (C, ones) and num_batches_tracked (0-d int64) when track_running_stats. In training
// (or without running statistics) it normalises by the batch's statistics and updates the running
// ones in place; in eval it normalises by the running ones. momentum < 0 is PyTorch's
// momentum=None: the running statistics become a cumulative average (factor 1/num_batches_tracked).
// x (N, C, H, W).
//
// LayerNorm: weight (ones) and bias (zeros) of normalized_shape when elementwise_affine.
// x (..., *normalized_shape).
// Tests: tests/nn/models/test_layers.cpp, tests/nn/models/test_fixtures.cpp
#pragma once

#include <string>

#include "distributed/communicator.hpp"
#include "nn/module.hpp"

namespace loupe::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;  // < 0: cumulative moving average
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& options = {});
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) in one pass over the output where nothing is recorded (autograd's
  // batch_norm_relu; recording, it records the same two nodes). Call it through
  // batch_norm_then_relu, which keeps the modules' hooks working.
  Tensor forward_then_relu(const Tensor& x);
  // Whether forward normalises by the running statistics alone (eval mode, tracking, not folded):
  // an affine map per channel, which batch_norm_relu_of_concat can apply.
  bool is_plain_inference() const { return !is_training() && options_.track_running_stats && !folded_; }
  std::string type_name() const override { return "BatchNorm2d"; }
  int64_t num_features() const { return num_features_; }
  const BatchNormOptions& options() const { return options_; }
  // In training, normalise by the statistics of the whole batch spread over the ranks of `group`
  // (distributed/sync_batch_norm.hpp) instead of this process's shard; null: the shard's own.
  void set_sync_group(std::shared_ptr<distributed::Communicator> group) { sync_group_ = std::move(group); }

  // Folded into the preceding convolution (nn/fold_batch_norm.hpp): forward returns its input
  // unchanged, in eval mode only (training a folded model raises loupe::Error). The parameters
  // and running statistics stay as they were, so the state dict keeps its keys and values.
  void mark_folded() { folded_ = true; }
  bool folded() const { return folded_; }

  Tensor weight, bias;                                  // (C) or undefined
  Tensor running_mean, running_var, num_batches_tracked;  // (C), (C), () int64, or undefined

 private:
  Tensor run(const Tensor& x, bool then_relu);

  int64_t num_features_;
  BatchNormOptions options_;
  std::shared_ptr<distributed::Communicator> sync_group_;
  bool folded_ = false;
};

// relu(norm(x)) for a BatchNorm2d followed by a ReLU module: forward_then_relu when neither module
// has a forward hook, otherwise the two modules' operator() as written (so hooks see both).
Tensor batch_norm_then_relu(BatchNorm2d& norm, Module& relu, const Tensor& x);

// Sets the sync group of every BatchNorm2d in `model` (null: back to per-rank statistics); returns
// how many there are.
int64_t set_sync_batch_norm(Module& model, std::shared_ptr<distributed::Communicator> group);

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LayerNorm"; }

  Tensor weight, bias;  // normalized_shape, or undefined

 private:
  Shape normalized_shape_;
  double eps_;
};

// RMSNorm: y = x / sqrt(mean(x^2) + eps) * weight over the trailing normalized_shape, weight
// (ones) when elementwise_affine. eps < 0 is PyTorch's eps=None (the dtype's machine epsilon);
// Llama-style models pass 1e-6. x (..., *normalized_shape). Tests: tests/nn/test_transformer.cpp
class RMSNorm : public Module {
 public:
  explicit RMSNorm(Shape normalized_shape, double eps = -1.0, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "RMSNorm"; }

  Tensor weight;  // normalized_shape, or undefined

 private:
  Shape normalized_shape_;
  double eps_;
};

}  // namespace loupe::nn
