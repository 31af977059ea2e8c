// The numbers of the chest X-ray study for one system (a model or an ensemble) on one set of
// images: decisions from per-label thresholds, micro / macro F1, per-label F1 and AUROC, subset
// accuracy, a 3-class confusion matrix, and percentile bootstrap confidence intervals.
//
//   thresholds   per label, the cut that maximises that label's F1 on the validation split
//                (candidates: 0.5 and the midpoints between consecutive distinct validation
//                probabilities; a tie goes to the candidate closest to 0.5). A label is
//                predicted positive when its probability is > its threshold.
//   bootstrap    B resamples of the images with replacement (std::mt19937_64 seeded), each
//                metric recomputed on every resample; the interval is the 2.5th and 97.5th
//                percentiles (linear interpolation) of those B values. A resample on which a
//                metric is undefined (AUROC with one class only) is left out for that metric.
//   confusion    rows: true group (COVID-19 = covid19; other pneumonia = pneumonia and not
//                covid19; no finding = neither); columns: the predicted group by the same rule
//                applied to the decisions, plus "none" (no label predicted) where no_finding
//                is not predicted either.
// Tests: tests/study/test_study_metrics.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::study {

// Per-label thresholds from validation probabilities (N, K) and multi-hot labels (N, K).
std::vector<double> choose_thresholds(const Tensor& probabilities, const Tensor& labels);

// (N, K) float32 of 0 / 1: probability > threshold of its label.
Tensor decide(const Tensor& probabilities, const std::vector<double>& thresholds);

struct Interval {
  double value = 0.0;           // on the images as they are
  double low = 0.0, high = 0.0;  // bootstrap percentile interval (NaN when not computed)
};

struct SystemMetrics {
  int64_t images = 0;
  Interval micro_f1, macro_f1, macro_auroc, subset_accuracy;
  std::vector<Interval> f1, auroc;  // per label
  std::vector<std::vector<int64_t>> confusion;  // 3 true groups x 4 predicted (3 groups + none)
};

struct BootstrapOptions {
  int64_t resamples = 1000;  // 0: no intervals
  uint64_t seed = 0;
  double level = 0.95;
};

// scores: (N, K) probabilities (or any per-label score monotone in them: AUROC ranks them);
// decisions: (N, K) 0 / 1; labels: (N, K) multi-hot. `rows` selects the images (empty: all).
// Labels are expected in the order covid19, pneumonia, no_finding for the confusion matrix.
SystemMetrics system_metrics(const Tensor& scores, const Tensor& decisions, const Tensor& labels,
                             const BootstrapOptions& options, const std::vector<int64_t>& rows = {});

// The row / column names of the confusion matrix.
const std::vector<std::string>& confusion_rows();
const std::vector<std::string>& confusion_columns();

}  // namespace loupe::study
