// Metrics reports. See report.hpp.
#include "nn/metrics/report.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "nn/metrics/auroc.hpp"
#include "tensor/io/json.hpp"
#include "tensor/ops/creation.hpp"

namespace loupe::nn {

namespace {

std::vector<std::string> names_for(const std::vector<std::string>& given, int64_t k, const char* op) {
  if (given.empty()) {
    std::vector<std::string> names;
    for (int64_t j = 0; j < k; ++j) names.push_back(std::to_string(j));
    return names;
  }
  LOUPE_CHECK(static_cast<int64_t>(given.size()) == k, op, ": ", given.size(), " class names for ", k, " classes");
  return given;
}

void fill_common(MetricsReport& report, const std::vector<ClassCounts>& counts, const std::vector<double>& aurocs,
                 const std::vector<std::string>& names) {
  report.micro_precision = micro_precision(counts);
  report.micro_recall = micro_recall(counts);
  report.micro_f1 = micro_f1(counts);
  report.macro_precision = macro_precision(counts);
  report.macro_recall = macro_recall(counts);
  report.macro_f1 = macro_f1(counts);
  report.macro_auroc = macro_auroc(aurocs);
  for (size_t j = 0; j < counts.size(); ++j) {
    report.classes.push_back({names[j], counts[j], precision(counts[j]), recall(counts[j]), f1(counts[j]), aurocs[j]});
  }
}

// Fixed 4 decimals, or "n/a" for NaN.
std::string number(double v) {
  if (std::isnan(v)) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4f", v);
  return buffer;
}

// A JSON number with enough digits to read back the same double, or null for NaN / infinity.
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}


std::string pad_right(const std::string& s, size_t width) { return s.size() >= width ? s : s + std::string(width - s.size(), ' '); }
std::string pad_left(const std::string& s, size_t width) { return s.size() >= width ? s : std::string(width - s.size(), ' ') + s; }

}  // namespace

MetricsReport evaluate_single_label(const Tensor& scores, const Tensor& target, const std::vector<std::string>& class_names) {
  LOUPE_CHECK(scores.defined() && scores.dim() == 2, "evaluate_single_label: expected scores (N, K), got ",
              scores.defined() ? shape_str(scores.shape()) : std::string("undefined"));
  const int64_t k = scores.size(1);
  const auto names = names_for(class_names, k, "evaluate_single_label");
  MetricsReport report;
  report.multilabel = false;
  report.examples = scores.size(0);
  const auto counts = count_single_label(scores, target, k);
  report.accuracy = accuracy(scores, target);
  report.confusion = confusion_matrix(scores, target, k);
  fill_common(report, counts, auroc_per_class(scores, target), names);
  return report;
}

MetricsReport evaluate_multilabel(const Tensor& probabilities, const Tensor& target, double threshold,
                                  const std::vector<std::string>& class_names) {
  LOUPE_CHECK(probabilities.defined() && probabilities.dim() == 2, "evaluate_multilabel: expected probabilities (N, K), got ",
              probabilities.defined() ? shape_str(probabilities.shape()) : std::string("undefined"));
  const auto names = names_for(class_names, probabilities.size(1), "evaluate_multilabel");
  MetricsReport report;
  report.multilabel = true;
  report.threshold = threshold;
  report.examples = probabilities.size(0);
  const auto counts = count_multilabel(probabilities, target, threshold);
  report.accuracy = subset_accuracy(probabilities, target, threshold);
  fill_common(report, counts, auroc_per_class(probabilities, target), names);
  return report;
}

std::string MetricsReport::table() const {
  std::ostringstream out;
  size_t name_width = 5;  // "class"
  for (const auto& c : classes) name_width = std::max(name_width, c.name.size());
  name_width = std::max<size_t>(name_width, 9);  // "macro avg"
  out << (multilabel ? "multilabel" : "single-label") << ", " << examples << " examples";
  if (multilabel) out << ", threshold " << number(threshold);
  out << "\n";
  out << pad_right("class", name_width) << "  precision     recall         f1      auroc    support\n";
  auto row = [&](const std::string& name, double p, double r, double f, double a, const std::string& support) {
    out << pad_right(name, name_width) << pad_left(number(p), 11) << pad_left(number(r), 11) << pad_left(number(f), 11)
        << pad_left(number(a), 11) << pad_left(support, 11) << "\n";
  };
  int64_t total_support = 0;
  for (const auto& c : classes) {
    row(c.name, c.precision, c.recall, c.f1, c.auroc, std::to_string(c.counts.support()));
    total_support += c.counts.support();
  }
  row("micro avg", micro_precision, micro_recall, micro_f1, std::nan(""), std::to_string(total_support));
  row("macro avg", macro_precision, macro_recall, macro_f1, macro_auroc, std::to_string(total_support));
  out << (multilabel ? "subset accuracy " : "accuracy ") << number(accuracy) << "\n";
  if (confusion.defined()) {
    const int64_t k = confusion.size(0);
    const std::vector<int64_t> m = to_vector<int64_t>(confusion);
    out << "confusion matrix (rows: true class, columns: predicted)\n";
    out << pad_right("", name_width);
    for (int64_t j = 0; j < k; ++j) out << pad_left(classes[static_cast<size_t>(j)].name, 11);
    out << "\n";
    for (int64_t i = 0; i < k; ++i) {
      out << pad_right(classes[static_cast<size_t>(i)].name, name_width);
      for (int64_t j = 0; j < k; ++j) out << pad_left(std::to_string(m[static_cast<size_t>(i * k + j)]), 11);
      out << "\n";
    }
  }
  return out.str();
}

std::string MetricsReport::json() const {
  std::ostringstream out;
  out << "{\"task\": " << json::quote(multilabel ? "multilabel" : "single-label");
  if (multilabel) out << ", \"threshold\": " << json_number(threshold);
  out << ", \"examples\": " << examples;
  out << ", \"accuracy\": " << json_number(accuracy);
  out << ", \"micro\": {\"precision\": " << json_number(micro_precision) << ", \"recall\": " << json_number(micro_recall)
      << ", \"f1\": " << json_number(micro_f1) << "}";
  out << ", \"macro\": {\"precision\": " << json_number(macro_precision) << ", \"recall\": " << json_number(macro_recall)
      << ", \"f1\": " << json_number(macro_f1) << ", \"auroc\": " << json_number(macro_auroc) << "}";
  out << ", \"classes\": [";
  for (size_t j = 0; j < classes.size(); ++j) {
    const auto& c = classes[j];
    out << (j ? ", " : "") << "{\"name\": " << json::quote(c.name) << ", \"precision\": " << json_number(c.precision)
        << ", \"recall\": " << json_number(c.recall) << ", \"f1\": " << json_number(c.f1)
        << ", \"auroc\": " << json_number(c.auroc) << ", \"support\": " << c.counts.support() << ", \"tp\": " << c.counts.tp
        << ", \"fp\": " << c.counts.fp << ", \"fn\": " << c.counts.fn << ", \"tn\": " << c.counts.tn << "}";
  }
  out << "]";
  if (confusion.defined()) {
    const int64_t k = confusion.size(0);
    const std::vector<int64_t> m = to_vector<int64_t>(confusion);
    out << ", \"confusion\": [";
    for (int64_t i = 0; i < k; ++i) {
      out << (i ? ", " : "") << "[";
      for (int64_t j = 0; j < k; ++j) out << (j ? ", " : "") << m[static_cast<size_t>(i * k + j)];
      out << "]";
    }
    out << "]";
  }
  out << "}";
  return out.str();
}

}  // namespace loupe::nn
