// Loss functions (raw forward). Targets follow PyTorch: class indices (int64) for cross_entropy
// and nll_loss, same-shape float targets for the others.
// Tests: tests/ops/op_table_loss.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe {

// Option types live in namespace loupe, not loupe::ops: an argument of an ops:: type would make
// argument-dependent lookup find ops::cross_entropy next to loupe::cross_entropy, and an
// unqualified call would be ambiguous (or silently pick the version that records no gradient).
enum class Reduction { none, mean, sum };

struct CrossEntropyOptions {
  Reduction reduction = Reduction::mean;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  Tensor weight;  // optional per-class weights (C)
};

}  // namespace loupe

namespace loupe::ops {

using loupe::CrossEntropyOptions;
using loupe::Reduction;

// logits (N, C) or (N, C, d1, ...); target int64 (N) or (N, d1, ...).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options = {});
// log_probs (N, C, ...) as from log_softmax.
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const CrossEntropyOptions& options = {});
// Numerically stable sigmoid + binary cross-entropy; pos_weight (C) broadcast over the last dim.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& pos_weight = Tensor(),
                                        Reduction reduction = Reduction::mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean,
                      double beta = 1.0);

}  // namespace loupe::ops
