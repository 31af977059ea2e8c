// Classification metrics. See classification.hpp.
#include "nn/metrics/classification.hpp"

#include <cmath>

#include "tensor/ops/creation.hpp"

namespace loupe::nn {

namespace {

double ratio(int64_t num, int64_t den) { return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den); }

ClassCounts pooled(const std::vector<ClassCounts>& counts) {
  ClassCounts all;
  for (const auto& c : counts) {
    all.tp += c.tp;
    all.fp += c.fp;
    all.fn += c.fn;
    all.tn += c.tn;
  }
  return all;
}

template <typename F>
double mean_over(const std::vector<ClassCounts>& counts, F metric) {
  if (counts.empty()) return 0.0;
  double total = 0.0;
  for (const auto& c : counts) total += metric(c);
  return total / static_cast<double>(counts.size());
}

// Target class indices (N,), checked against K (K < 0: not checked).
std::vector<int64_t> target_classes(const Tensor& target, int64_t num_classes, const char* op) {
  LOUPE_CHECK(target.defined() && target.dim() == 1 && !is_floating(target.dtype()), op,
              ": expected target of class indices (N,) int64, got ",
              target.defined() ? shape_str(target.shape()) + " " + dtype_name(target.dtype()) : "undefined");
  std::vector<int64_t> t = to_vector<int64_t>(target);
  for (size_t i = 0; i < t.size(); ++i) {
    LOUPE_CHECK(t[i] >= 0 && (num_classes < 0 || t[i] < num_classes), op, ": target[", i, "] = ", t[i],
                " is not a class in [0, ", num_classes, ")");
  }
  return t;
}

// (N, K) as row-major doubles, with the shapes of probabilities and target checked to match.
void check_multilabel(const Tensor& probabilities, const Tensor& target, const char* op) {
  LOUPE_CHECK(probabilities.defined() && probabilities.dim() == 2, op, ": expected probabilities (N, K), got ",
              probabilities.defined() ? shape_str(probabilities.shape()) : std::string("undefined"));
  LOUPE_CHECK(target.defined() && target.shape() == probabilities.shape(), op, ": target ",
              target.defined() ? shape_str(target.shape()) : std::string("undefined"),
              " must have the shape of probabilities ", shape_str(probabilities.shape()));
}

}  // namespace

double precision(const ClassCounts& c) { return ratio(c.tp, c.tp + c.fp); }
double recall(const ClassCounts& c) { return ratio(c.tp, c.tp + c.fn); }
double f1(const ClassCounts& c) { return ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn); }
double micro_precision(const std::vector<ClassCounts>& counts) { return precision(pooled(counts)); }
double micro_recall(const std::vector<ClassCounts>& counts) { return recall(pooled(counts)); }
double micro_f1(const std::vector<ClassCounts>& counts) { return f1(pooled(counts)); }
double macro_precision(const std::vector<ClassCounts>& counts) {
  return mean_over(counts, [](const ClassCounts& c) { return precision(c); });
}
double macro_recall(const std::vector<ClassCounts>& counts) {
  return mean_over(counts, [](const ClassCounts& c) { return recall(c); });
}
double macro_f1(const std::vector<ClassCounts>& counts) {
  return mean_over(counts, [](const ClassCounts& c) { return f1(c); });
}

Tensor predicted_classes(const Tensor& predicted) {
  LOUPE_CHECK(predicted.defined() && (predicted.dim() == 1 || predicted.dim() == 2),
              "predicted_classes: expected (N,) class indices or (N, K) scores, got ",
              predicted.defined() ? shape_str(predicted.shape()) : std::string("undefined"));
  if (predicted.dim() == 1) {
    LOUPE_CHECK(!is_floating(predicted.dtype()), "predicted_classes: (N,) predictions must be integer classes, got ",
                dtype_name(predicted.dtype()));
    return predicted;
  }
  const int64_t n = predicted.size(0), k = predicted.size(1);
  LOUPE_CHECK(k > 0 || n == 0, "predicted_classes: scores of shape ", shape_str(predicted.shape()), " have no classes");
  const std::vector<double> s = to_vector<double>(predicted);
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j) {
      if (s[static_cast<size_t>(i * k + j)] > s[static_cast<size_t>(i * k + best)]) best = j;
    }
    out[static_cast<size_t>(i)] = best;
  }
  return from_values(out, {n});
}

Tensor threshold_predictions(const Tensor& probabilities, double threshold) {
  LOUPE_CHECK(probabilities.defined() && probabilities.dim() == 2,
              "threshold_predictions: expected probabilities (N, K), got ",
              probabilities.defined() ? shape_str(probabilities.shape()) : std::string("undefined"));
  std::vector<double> p = to_vector<double>(probabilities);
  std::vector<int64_t> out(p.size());
  for (size_t i = 0; i < p.size(); ++i) out[i] = p[i] > threshold ? 1 : 0;
  return from_values(out, probabilities.shape());
}

std::vector<ClassCounts> count_single_label(const Tensor& predicted, const Tensor& target, int64_t num_classes) {
  LOUPE_CHECK(num_classes > 0, "count_single_label: num_classes must be positive, got ", num_classes);
  const std::vector<int64_t> t = target_classes(target, num_classes, "count_single_label");
  const Tensor classes = predicted_classes(predicted);
  LOUPE_CHECK(classes.size(0) == static_cast<int64_t>(t.size()), "count_single_label: ", classes.size(0),
              " predictions for ", t.size(), " targets");
  const std::vector<int64_t> p = to_vector<int64_t>(classes);
  std::vector<ClassCounts> counts(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < t.size(); ++i) {
    LOUPE_CHECK(p[i] >= 0 && p[i] < num_classes, "count_single_label: prediction[", i, "] = ", p[i],
                " is not a class in [0, ", num_classes, ")");
    if (p[i] == t[i]) {
      ++counts[static_cast<size_t>(t[i])].tp;
    } else {
      ++counts[static_cast<size_t>(t[i])].fn;
      ++counts[static_cast<size_t>(p[i])].fp;
    }
  }
  const int64_t n = static_cast<int64_t>(t.size());
  for (auto& c : counts) c.tn = n - c.tp - c.fp - c.fn;
  return counts;
}

std::vector<ClassCounts> count_multilabel(const Tensor& probabilities, const Tensor& target, double threshold) {
  check_multilabel(probabilities, target, "count_multilabel");
  const int64_t n = probabilities.size(0), k = probabilities.size(1);
  const std::vector<double> p = to_vector<double>(probabilities);
  const std::vector<double> t = to_vector<double>(target);
  std::vector<ClassCounts> counts(static_cast<size_t>(k));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      const size_t at = static_cast<size_t>(i * k + j);
      const bool pred = p[at] > threshold, truth = t[at] != 0.0;
      auto& c = counts[static_cast<size_t>(j)];
      if (pred && truth) ++c.tp;
      else if (pred) ++c.fp;
      else if (truth) ++c.fn;
      else ++c.tn;
    }
  }
  return counts;
}

Tensor confusion_matrix(const Tensor& predicted, const Tensor& target, int64_t num_classes) {
  LOUPE_CHECK(num_classes > 0, "confusion_matrix: num_classes must be positive, got ", num_classes);
  const std::vector<int64_t> t = target_classes(target, num_classes, "confusion_matrix");
  const std::vector<int64_t> p = to_vector<int64_t>(predicted_classes(predicted));
  LOUPE_CHECK(p.size() == t.size(), "confusion_matrix: ", p.size(), " predictions for ", t.size(), " targets");
  std::vector<int64_t> m(static_cast<size_t>(num_classes * num_classes), 0);
  for (size_t i = 0; i < t.size(); ++i) {
    LOUPE_CHECK(p[i] >= 0 && p[i] < num_classes, "confusion_matrix: prediction[", i, "] = ", p[i],
                " is not a class in [0, ", num_classes, ")");
    ++m[static_cast<size_t>(t[i] * num_classes + p[i])];
  }
  return from_values(m, {num_classes, num_classes});
}

double accuracy(const Tensor& predicted, const Tensor& target) {
  const std::vector<int64_t> t = target_classes(target, -1, "accuracy");
  const std::vector<int64_t> p = to_vector<int64_t>(predicted_classes(predicted));
  LOUPE_CHECK(p.size() == t.size(), "accuracy: ", p.size(), " predictions for ", t.size(), " targets");
  LOUPE_CHECK(!t.empty(), "accuracy: no examples");
  int64_t right = 0;
  for (size_t i = 0; i < t.size(); ++i) right += p[i] == t[i] ? 1 : 0;
  return static_cast<double>(right) / static_cast<double>(t.size());
}

double subset_accuracy(const Tensor& probabilities, const Tensor& target, double threshold) {
  check_multilabel(probabilities, target, "subset_accuracy");
  const int64_t n = probabilities.size(0), k = probabilities.size(1);
  LOUPE_CHECK(n > 0, "subset_accuracy: no examples");
  const std::vector<double> p = to_vector<double>(probabilities);
  const std::vector<double> t = to_vector<double>(target);
  int64_t right = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool all = true;
    for (int64_t j = 0; j < k && all; ++j) {
      const size_t at = static_cast<size_t>(i * k + j);
      all = (p[at] > threshold) == (t[at] != 0.0);
    }
    right += all ? 1 : 0;
  }
  return static_cast<double>(right) / static_cast<double>(n);
}

}  // namespace loupe::nn
