// Weighted next-token cross-entropy (unix/loss.hpp). Tests: tests/unix/test_conflict.cpp
#include "unix/loss.hpp"

#include "autograd/autograd.hpp"

namespace loupe::unix {

Tensor masked_token_loss(const Tensor& logits, const Tensor& targets, const Tensor& weights) {
  LOUPE_CHECK(logits.dim() == 3 && targets.dim() == 2 && weights.dim() == 2 && targets.shape() == weights.shape() &&
                  logits.size(0) == targets.size(0) && logits.size(1) == targets.size(1),
              "unix masked_token_loss: expected logits (B, T, V), targets and weights (B, T), got ",
              shape_str(logits.shape()), ", ", shape_str(targets.shape()), " and ", shape_str(weights.shape()));
  const int64_t rows = targets.numel();
  const Tensor flat_logits = reshape(logits, {rows, logits.size(2)});           // (B*T, V)
  const Tensor flat_targets = reshape(targets.detach(), {rows});               // (B*T)
  const Tensor flat_weights = to_dtype(reshape(weights.detach(), {rows}), logits.dtype());  // (B*T)
  CrossEntropyOptions options;
  options.reduction = Reduction::none;
  const Tensor per_token = cross_entropy(flat_logits, flat_targets, options);  // (B*T)
  // The denominator is a constant (the total weight); an all-zero mask gives a zero loss (and
  // zero gradients) instead of 0/0.
  const double total = ops::sum(flat_weights).item();
  const double denominator = total > 0.0 ? total : 1.0;
  return div(sum(mul(per_token, flat_weights)), denominator);
}

}  // namespace loupe::unix
