// Classification metrics: accuracy, confusion matrix, per-class precision / recall / F1, and their
// micro and macro averages, for single-label (one class per example) and multilabel (any number
// of positive labels per example) tasks.
//
// Inputs:
//   single-label  predicted: (N,) int64 class indices, or (N, K) scores whose argmax is the class
//                 target:    (N,) int64 class indices in [0, K)
//   multilabel    probabilities: (N, K), e.g. sigmoid(logits); a label is predicted positive when
//                 its probability is > threshold (0.5 by default; torchmetrics' rule)
//                 target: (N, K) multi-hot (any numeric dtype; non-zero = positive)
//
// Conventions follow scikit-learn with labels=range(K): every one of the K classes counts in a
// macro average, also one that never occurs; a precision, recall or F1 whose denominator is 0 is 0
// (zero_division=0). F1 = 2 tp / (2 tp + fp + fn). Micro averages pool the counts of all classes
// first (for single-label data micro F1 equals accuracy).
// Tests: tests/nn/data/test_metrics.cpp
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::nn {

// One class's (or label's) counts, one-vs-rest.
struct ClassCounts {
  int64_t tp = 0, fp = 0, fn = 0, tn = 0;
  int64_t support() const { return tp + fn; }  // examples that truly have the class
};

double precision(const ClassCounts& c);
double recall(const ClassCounts& c);
double f1(const ClassCounts& c);
double micro_precision(const std::vector<ClassCounts>& counts);
double micro_recall(const std::vector<ClassCounts>& counts);
double micro_f1(const std::vector<ClassCounts>& counts);
double macro_precision(const std::vector<ClassCounts>& counts);
double macro_recall(const std::vector<ClassCounts>& counts);
double macro_f1(const std::vector<ClassCounts>& counts);

// (N,) int64 classes from (N,) int64 (as they are) or the argmax of (N, K) scores (first on ties).
Tensor predicted_classes(const Tensor& predicted);
// (N, K) int64 0/1 from probabilities: 1 where probability > threshold.
Tensor threshold_predictions(const Tensor& probabilities, double threshold = 0.5);

// Single-label counts per class.
std::vector<ClassCounts> count_single_label(const Tensor& predicted, const Tensor& target, int64_t num_classes);
// Multilabel counts per label.
std::vector<ClassCounts> count_multilabel(const Tensor& probabilities, const Tensor& target, double threshold = 0.5);

// (K, K) int64: row = true class, column = predicted class (sklearn's confusion_matrix).
Tensor confusion_matrix(const Tensor& predicted, const Tensor& target, int64_t num_classes);
// Fraction of examples whose class is right.
double accuracy(const Tensor& predicted, const Tensor& target);
// Multilabel: fraction of examples whose whole label vector is right (sklearn's accuracy_score on
// multilabel input, "subset accuracy").
double subset_accuracy(const Tensor& probabilities, const Tensor& target, double threshold = 0.5);

}  // namespace loupe::nn
