// Backward kernels of the loss family (tensor/ops/loss.hpp), used by autograd/functions/loss.cpp.
// `grad` is dL/dloss: the shape of the loss (reduction none) or 0-d (mean, sum).
// Tests: tests/ops/op_table_loss.cpp (gradcheck of every differentiable entry)
#pragma once

#include "tensor/ops/loss.hpp"

namespace loupe::ops {

// dL/dlogits, shape of logits. Per position i with target t (0 where t == ignore_index),
// p = softmax(logits_i), w the class weights (1 when undefined), W = sum(w), eps = label_smoothing:
//   (1 - eps) * w[t] * (p - onehot(t)) + eps / C * (W * p - w)
// times grad_i (none), grad (sum) or grad / sum of w[t] over non-ignored positions (mean).
Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target,
                              const CrossEntropyOptions& options);
// dL/dlog_probs: -w[t] * onehot(t), scaled as above.
Tensor nll_loss_backward(const Tensor& grad, const Tensor& log_probs, const Tensor& target,
                         const CrossEntropyOptions& options);

// With lw = 1 + (pos_weight - 1) * y and the per-element gradient g:
//   dL/dx = g * ((1 - y) - lw * sigmoid(-x))        (sigmoid(x) - y without pos_weight)
//   dL/dy = g * (-x + (pos_weight - 1) * softplus(-x))
// Each is computed only when asked for (else undefined), in the dtype of logits.
struct BceGrads {
  Tensor logits;
  Tensor target;
};
BceGrads binary_cross_entropy_with_logits_backward(const Tensor& grad, const Tensor& logits, const Tensor& target,
                                                   const Tensor& pos_weight, Reduction reduction, bool need_logits,
                                                   bool need_target);

}  // namespace loupe::ops
