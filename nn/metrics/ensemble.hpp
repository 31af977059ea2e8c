// Ensembles of several models' predictions on the same examples.
//   average_probabilities  mean of the models' probabilities (what the chest X-ray study's code does)
//   majority_vote          multilabel: each model thresholds its probabilities (> threshold), and a
//                          label is positive when more than half of the models say so (the
//                          paper's wording); with an even number of models a tie is negative
//   majority_vote_classes  single-label: the class most models predict; a tie goes to the lowest
//                          class index among the tied ones
// Tests: tests/nn/data/test_metrics.cpp
#pragma once

#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::nn {

// Each (N, K) -> (N, K) in the first input's floating dtype.
Tensor average_probabilities(const std::vector<Tensor>& probabilities);
// Each (N, K) -> (N, K) float32 of 0 / 1 (usable as "probabilities" by count_multilabel).
Tensor majority_vote(const std::vector<Tensor>& probabilities, double threshold = 0.5);
// Each (N,) int64 classes or (N, K) scores -> (N,) int64 classes in [0, num_classes).
Tensor majority_vote_classes(const std::vector<Tensor>& predictions, int64_t num_classes);

}  // namespace loupe::nn
