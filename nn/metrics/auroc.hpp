// Area under the ROC curve, computed from ranks (the Mann-Whitney U statistic):
//   AUROC = (sum of the positives' ranks - P (P + 1) / 2) / (P * Q)
// for P positives and Q negatives, ranking all scores ascending from 1, where tied scores share the
// mean of their ranks. A tie between a positive and a negative thus counts one half, which is
// exactly the trapezoidal area sklearn's roc_auc_score gives (its ROC curve joins tied scores by
// one diagonal step).
// AUROC is undefined when the labels hold only one class: sklearn raises, loupe returns NaN, and
// macro_auroc leaves such classes out.
// Tests: tests/nn/data/test_metrics.cpp
#pragma once

#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::nn {

// One binary problem: scores and 0/1 labels (non-zero = positive) of equal length.
double roc_auc(const std::vector<double>& scores, const std::vector<double>& labels);

// One AUROC per class of (N, K) scores (probabilities, or any score monotone in them per class).
// target: (N, K) multi-hot, or (N,) int64 class indices (one-vs-rest, as sklearn's
// roc_auc_score(multi_class="ovr") per class).
std::vector<double> auroc_per_class(const Tensor& scores, const Tensor& target);

// Mean of the defined (non-NaN) values; NaN when none is defined.
double macro_auroc(const std::vector<double>& per_class);

}  // namespace loupe::nn
