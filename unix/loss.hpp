// Next-token cross-entropy with a per-position weight: the loss of the Uni-X experiment, where the
// weight is a Batch's loss_mask (instruction tokens and PAD at 0) or a per-modality mask
// (modality_mask) for the per-modality held-out loss and the within-batch gradient variant.
//   logits (B, T, V), targets (B, T) int64, weights (B, T) float -> 0-d:
//   sum_{b,t} w[b,t] * CE(logits[b,t], targets[b,t]) / sum_{b,t} w[b,t]   (0 when every weight is 0)
// Tests: tests/unix/test_conflict.cpp
#pragma once

#include "tensor/tensor.hpp"

#if defined(unix)
#error "unix/ needs -std=c++20 (GNU dialects predefine the macro 'unix', the name of this namespace)"
#endif

namespace loupe::unix {

// Differentiable in logits; the weights are constants.
Tensor masked_token_loss(const Tensor& logits, const Tensor& targets, const Tensor& weights);

}  // namespace loupe::unix
