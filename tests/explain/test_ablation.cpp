// Feature ablation (explain/feature_ablation.hpp) and the feature-mask handling it shares with
// LIME and KernelSHAP (explain/coalitions.hpp): the closed form on a linear model
// (attr = sum over the group of (x - x') w), masks with and without a batch dim, ids shared by
// two inputs, independence of perturbations_per_eval, several targets, and bad masks.
#include <doctest/doctest.h>

#include "explain/feature_ablation.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

// The closed form of feature ablation on f = x W^T + b: element e of row r gets
// sum_{e' in group(e)} (x - x')_{r e'} W[t_r, e'].
Tensor ablation_closed_form(const Tensor& x, const Tensor& baseline, const Tensor& w, const std::vector<int64_t>& rows,
                            const std::vector<int64_t>& targets, const std::vector<int64_t>& ids) {
  const auto xv = values(x), bv = values(baseline), wv = values(w);
  const int64_t d = x.size(1);
  std::vector<double> out;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int64_t e = 0; e < d; ++e) {
      double s = 0;
      for (int64_t e2 = 0; e2 < d; ++e2) {
        if (ids[static_cast<size_t>(e2)] != ids[static_cast<size_t>(e)]) continue;
        const auto i = static_cast<size_t>(rows[r] * d + e2);
        s += (xv[i] - bv[baseline.size(0) == 1 ? static_cast<size_t>(e2) : i]) *
             wv[static_cast<size_t>(targets[r] * d + e2)];
      }
      out.push_back(s);
    }
  }
  return from_values(out, {static_cast<int64_t>(rows.size()), d}, DType::f64);
}

}  // namespace

TEST_CASE("feature_ablation: linear model closed form, grouped features, several targets, any chunk size") {
  const Tensor w = random_tensor({3, 6}, DType::f64, -1, 1, 1);
  const Tensor b = random_tensor({3}, DType::f64, -1, 1, 2);
  const Tensor x = random_tensor({2, 6}, DType::f64, -1, 1, 3);
  const Tensor base = random_tensor({1, 6}, DType::f64, -0.5, 0.5, 4);
  const std::vector<int64_t> ids = {0, 0, 1, 2, 2, 2};
  const Query q{linear_model(w, b), {x}, Target::several({{0, 2}, {1}}), Output::logit, {Baseline(base)}};
  const Tensor expected = ablation_closed_form(x, base, w, {0, 0, 1}, {0, 2, 1}, ids);
  for (int64_t per_eval : {0, 1, 2, 100}) {
    FeatureAblationOptions o;
    o.feature_mask = {from_values(ids, {6})};
    o.perturbations_per_eval = per_eval;
    const Attribution a = feature_ablation(q, o);
    CHECK(a.rows == std::vector<int64_t>{0, 0, 1});
    CHECK(a.targets == std::vector<int64_t>{0, 2, 1});
    check_close(a.attributions[0], expected, 1e-12, 0, "per_eval " + std::to_string(per_eval));
  }
  // No mask: each scalar is its own feature, attr = (x - x') w.
  const Attribution single = feature_ablation(Query{linear_model(w), {x}, Target(1), Output::logit, {Baseline(base)}});
  check_close(single.attributions[0], ops::mul(ops::sub(x, base), ops::narrow(w, 0, 1, 1)), 1e-12, 0, "no mask");
  // One mask per input row (batch dim N), and a mask with a batch dim of 1.
  FeatureAblationOptions per_row;
  per_row.feature_mask = {from_values(std::vector<int64_t>{0, 0, 1, 2, 2, 2, 0, 1, 0, 1, 0, 1}, {2, 6})};
  const Attribution pr =
      feature_ablation(Query{linear_model(w), {x}, Target(0), Output::logit, {Baseline(base)}}, per_row);
  check_close(ops::narrow(pr.attributions[0], 0, 1, 1),
              ops::narrow(ablation_closed_form(x, base, w, {0, 1}, {0, 0}, {0, 1, 0, 1, 0, 1}), 0, 1, 1), 1e-12, 0,
              "row 1 mask");
  check_close(ops::narrow(pr.attributions[0], 0, 0, 1),
              ops::narrow(ablation_closed_form(x, base, w, {0, 1}, {0, 0}, ids), 0, 0, 1), 1e-12, 0, "row 0 mask");
}

TEST_CASE("feature_ablation: two inputs sharing feature ids are ablated together") {
  // f(a, c) = [a, c] W^T with a (N, 2), c (N, 3); ids a: {0, 1}, c: {1, 1, 0}.
  const Tensor w = random_tensor({2, 5}, DType::f64, -1, 1, 5);
  const Tensor a = random_tensor({1, 2}, DType::f64, -1, 1, 6), c = random_tensor({1, 3}, DType::f64, -1, 1, 7);
  const ForwardFn model = [w](const std::vector<Tensor>& in) { return linear(ops::cat({in[0], in[1]}, 1), w); };
  FeatureAblationOptions o;
  o.feature_mask = {from_values(std::vector<int64_t>{0, 1}, {2}), from_values(std::vector<int64_t>{1, 1, 0}, {3})};
  const Attribution attr = feature_ablation(Query{model, {a, c}, Target(1)}, o);
  const Tensor joined =
      ablation_closed_form(ops::cat({a, c}, 1), zeros({1, 5}, DType::f64), w, {0}, {1}, {0, 1, 1, 1, 0});
  check_close(attr.attributions[0], ops::narrow(joined, 1, 0, 2), 1e-12, 0, "input 0");
  check_close(attr.attributions[1], ops::narrow(joined, 1, 2, 3), 1e-12, 0, "input 1");
}

TEST_CASE("feature masks: bad masks raise naming the method") {
  const Tensor w = random_tensor({2, 4}, DType::f64);
  const Query q{linear_model(w), {random_tensor({2, 4}, DType::f64)}, Target(0)};
  FeatureAblationOptions o;
  o.feature_mask = {from_values(std::vector<double>{0, 1, 2, 3}, {4}, DType::f64)};
  CHECK_THROWS_WITH_AS(feature_ablation(q, o), doctest::Contains("feature_ablation: feature mask 0 must be an int64"),
                       Error);
  o.feature_mask = {from_values(std::vector<int64_t>{0, 1, 2}, {3})};
  CHECK_THROWS_WITH_AS(feature_ablation(q, o), doctest::Contains("does not broadcast"), Error);
  o.feature_mask = {from_values(std::vector<int64_t>{0, -1, 2, 3}, {4})};
  CHECK_THROWS_WITH_AS(feature_ablation(q, o), doctest::Contains("negative id -1"), Error);
  o.feature_mask = {zeros({3, 4}, DType::i64)};
  CHECK_THROWS_WITH_AS(feature_ablation(q, o), doctest::Contains("3 rows for a batch of 2"), Error);
  o.feature_mask = {zeros({4}, DType::i64), zeros({4}, DType::i64)};
  CHECK_THROWS_WITH_AS(feature_ablation(q, o), doctest::Contains("2 feature masks for 1 inputs"), Error);
}

}  // namespace loupe::test
