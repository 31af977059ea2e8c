// Metrics, thresholds and bootstrap intervals of the chest X-ray study. See metrics.hpp.
#include "study/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "nn/metrics/auroc.hpp"
#include "nn/metrics/classification.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace loupe::study {

namespace {

// A (N, K) tensor as N rows of K doubles.
std::vector<std::vector<double>> rows_of(const Tensor& t, const char* what) {
  LOUPE_CHECK(t.dim() == 2, "study: ", what, " must be (N, K), got ", shape_str(t.shape()));
  const std::vector<double> flat = to_vector<double>(ops::to_dtype(t, DType::f64));
  const size_t n = static_cast<size_t>(t.size(0)), k = static_cast<size_t>(t.size(1));
  std::vector<std::vector<double>> out(n, std::vector<double>(k));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < k; ++j) out[i][j] = flat[i * k + j];
  return out;
}

double f1_of(int64_t tp, int64_t fp, int64_t fn) {
  const int64_t d = 2 * tp + fp + fn;
  return d == 0 ? 0.0 : 2.0 * static_cast<double>(tp) / static_cast<double>(d);
}

// The group of a 0/1 label row (covid19, pneumonia, no_finding): 0 COVID-19, 1 other pneumonia,
// 2 no finding, 3 none (only for predictions).
int group_of(const std::vector<double>& row, bool prediction) {
  if (row.size() >= 1 && row[0] > 0.5) return 0;
  if (row.size() >= 2 && row[1] > 0.5) return 1;
  if (row.size() >= 3 && row[2] > 0.5) return 2;
  return prediction ? 3 : 2;
}

struct Point {
  double micro_f1, macro_f1, macro_auroc, subset_accuracy;
  std::vector<double> f1, auroc;
};

Point evaluate_rows(const std::vector<std::vector<double>>& scores, const std::vector<std::vector<double>>& decisions,
                    const std::vector<std::vector<double>>& labels, const std::vector<size_t>& rows, size_t k) {
  Point p;
  int64_t tp_all = 0, fp_all = 0, fn_all = 0, exact = 0;
  p.f1.assign(k, 0.0);
  p.auroc.assign(k, NAN);
  for (size_t j = 0; j < k; ++j) {
    int64_t tp = 0, fp = 0, fn = 0;
    std::vector<double> s, y;
    s.reserve(rows.size());
    y.reserve(rows.size());
    for (size_t r : rows) {
      const bool truth = labels[r][j] > 0.5, said = decisions[r][j] > 0.5;
      tp += truth && said;
      fp += !truth && said;
      fn += truth && !said;
      s.push_back(scores[r][j]);
      y.push_back(truth ? 1.0 : 0.0);
    }
    tp_all += tp;
    fp_all += fp;
    fn_all += fn;
    p.f1[j] = f1_of(tp, fp, fn);
    p.auroc[j] = nn::roc_auc(s, y);
  }
  for (size_t r : rows) {
    bool same = true;
    for (size_t j = 0; j < k; ++j) same = same && ((labels[r][j] > 0.5) == (decisions[r][j] > 0.5));
    exact += same;
  }
  p.micro_f1 = f1_of(tp_all, fp_all, fn_all);
  double sum = 0.0;
  for (double v : p.f1) sum += v;
  p.macro_f1 = k ? sum / static_cast<double>(k) : 0.0;
  p.macro_auroc = nn::macro_auroc(p.auroc);
  p.subset_accuracy = rows.empty() ? 0.0 : static_cast<double>(exact) / static_cast<double>(rows.size());
  return p;
}

// Percentile with linear interpolation over the defined values (NaN when none).
double percentile(std::vector<double> values, double q) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }), values.end());
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(position));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (position - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

}  // namespace

std::vector<double> choose_thresholds(const Tensor& probabilities, const Tensor& labels) {
  const auto p = rows_of(probabilities, "validation probabilities");
  const auto y = rows_of(labels, "validation labels");
  LOUPE_CHECK(p.size() == y.size() && probabilities.size(1) == labels.size(1), "study: probabilities ",
              shape_str(probabilities.shape()), " and labels ", shape_str(labels.shape()), " differ in shape");
  const size_t k = static_cast<size_t>(probabilities.size(1));
  std::vector<double> thresholds(k, 0.5);
  for (size_t j = 0; j < k; ++j) {
    std::vector<double> values;
    for (const auto& row : p) values.push_back(row[j]);
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    std::vector<double> candidates = {0.5};
    for (size_t i = 0; i + 1 < values.size(); ++i) candidates.push_back(0.5 * (values[i] + values[i + 1]));
    double best_f1 = -1.0, best = 0.5;
    for (double t : candidates) {
      int64_t tp = 0, fp = 0, fn = 0;
      for (size_t r = 0; r < p.size(); ++r) {
        const bool truth = y[r][j] > 0.5, said = p[r][j] > t;
        tp += truth && said;
        fp += !truth && said;
        fn += truth && !said;
      }
      const double f = f1_of(tp, fp, fn);
      if (f > best_f1 + 1e-12 || (std::fabs(f - best_f1) <= 1e-12 && std::fabs(t - 0.5) < std::fabs(best - 0.5))) {
        best_f1 = f;
        best = t;
      }
    }
    thresholds[j] = best;
  }
  return thresholds;
}

Tensor decide(const Tensor& probabilities, const std::vector<double>& thresholds) {
  const auto p = rows_of(probabilities, "probabilities");
  LOUPE_CHECK(static_cast<size_t>(probabilities.size(1)) == thresholds.size(), "study: ", thresholds.size(),
              " thresholds for ", probabilities.size(1), " labels");
  std::vector<float> out;
  out.reserve(p.size() * thresholds.size());
  for (const auto& row : p)
    for (size_t j = 0; j < row.size(); ++j) out.push_back(row[j] > thresholds[j] ? 1.0f : 0.0f);
  return from_values(out, probabilities.shape());
}

SystemMetrics system_metrics(const Tensor& scores, const Tensor& decisions, const Tensor& labels,
                             const BootstrapOptions& options, const std::vector<int64_t>& rows) {
  const auto s = rows_of(scores, "scores");
  const auto d = rows_of(decisions, "decisions");
  const auto y = rows_of(labels, "labels");
  LOUPE_CHECK(s.size() == d.size() && s.size() == y.size(), "study: scores, decisions and labels hold ", s.size(), ", ",
              d.size(), " and ", y.size(), " rows");
  const size_t k = static_cast<size_t>(labels.size(1));
  std::vector<size_t> chosen;
  if (rows.empty()) {
    for (size_t i = 0; i < s.size(); ++i) chosen.push_back(i);
  } else {
    for (int64_t r : rows) {
      LOUPE_CHECK(r >= 0 && static_cast<size_t>(r) < s.size(), "study: row ", r, " outside [0, ", s.size(), ")");
      chosen.push_back(static_cast<size_t>(r));
    }
  }
  LOUPE_CHECK(!chosen.empty(), "study: no images to evaluate");
  SystemMetrics m;
  m.images = static_cast<int64_t>(chosen.size());
  const Point point = evaluate_rows(s, d, y, chosen, k);
  m.confusion.assign(3, std::vector<int64_t>(4, 0));
  for (size_t r : chosen) m.confusion[static_cast<size_t>(group_of(y[r], false))][static_cast<size_t>(group_of(d[r], true))]++;

  std::vector<Point> samples;
  std::mt19937_64 random(options.seed);
  std::uniform_int_distribution<size_t> pick(0, chosen.size() - 1);
  std::vector<size_t> resample(chosen.size());
  for (int64_t b = 0; b < options.resamples; ++b) {
    for (size_t& r : resample) r = chosen[pick(random)];
    samples.push_back(evaluate_rows(s, d, y, resample, k));
  }
  const double lo_q = (1.0 - options.level) / 2.0, hi_q = 1.0 - lo_q;
  auto interval = [&](double value, auto get) {
    Interval i{value, NAN, NAN};
    if (samples.empty()) return i;
    std::vector<double> values;
    for (const Point& p : samples) values.push_back(get(p));
    i.low = percentile(values, lo_q);
    i.high = percentile(values, hi_q);
    return i;
  };
  m.micro_f1 = interval(point.micro_f1, [](const Point& p) { return p.micro_f1; });
  m.macro_f1 = interval(point.macro_f1, [](const Point& p) { return p.macro_f1; });
  m.macro_auroc = interval(point.macro_auroc, [](const Point& p) { return p.macro_auroc; });
  m.subset_accuracy = interval(point.subset_accuracy, [](const Point& p) { return p.subset_accuracy; });
  for (size_t j = 0; j < k; ++j) {
    m.f1.push_back(interval(point.f1[j], [j](const Point& p) { return p.f1[j]; }));
    m.auroc.push_back(interval(point.auroc[j], [j](const Point& p) { return p.auroc[j]; }));
  }
  return m;
}

const std::vector<std::string>& confusion_rows() {
  static const std::vector<std::string> names = {"COVID-19", "other pneumonia", "no finding"};
  return names;
}

const std::vector<std::string>& confusion_columns() {
  static const std::vector<std::string> names = {"COVID-19", "other pneumonia", "no finding", "none"};
  return names;
}

}  // namespace loupe::study
