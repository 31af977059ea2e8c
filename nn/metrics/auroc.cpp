// AUROC from midranks. See auroc.hpp.
#include "nn/metrics/auroc.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tensor/ops/creation.hpp"

namespace loupe::nn {

double roc_auc(const std::vector<double>& scores, const std::vector<double>& labels) {
  LOUPE_CHECK(scores.size() == labels.size(), "roc_auc: ", scores.size(), " scores for ", labels.size(), " labels");
  const size_t n = scores.size();
  for (size_t i = 0; i < n; ++i) {
    LOUPE_CHECK(!std::isnan(scores[i]), "roc_auc: score ", i, " is NaN");
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0.0;
  double positives = 0.0;
  // Walk groups of equal scores; every member of a group gets the group's mean rank.
  for (size_t start = 0; start < n;) {
    size_t end = start + 1;
    while (end < n && scores[order[end]] == scores[order[start]]) ++end;
    const double mean_rank = (static_cast<double>(start + 1) + static_cast<double>(end)) / 2.0;
    for (size_t k = start; k < end; ++k) {
      if (labels[order[k]] != 0.0) {
        positive_rank_sum += mean_rank;
        positives += 1.0;
      }
    }
    start = end;
  }
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0.0 || negatives == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return (positive_rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives);
}

std::vector<double> auroc_per_class(const Tensor& scores, const Tensor& target) {
  LOUPE_CHECK(scores.defined() && scores.dim() == 2, "auroc_per_class: expected scores (N, K), got ",
              scores.defined() ? shape_str(scores.shape()) : std::string("undefined"));
  const int64_t n = scores.size(0), k = scores.size(1);
  LOUPE_CHECK(target.defined() && (target.shape() == scores.shape() || (target.dim() == 1 && target.size(0) == n)),
              "auroc_per_class: target ", target.defined() ? shape_str(target.shape()) : std::string("undefined"),
              " must be (N, K) multi-hot or (N,) class indices for scores ", shape_str(scores.shape()));
  const std::vector<double> s = to_vector<double>(scores);
  std::vector<double> t(static_cast<size_t>(n * k), 0.0);
  if (target.dim() == 2) {
    t = to_vector<double>(target);
  } else {
    LOUPE_CHECK(!is_floating(target.dtype()), "auroc_per_class: (N,) targets must be integer classes, got ",
                dtype_name(target.dtype()));
    const std::vector<int64_t> classes = to_vector<int64_t>(target);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = classes[static_cast<size_t>(i)];
      LOUPE_CHECK(c >= 0 && c < k, "auroc_per_class: target[", i, "] = ", c, " is not a class in [0, ", k, ")");
      t[static_cast<size_t>(i * k + c)] = 1.0;
    }
  }
  std::vector<double> out(static_cast<size_t>(k));
  std::vector<double> column_scores(static_cast<size_t>(n)), column_labels(static_cast<size_t>(n));
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t i = 0; i < n; ++i) {
      column_scores[static_cast<size_t>(i)] = s[static_cast<size_t>(i * k + j)];
      column_labels[static_cast<size_t>(i)] = t[static_cast<size_t>(i * k + j)];
    }
    out[static_cast<size_t>(j)] = roc_auc(column_scores, column_labels);
  }
  return out;
}

double macro_auroc(const std::vector<double>& per_class) {
  double total = 0.0;
  int defined = 0;
  for (double v : per_class) {
    if (!std::isnan(v)) {
      total += v;
      ++defined;
    }
  }
  return defined == 0 ? std::numeric_limits<double>::quiet_NaN() : total / defined;
}

}  // namespace loupe::nn
