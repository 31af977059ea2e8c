// Differentiable loss functions. Forward: tensor/ops/loss.hpp; backward kernels of the two
// heavily used losses (cross_entropy, bce_with_logits): tensor/ops/loss_backward.hpp.
// Gradients flow to the input (logits / log-probabilities) and, for the losses with a float
// target (bce_with_logits, mse, l1, smooth_l1), to the target too, as in PyTorch. Class weights
// and pos_weight are constants.
// Nodes save {input, target} (+ {weight} or {pos_weight}); attrs {reduction, ignore_index,
// label_smoothing} for the class-index losses, {reduction, beta} for the others.
// Tests: tests/ops/op_table_loss.cpp
#pragma once

#include "tensor/ops/loss.hpp"
#include "tensor/tensor.hpp"

namespace loupe {

// Reduction and CrossEntropyOptions: tensor/ops/loss.hpp (namespace loupe).

// logits (N, C, d1, ...) or (C); target int64 (N, d1, ...) or 0-d.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options = {});
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const CrossEntropyOptions& options = {});
// target has the logits' shape; pos_weight broadcasts to it (usually (C), the last dim).
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& pos_weight = Tensor(),
                                        Reduction reduction = Reduction::mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean,
                      double beta = 1.0);

}  // namespace loupe
