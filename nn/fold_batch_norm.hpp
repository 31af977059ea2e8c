// Batch-norm folding: an inference transform that moves every eval-mode BatchNorm2d that directly
// follows a convolution into that convolution's weights and bias, so one layer does the work of two.
//
// In eval mode batch norm is an affine map per channel, y = (x - mean) * s + beta with
// s = gamma / sqrt(var + eps). When x is a convolution's output, W x + b, the composition is again
// a convolution:
//     W'[o] = W[o] * s[o]        b'[o] = (b[o] - mean[o]) * s[o] + beta[o]
// (computed in float64, stored in the weights' dtype). The folded network is the same function,
// so its outputs, its gradients and every gradient- or rule-based attribution (saliency, IG,
// SmoothGrad, guided backprop, DeepLIFT: their ReLU rules see the same pre-activations, and
// DeepLIFT treats the convolution and batch norm both as linear) agree with the unfolded model's
// up to float rounding. What it saves per explained row: batch norm's forward pass over the
// activation and its backward pass (the convolution adds its bias in the same kernel).
//
// Which pairs fold is found, not assumed: one traced forward of `example_input` with gradient
// recording on records which module produced which graph node; a batch norm folds when its
// input is the output of a Conv2d module, both modules run exactly once, and that output feeds
// nothing else (counted over the whole graph). So a residual branch that reuses a convolution's
// raw output, a shared module, or a norm whose input is not a convolution (DenseNet's norm1 and
// transition norms, which normalise concatenations) stays as it is. ResNet18 folds all 20 of its
// batch norms; DenseNet-121 folds 59 of 121 (norm0 and every dense layer's norm2, which follows
// its 1x1 bottleneck convolution).
//
// The transform changes the model in place and is for inference and explanation only: the
// folded batch norms return their input (BatchNorm2d::mark_folded; training one raises), the
// convolutions' weights change and bias-free ones gain a "bias" parameter, so do not train or
// save a folded model. A forward hook on a folded convolution sees the post-norm values.
// Used by `loupe explain --fold-batch-norm` and the explanation benchmarks.
// Tests: tests/nn/models/test_fold_batch_norm.cpp
#pragma once

#include <string>
#include <vector>

#include "nn/module.hpp"

namespace loupe::nn {

struct FoldedPair {
  std::string convolution;  // qualified module names, as in the state dict ("layer1.0.conv1")
  std::string batch_norm;
};

struct FoldReport {
  std::vector<FoldedPair> folded;
  std::vector<std::string> kept;  // batch norms left as they were, each with the reason
};

// Folds every foldable (convolution, batch norm) pair of `model` (see the head comment).
// example_input: one batch the model accepts (its shape and dtype only matter; one row is
// enough). The model and every batch norm must be in eval mode; raises loupe::Error otherwise.
FoldReport fold_batch_norms(Module& model, const Tensor& example_input);

}  // namespace loupe::nn
