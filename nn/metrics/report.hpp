// A metrics report for one evaluation: overall numbers, one row per class, printable as a table
// (for people) and as JSON (for scripts). NaN values (an AUROC of a class that never or always
// occurs) print as "n/a" in the table and null in JSON.
// Tests: tests/nn/data/test_metrics.cpp
#pragma once

#include <string>
#include <vector>

#include "nn/metrics/classification.hpp"
#include "tensor/tensor.hpp"

namespace loupe::nn {

struct ClassReport {
  std::string name;
  ClassCounts counts;
  double precision = 0.0, recall = 0.0, f1 = 0.0, auroc = 0.0;
};

struct MetricsReport {
  bool multilabel = false;
  double threshold = 0.5;  // multilabel only
  int64_t examples = 0;
  double accuracy = 0.0;  // single-label: accuracy; multilabel: subset (exact-match) accuracy
  double micro_precision = 0.0, micro_recall = 0.0, micro_f1 = 0.0;
  double macro_precision = 0.0, macro_recall = 0.0, macro_f1 = 0.0;
  double macro_auroc = 0.0;
  std::vector<ClassReport> classes;
  Tensor confusion;  // (K, K) int64, rows = true class (single-label only; undefined for multilabel)

  std::string table() const;
  std::string json() const;
};

// scores: (N, K) class probabilities (softmax outputs: AUROC ranks them per class);
// target: (N,) int64 classes. Names default to "0", "1", ...
MetricsReport evaluate_single_label(const Tensor& scores, const Tensor& target,
                                    const std::vector<std::string>& class_names = {});
// probabilities: (N, K) (sigmoid outputs); target: (N, K) multi-hot.
MetricsReport evaluate_multilabel(const Tensor& probabilities, const Tensor& target, double threshold = 0.5,
                                  const std::vector<std::string>& class_names = {});

}  // namespace loupe::nn
