// The shared machinery of the perturbation methods (explain/perturbation.hpp): grouping result
// rows by input row, chunked scoring of perturbed copies with several classes at once, blending.
#include <doctest/doctest.h>

#include "explain/perturbation.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

TEST_CASE("group_rows: the targets of one input row share a group") {
  const Tensor w = random_tensor({3, 4}, DType::f64);
  const Tensor x = random_tensor({2, 4}, DType::f64, -1, 1, 3);
  const explain::detail::Prepared p = explain::detail::prepare(Query{linear_model(w), {x}, Target::several({{0, 2}, {1}})}, "test");
  const std::vector<explain::detail::RowGroup> groups = explain::detail::group_rows(p);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].input_row == 0);
  CHECK(groups[0].results == std::vector<int64_t>{0, 1});
  CHECK(groups[0].classes == std::vector<int64_t>{0, 2});
  CHECK(groups[1].input_row == 1);
  CHECK(groups[1].results == std::vector<int64_t>{2});
  CHECK(groups[1].classes == std::vector<int64_t>{1});
}

TEST_CASE("score_perturbations: every class from the same passes, independent of the chunk size") {
  const Tensor w = random_tensor({3, 4}, DType::f64);
  const Tensor x = random_tensor({1, 4}, DType::f64, -1, 1, 3);
  const Tensor scales = random_tensor({7, 1}, DType::f64, 0, 1, 5);  // copy i is x * scale_i
  int64_t passes = 0;
  const ForwardFn model = [&](const std::vector<Tensor>& in) {
    ++passes;
    return linear(in[0], w);
  };
  const auto perturb = [&](int64_t start, int64_t end) {
    return std::vector<Tensor>{ops::mul(ops::narrow(scales, 0, start, end - start), x)};
  };
  const std::vector<int64_t> classes = {2, 0};
  const Tensor expected = ops::index_select(ops::matmul(ops::mul(scales, x), ops::transpose(w, 0, 1)), 1,
                                            from_values(classes, {2}));
  for (int64_t per_eval : {1, 3, 7, 100}) {
    passes = 0;
    const Tensor s = explain::detail::score_perturbations(model, Output::logit, classes, 7, per_eval, perturb);
    check_close(s, expected, 1e-12, 0, "chunk " + std::to_string(per_eval));
    CHECK(passes == (7 + std::min<int64_t>(per_eval, 7) - 1) / std::min<int64_t>(per_eval, 7));
  }
  // Softmax: probabilities over all outputs, then the classes.
  const Tensor p = explain::detail::score_perturbations(model, Output::softmax, classes, 7, 0, perturb);
  const Tensor probs = ops::softmax(ops::matmul(ops::mul(scales, x), ops::transpose(w, 0, 1)), 1);
  check_close(p, ops::index_select(probs, 1, from_values(classes, {2})), 1e-12, 0, "softmax");
  // No target: one score per row.
  const ForwardFn scalar_model = [&](const std::vector<Tensor>& in) { return ops::sum(in[0], {1}); };
  const Tensor none = explain::detail::score_perturbations(scalar_model, Output::logit, {-1}, 7, 2, perturb);
  CHECK(none.shape() == Shape{7, 1});
  check_close(none, ops::reshape(ops::sum(ops::mul(scales, x), {1}), {7, 1}), 1e-12, 0, "no target");
}

TEST_CASE("score_perturbations: bad chunks and knobs raise") {
  const Tensor w = random_tensor({3, 4}, DType::f64);
  const Tensor x = random_tensor({1, 4}, DType::f64);
  const ForwardFn model = linear_model(w);
  const auto wrong_rows = [&](int64_t, int64_t) { return std::vector<Tensor>{x}; };
  CHECK_THROWS_WITH_AS(explain::detail::score_perturbations(model, Output::logit, {0}, 4, 2, wrong_rows),
                       doctest::Contains("perturbation chunk of 2 rows"), Error);
  CHECK_THROWS_WITH_AS(explain::detail::score_perturbations(model, Output::logit, {0}, 4, -1, wrong_rows),
                       doctest::Contains("perturbations_per_eval"), Error);
  CHECK_THROWS_WITH_AS(explain::detail::score_perturbations(model, Output::logit, {5}, 1, 1, wrong_rows),
                       doctest::Contains("out of range"), Error);
}

TEST_CASE("blend and default_per_eval") {
  const Tensor x = from_values(std::vector<double>{1, 2, 3}, {1, 3}, DType::f64);
  const Tensor b = from_values(std::vector<double>{-1, -1, -1}, {1, 3}, DType::f64);
  const Tensor mask = from_values(std::vector<double>{1, 0, 1, 0, 1, 0.5}, {2, 3}, DType::f64);
  check_close(explain::detail::blend(x, b, mask), from_values(std::vector<double>{1, -1, 3, -1, 2, 1}, {2, 3}, DType::f64), 0,
              0, "blend");
  // A bool mask selects both values exactly (0.7 + (0.1 - 0.7) is not 0.1 in float64).
  const Tensor xs = from_values(std::vector<double>{0.1, 0.1}, {1, 2}, DType::f64);
  const Tensor bs = from_values(std::vector<double>{0.7, 0.7}, {1, 2}, DType::f64);
  const Tensor keep = ops::to_dtype(from_values(std::vector<double>{1, 0, 0, 1}, {2, 2}, DType::f64), DType::b8);
  CHECK(values(explain::detail::blend(xs, bs, keep)) == std::vector<double>{0.1, 0.7, 0.7, 0.1});
  // 3x224x224 float32 rows: 64 MiB hold 111 of them (602112 bytes each).
  CHECK(explain::detail::default_per_eval({zeros({1, 3, 224, 224})}) == (int64_t{64} << 20) / (3 * 224 * 224 * 4));
  CHECK(explain::detail::default_per_eval({zeros({1, 3, 224, 224})}, 1) == 1);
}

}  // namespace loupe::test
