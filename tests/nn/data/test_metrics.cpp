// Metrics against values derived by hand (the single-label example is the one in scikit-learn's
// classification_report documentation, whose printed numbers agree), AUROC with ties against
// pair counting, the report's table and JSON, and the ensembles.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "nn/metrics/auroc.hpp"
#include "nn/metrics/classification.hpp"
#include "nn/metrics/ensemble.hpp"
#include "nn/metrics/report.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {
Tensor classes(const std::vector<int64_t>& v) { return from_values(v, {static_cast<int64_t>(v.size())}); }
Tensor matrix(const std::vector<double>& v, int64_t rows, int64_t cols) {
  return from_values(v, {rows, cols}, DType::f32);
}
}  // namespace

TEST_CASE("single-label metrics: sklearn's classification_report example") {
  // y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1].
  // class 0: tp 1, fp 1 (a 1 taken for 0), fn 0 -> P 1/2, R 1, F1 2/3
  // class 1: tp 0, fp 1 (a 2 taken for 1), fn 1 -> P 0, R 0, F1 0
  // class 2: tp 2, fp 0, fn 1              -> P 1, R 2/3, F1 4/5
  // macro: P 1/2, R (1 + 0 + 2/3) / 3 = 5/9, F1 (2/3 + 0 + 4/5) / 3 = 22/45; micro F1 = accuracy 3/5
  const Tensor target = classes({0, 1, 2, 2, 2}), pred = classes({0, 0, 2, 2, 1});
  const auto counts = nn::count_single_label(pred, target, 3);
  CHECK(nn::precision(counts[0]) == doctest::Approx(0.5));
  CHECK(nn::recall(counts[0]) == doctest::Approx(1.0));
  CHECK(nn::f1(counts[0]) == doctest::Approx(2.0 / 3));
  CHECK(nn::f1(counts[1]) == 0.0);
  CHECK(nn::precision(counts[2]) == doctest::Approx(1.0));
  CHECK(nn::recall(counts[2]) == doctest::Approx(2.0 / 3));
  CHECK(nn::f1(counts[2]) == doctest::Approx(0.8));
  CHECK(counts[2].support() == 3);
  CHECK(counts[0].tn == 3);
  CHECK(nn::macro_precision(counts) == doctest::Approx(0.5));
  CHECK(nn::macro_recall(counts) == doctest::Approx(5.0 / 9));
  CHECK(nn::macro_f1(counts) == doctest::Approx(22.0 / 45));
  CHECK(nn::micro_f1(counts) == doctest::Approx(0.6));
  CHECK(nn::accuracy(pred, target) == doctest::Approx(0.6));
  CHECK(to_vector<int64_t>(nn::confusion_matrix(pred, target, 3)) == std::vector<int64_t>{1, 0, 0, 1, 0, 0, 0, 1, 2});
  // Scores work as well as class indices (argmax of each row).
  const Tensor scores = matrix({0.7, 0.2, 0.1, 0.5, 0.3, 0.2, 0.1, 0.1, 0.8, 0.2, 0.2, 0.6, 0.1, 0.6, 0.3}, 5, 3);
  CHECK(to_vector<int64_t>(nn::predicted_classes(scores)) == std::vector<int64_t>{0, 0, 2, 2, 1});
  CHECK(nn::accuracy(scores, target) == doctest::Approx(0.6));
  // A class that never occurs (class 3 of 4) still counts in the macro average, with F1 0.
  CHECK(nn::macro_f1(nn::count_single_label(pred, target, 4)) == doctest::Approx(22.0 / 45 * 3 / 4));
  CHECK_THROWS_WITH_AS(nn::count_single_label(pred, classes({0, 1, 5, 2, 2}), 3), doctest::Contains("target[2] = 5"),
                       Error);
  CHECK_THROWS_AS(nn::accuracy(pred, classes({0, 1})), Error);
  CHECK_THROWS_AS(nn::accuracy(matrix({0.5}, 1, 1), from_values(std::vector<double>{0.0}, {1})), Error);
}

TEST_CASE("multilabel metrics with threshold 0.5 (strictly greater)") {
  // target              probabilities      predicted (> 0.5)
  // 1 0 1               .9 .2 .6           1 0 1
  // 0 1 0               .4 .7 .5           0 1 0
  // 1 1 0               .8 .3 .1           1 0 0
  // 0 0 1               .6 .1 .5           1 0 0
  // label 0: tp 2 fp 1 fn 0 -> F1 4/5; label 1: tp 1 fn 1 -> F1 2/3; label 2: tp 1 fn 1 -> F1 2/3
  // micro: tp 4, fp 1, fn 2 -> F1 8/11; macro F1 (4/5 + 2/3 + 2/3) / 3 = 32/45; subset accuracy 2/4
  const Tensor target = matrix({1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1}, 4, 3);
  const Tensor probs = matrix({.9, .2, .6, .4, .7, .5, .8, .3, .1, .6, .1, .5}, 4, 3);
  const auto counts = nn::count_multilabel(probs, target);
  CHECK(counts[0].tp == 2);
  CHECK(counts[0].fp == 1);
  CHECK(counts[0].tn == 1);
  CHECK(nn::f1(counts[0]) == doctest::Approx(0.8));
  CHECK(nn::f1(counts[1]) == doctest::Approx(2.0 / 3));
  CHECK(nn::f1(counts[2]) == doctest::Approx(2.0 / 3));
  CHECK(nn::micro_f1(counts) == doctest::Approx(8.0 / 11));
  CHECK(nn::macro_f1(counts) == doctest::Approx(32.0 / 45));
  CHECK(nn::subset_accuracy(probs, target) == doctest::Approx(0.5));
  CHECK(to_vector<int64_t>(nn::threshold_predictions(probs)) ==
        std::vector<int64_t>{1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0});
  // A lower threshold turns the two 0.5s positive: label 2 then has tp 2, fp 1 (row 1).
  const auto low = nn::count_multilabel(probs, target, 0.45);
  CHECK(low[2].tp == 2);
  CHECK(low[2].fp == 1);
  CHECK_THROWS_WITH_AS(nn::count_multilabel(probs, matrix({1, 0}, 1, 2), 0.5), doctest::Contains("(1, 2)"), Error);
}

TEST_CASE("roc_auc: known values, ties count one half, undefined with one class") {
  // sklearn's roc_auc_score docs: y = [0, 0, 1, 1], scores [0.1, 0.4, 0.35, 0.8] -> 0.75.
  CHECK(nn::roc_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}) == doctest::Approx(0.75));
  // Ties: positives 0.5 and 0.9, negatives 0.5 and 0.2. Pairs: (0.5, 0.5) tie = 1/2, the other
  // three pairs are ordered right: (1/2 + 3) / 4 = 0.875.
  CHECK(nn::roc_auc({0.5, 0.5, 0.2, 0.9}, {0, 1, 0, 1}) == doctest::Approx(0.875));
  CHECK(nn::roc_auc({0.3, 0.3, 0.3}, {1, 0, 1}) == doctest::Approx(0.5));
  CHECK(nn::roc_auc({0.9, 0.1}, {0, 1}) == doctest::Approx(0.0));
  CHECK(std::isnan(nn::roc_auc({0.1, 0.2}, {1, 1})));
  CHECK_THROWS_AS(nn::roc_auc({0.1, std::nan("")}, {0, 1}), Error);
  // Against counting all positive-negative pairs on scores with many ties.
  std::mt19937 rng(5);
  std::vector<double> s, y;
  for (int i = 0; i < 300; ++i) {
    s.push_back(static_cast<double>(rng() % 7) / 7.0);
    y.push_back(static_cast<double>(rng() % 3 == 0));
  }
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; j < s.size(); ++j)
      if (y[i] == 1 && y[j] == 0) {
        pairs += 1;
        wins += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
      }
  CHECK(nn::roc_auc(s, y) == doctest::Approx(wins / pairs).epsilon(1e-12));
}

TEST_CASE("auroc_per_class: multi-hot targets and one-vs-rest class targets") {
  const Tensor probs = matrix({.9, .2, .6, .4, .7, .5, .8, .3, .1, .6, .1, .5}, 4, 3);
  const Tensor target = matrix({1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1}, 4, 3);
  const auto auc = nn::auroc_per_class(probs, target);
  // label 0: positives .9 .8, negatives .4 .6 -> all 4 pairs right: 1
  // label 1: positives .7 .3, negatives .2 .1 -> 1
  // label 2: positives .6 .5, negatives .5 .1 -> pairs (.6,.5) (.6,.1) (.5,.1) right, (.5,.5) tie: 3.5/4
  CHECK(auc[0] == doctest::Approx(1.0));
  CHECK(auc[1] == doctest::Approx(1.0));
  CHECK(auc[2] == doctest::Approx(0.875));
  CHECK(nn::macro_auroc(auc) == doctest::Approx((2 + 0.875) / 3));
  // Class targets: class 1 never occurs -> NaN, left out of the macro mean.
  const Tensor scores = matrix({.8, .1, .1, .3, .3, .4, .6, .2, .2, .2, .2, .6}, 4, 3);
  const auto ovr = nn::auroc_per_class(scores, classes({0, 2, 0, 2}));
  CHECK(ovr[0] == doctest::Approx(1.0));
  CHECK(std::isnan(ovr[1]));
  CHECK(ovr[2] == doctest::Approx(1.0));
  CHECK(nn::macro_auroc(ovr) == doctest::Approx(1.0));
}

TEST_CASE("MetricsReport: table and JSON") {
  const Tensor target = matrix({1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1}, 4, 3);
  const Tensor probs = matrix({.9, .2, .6, .4, .7, .5, .8, .3, .1, .6, .1, .5}, 4, 3);
  const nn::MetricsReport r = nn::evaluate_multilabel(probs, target, 0.5, {"covid19", "pneumonia", "no \"finding\""});
  CHECK(r.micro_f1 == doctest::Approx(8.0 / 11));
  CHECK(r.macro_f1 == doctest::Approx(32.0 / 45));
  CHECK(r.accuracy == doctest::Approx(0.5));
  CHECK(r.classes[2].auroc == doctest::Approx(0.875));
  CHECK_FALSE(r.confusion.defined());
  const std::string table = r.table();
  CHECK(table.find("covid19") != std::string::npos);
  CHECK(table.find("0.7273") != std::string::npos);  // micro F1
  CHECK(table.find("subset accuracy 0.5000") != std::string::npos);
  const std::string json = r.json();
  CHECK(json.find("\"task\": \"multilabel\"") != std::string::npos);
  CHECK(json.find("\"name\": \"no \\\"finding\\\"\"") != std::string::npos);
  CHECK(json.find("\"micro\": {\"precision\": 0.80000000000000004") != std::string::npos);

  const nn::MetricsReport s = nn::evaluate_single_label(
      matrix({0.7, 0.2, 0.1, 0.5, 0.3, 0.2, 0.1, 0.1, 0.8, 0.2, 0.2, 0.6, 0.1, 0.6, 0.3}, 5, 3),
      classes({0, 1, 2, 2, 2}));
  CHECK(s.accuracy == doctest::Approx(0.6));
  CHECK(s.macro_f1 == doctest::Approx(22.0 / 45));
  CHECK(s.table().find("confusion matrix") != std::string::npos);
  CHECK(s.json().find("\"confusion\": [[1, 0, 0], [1, 0, 0], [0, 1, 2]]") != std::string::npos);
  // A class without negatives or positives has no AUROC: n/a in the table, null in JSON.
  const nn::MetricsReport one = nn::evaluate_multilabel(matrix({.9, .1}, 2, 1), matrix({1, 1}, 2, 1));
  CHECK(one.table().find("n/a") != std::string::npos);
  CHECK(one.json().find("\"auroc\": null") != std::string::npos);
  CHECK_THROWS_AS(nn::evaluate_multilabel(probs, target, 0.5, {"a", "b"}), Error);
}

TEST_CASE("ensembles: probability averaging and majority votes") {
  const Tensor m1 = matrix({.9, .2, .6, .4}, 2, 2);
  const Tensor m2 = matrix({.7, .6, .3, .4}, 2, 2);
  const Tensor m3 = matrix({.2, .7, .8, .1}, 2, 2);
  check_close(nn::average_probabilities({m1, m2, m3}), matrix({1.8 / 3, 1.5 / 3, 1.7 / 3, 0.9 / 3}, 2, 2), 1e-6, 0,
              "average");
  // Votes (> 0.5): element 0: 1 1 0 -> 1; element 1: 0 1 1 -> 1; element 2: 1 0 1 -> 1;
  // element 3: 0 0 0 -> 0.
  CHECK(values(nn::majority_vote({m1, m2, m3})) == std::vector<double>{1, 1, 1, 0});
  // Two models tie on elements 1 and 2: a tie is negative.
  CHECK(values(nn::majority_vote({m1, m2})) == std::vector<double>{1, 0, 0, 0});
  // Single-label: classes per model; a 1-1-1 tie goes to the lowest class.
  const Tensor a = classes({0, 1, 2, 2}), b = classes({0, 2, 1, 2}), c = classes({1, 2, 0, 0});
  CHECK(to_vector<int64_t>(nn::majority_vote_classes({a, b, c}, 3)) == std::vector<int64_t>{0, 2, 0, 2});
  CHECK_THROWS_WITH_AS(nn::majority_vote({m1, matrix({.1, .2}, 1, 2)}), doctest::Contains("model 1 gave (1, 2)"),
                       Error);
  CHECK_THROWS_AS(nn::average_probabilities({}), Error);
  CHECK_THROWS_AS(nn::majority_vote_classes({a, classes({0})}, 3), Error);
}

}  // namespace loupe::test
