// The study's metrics: thresholds chosen on validation, decisions, F1 / AUROC equal to the
// library's evaluate_multilabel at threshold 0.5, bootstrap intervals, the 3-group confusion matrix.
#include <doctest/doctest.h>

#include <cmath>

#include "nn/metrics/report.hpp"
#include "study/metrics.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace loupe::test {

TEST_CASE("choose_thresholds: the cut with the best F1 per label, ties closest to 0.5") {
  // Label 0: positives at 0.3 and 0.35, negatives at 0.1 and 0.2: any cut in (0.2, 0.3) separates
  // them (F1 1); the midpoint 0.25 is the candidate. Label 1: perfectly ranked around 0.5 already
  // (0.4 negative, 0.6 positive): 0.5 is kept (F1 1 and closest to 0.5).
  const Tensor p = from_values(std::vector<float>{0.1f, 0.4f, 0.2f, 0.4f, 0.3f, 0.6f, 0.35f, 0.6f}, {4, 2});
  const Tensor y = from_values(std::vector<float>{0, 0, 0, 0, 1, 1, 1, 1}, {4, 2});
  const std::vector<double> t = study::choose_thresholds(p, y);
  REQUIRE(t.size() == 2);
  CHECK(t[0] == doctest::Approx(0.25));
  CHECK(t[1] == 0.5);
  const Tensor d = study::decide(p, t);
  CHECK(to_vector<float>(d) == std::vector<float>{0, 0, 0, 0, 1, 1, 1, 1});
}

TEST_CASE("system_metrics at threshold 0.5 equals evaluate_multilabel; intervals hold the value") {
  Generator g(5);
  const Tensor p = uniform({60, 3}, 0.0, 1.0, DType::f32, &g);
  const Tensor noise = uniform({60, 3}, 0.0, 0.6, DType::f32, &g);
  const Tensor y = ops::to_dtype(ops::gt(ops::add(p, noise), full({60, 3}, 0.8)), DType::f32);
  const Tensor d = study::decide(p, {0.5, 0.5, 0.5});
  study::BootstrapOptions options;
  options.resamples = 300;
  const study::SystemMetrics m = study::system_metrics(p, d, y, options);
  const nn::MetricsReport r = nn::evaluate_multilabel(p, y, 0.5);
  CHECK(m.images == 60);
  CHECK(m.micro_f1.value == doctest::Approx(r.micro_f1));
  CHECK(m.macro_f1.value == doctest::Approx(r.macro_f1));
  CHECK(m.macro_auroc.value == doctest::Approx(r.macro_auroc));
  CHECK(m.subset_accuracy.value == doctest::Approx(r.accuracy));
  for (size_t j = 0; j < 3; ++j) {
    CHECK(m.f1[j].value == doctest::Approx(r.classes[j].f1));
    CHECK(m.auroc[j].value == doctest::Approx(r.classes[j].auroc));
  }
  for (const study::Interval& i : {m.micro_f1, m.macro_f1, m.macro_auroc, m.subset_accuracy}) {
    CHECK(i.low <= i.value);
    CHECK(i.value <= i.high);
    CHECK(i.low < i.high);  // 60 noisy examples: the resamples differ
  }
  // The same seed gives the same intervals; no resamples give none.
  const study::SystemMetrics again = study::system_metrics(p, d, y, options);
  CHECK(again.micro_f1.low == m.micro_f1.low);
  CHECK(again.micro_f1.high == m.micro_f1.high);
  options.resamples = 0;
  CHECK(std::isnan(study::system_metrics(p, d, y, options).micro_f1.low));
}

TEST_CASE("system_metrics: a subset of rows, and the 3-group confusion matrix") {
  // Rows: COVID-19 (1,1,0) predicted COVID; other pneumonia (0,1,0) predicted no finding;
  // no finding (0,0,1) predicted nothing; no finding predicted no finding.
  const Tensor y = from_values(std::vector<float>{1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1}, {4, 3});
  const Tensor d = from_values(std::vector<float>{1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}, {4, 3});
  study::BootstrapOptions none;
  none.resamples = 0;
  const study::SystemMetrics m = study::system_metrics(d, d, y, none);
  CHECK(m.confusion[0] == std::vector<int64_t>{1, 0, 0, 0});
  CHECK(m.confusion[1] == std::vector<int64_t>{0, 0, 1, 0});
  CHECK(m.confusion[2] == std::vector<int64_t>{0, 0, 1, 1});
  // tp 3 (covid, pneumonia of row 0, no_finding of row 3), fp 1, fn 2: micro-F1 6 / 9.
  CHECK(m.micro_f1.value == doctest::Approx(6.0 / 9.0));
  CHECK(m.subset_accuracy.value == doctest::Approx(0.5));
  const study::SystemMetrics first = study::system_metrics(d, d, y, none, {0, 3});
  CHECK(first.images == 2);
  CHECK(first.micro_f1.value == doctest::Approx(1.0));
  CHECK_THROWS_AS(study::system_metrics(d, d, y, none, {4}), Error);
}

}  // namespace loupe::test
