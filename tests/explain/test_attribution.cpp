// The common attribution API (targets, output transforms, baselines, several inputs, chunking)
// and the plain-gradient and guided methods on models small enough to work out by hand.
#include <doctest/doctest.h>

#include "nn/module.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

// W (3 classes x 4 features), x (2 rows).
Tensor weights() { return from_values(std::vector<double>{1, -2, 3, 0.5, -1, 0, 2, 1, 0.25, 4, -3, 2}, {3, 4}, DType::f64); }
Tensor inputs() { return from_values(std::vector<double>{0.5, -1, 2, 1, -0.5, 3, 1, -2}, {2, 4}, DType::f64); }

// A single-layer module, to check the nn::Module overload.
class TinyLinear : public nn::Module {
 public:
  explicit TinyLinear(const Tensor& w) { weight_ = register_parameter("weight", w); }
  Tensor forward(const Tensor& x) override { return linear(x, weight_); }

 private:
  Tensor weight_;
};

}  // namespace

TEST_CASE("saliency and input x gradient of a linear model are |w_t| and x * w_t") {
  const Tensor w = weights(), x = inputs();
  Query q{linear_model(w), {x}, Target::per_row({2, 0})};
  const Tensor w_t = weight_rows(w, {2, 0});
  check_close(saliency(q).attributions[0], ops::abs(w_t), 0, 0, "saliency (abs)");
  check_close(saliency(q, {.absolute = false}).attributions[0], w_t, 0, 0, "saliency (signed)");
  check_close(input_x_gradient(q).attributions[0], ops::mul(x, w_t), 0, 0, "input x gradient");
  check_close(input_x_gradient(q, {.multiply_by_inputs = false}).attributions[0], w_t, 0, 0, "gradient only");
  // Guided backprop and deconvolution only change ReLUs: none here.
  check_close(guided_backprop(q).attributions[0], w_t, 0, 0, "guided backprop");
  check_close(deconvolution(q).attributions[0], w_t, 0, 0, "deconvolution");
  // One int: the same class for every row.
  check_close(saliency(Query{linear_model(w), {x}, 1}, {.absolute = false}).attributions[0], weight_rows(w, {1, 1}), 0,
              0, "one target for all rows");
}

TEST_CASE("several targets per row expand the rows in order") {
  const Tensor w = weights(), x = inputs();
  Query q{linear_model(w), {x}, Target::several({{0, 2}, {1}})};
  const Attribution a = input_x_gradient(q);
  CHECK(a.rows == std::vector<int64_t>{0, 0, 1});
  CHECK(a.targets == std::vector<int64_t>{0, 2, 1});
  const Tensor x_rows = ops::index_select(x, 0, from_values(std::vector<int64_t>{0, 0, 1}, {3}));
  check_close(a.attributions[0], ops::mul(x_rows, weight_rows(w, {0, 2, 1})), 0, 0, "several targets");
  // each_of: the same list for every row.
  const Attribution b = saliency(Query{linear_model(w), {x}, Target::each_of({1, 2})}, {.absolute = false});
  CHECK(b.rows == std::vector<int64_t>{0, 0, 1, 1});
  check_close(b.attributions[0], weight_rows(w, {1, 2, 1, 2}), 0, 0, "each_of");
}

TEST_CASE("output transforms: sigmoid and softmax probabilities") {
  const Tensor w = weights(), x = inputs();
  // Sigmoid of logit z = x . w_t: gradient s (1 - s) w_t.
  Query q{linear_model(w), {x}, Target::per_row({2, 0}), Output::sigmoid};
  const Tensor w_t = weight_rows(w, {2, 0});
  const auto z = values(ops::sum(ops::mul(x, w_t), {1}));
  const Tensor g = saliency(q, {.absolute = false}).attributions[0];
  for (int64_t r = 0; r < 2; ++r) {
    const double s = 1.0 / (1.0 + std::exp(-z[static_cast<size_t>(r)]));
    for (int64_t j = 0; j < 4; ++j) {
      CHECK(values(g)[static_cast<size_t>(r * 4 + j)] ==
            doctest::Approx(s * (1 - s) * values(w_t)[static_cast<size_t>(r * 4 + j)]).epsilon(1e-12));
    }
  }
  // Softmax probability p_t: gradient p_t (w_t - sum_k p_k w_k).
  q.output = Output::softmax;
  const Tensor p = ops::softmax(linear(x, w), 1);
  const Tensor expected = ops::mul(ops::sub(w_t, ops::matmul(p, w)),
                                   ops::gather(p, 1, from_values(std::vector<int64_t>{2, 0}, {2, 1})));
  check_close(saliency(q, {.absolute = false}).attributions[0], ops::reshape(expected, {2, 4}), 1e-14, 1e-12,
              "softmax probability");
}

TEST_CASE("no target: a model with one score per row") {
  const Tensor w = from_values(std::vector<double>{1, -2}, {1, 2}, DType::f64);
  const Tensor x = from_values(std::vector<double>{3, 4, 5, 6}, {2, 2}, DType::f64);
  auto flat = [w](const std::vector<Tensor>& in) { return reshape(linear(in[0], w), {-1}); };  // (N)
  const Attribution a = input_x_gradient(Query{flat, {x}});
  check_close(a.attributions[0], from_values(std::vector<double>{3, -8, 5, -12}, {2, 2}, DType::f64), 0, 0,
              "(N) output");
  CHECK(a.targets == std::vector<int64_t>{-1, -1});
  // (N, 1) works too.
  check_close(input_x_gradient(Query{linear_model(w), {x}}).attributions[0], a.attributions[0], 0, 0, "(N, 1) output");
}

TEST_CASE("a model of several inputs gets one attribution per input") {
  // f(a, b) = sum(a * wa) + sum(b * wb) per row: gradients wa and wb.
  const Tensor wa = from_values(std::vector<double>{1, 2}, {2}, DType::f64);
  const Tensor wb = from_values(std::vector<double>{-1, 0.5, 3}, {3}, DType::f64);
  auto f = [&](const std::vector<Tensor>& in) { return add(sum(mul(in[0], wa), {1}), sum(mul(in[1], wb), {1})); };
  const Tensor a = random_tensor({2, 2}, DType::f64, -1, 1, 3), b = random_tensor({2, 3}, DType::f64, -1, 1, 4);
  const Attribution r = input_x_gradient(Query{f, {a, b}});
  REQUIRE(r.attributions.size() == 2);
  check_close(r.attributions[0], ops::mul(a, wa), 0, 1e-15, "first input");
  check_close(r.attributions[1], ops::mul(b, wb), 0, 1e-15, "second input");
}

TEST_CASE("baselines: zeros, scalar, broadcast tensors, one per input") {
  const Tensor x = random_tensor({2, 3}, DType::f64, -1, 1, 5);
  auto resolve = [&](const Baseline& b) { return values(b.resolve(x)); };
  CHECK(resolve(Baseline()) == std::vector<double>(6, 0.0));
  CHECK(resolve(0.5) == std::vector<double>(6, 0.5));
  const Tensor row = from_values(std::vector<double>{1, 2, 3}, {3}, DType::f64);  // no batch dim
  CHECK(resolve(row) == std::vector<double>{1, 2, 3, 1, 2, 3});
  CHECK(resolve(ops::unsqueeze(row, 0)) == std::vector<double>{1, 2, 3, 1, 2, 3});  // batch of 1
  const Tensor per_row = random_tensor({2, 3}, DType::f64, -1, 1, 6);
  CHECK(resolve(per_row) == values(per_row));
  CHECK_THROWS_AS(Baseline(random_tensor({3, 3}, DType::f64)).resolve(x), Error);

  // One baseline per input through a method: IG of f(a, b) = sum(a) + 2 sum(b) is (a - a') + 2 (b - b').
  auto f = [](const std::vector<Tensor>& in) { return add(sum(in[0], {1}), mul(sum(in[1], {1}), 2.0)); };
  Query q{f, {x, x}};
  q.baselines = {1.0, Baseline(row)};
  const Attribution a = integrated_gradients(q, {.n_steps = 4});
  check_close(a.attributions[0], ops::sub(x, ops::scalar_like(1.0, x)), 1e-14, 0, "scalar baseline");
  check_close(a.attributions[1], ops::mul(ops::sub(x, ops::expand(row, {2, 3})), ops::scalar_like(2.0, x)), 1e-14, 0,
              "tensor baseline");
}

TEST_CASE("guided backprop and deconvolution on a tiny ReLU net by hand") {
  // f(x) = v . relu(W x), W = [[1, -1], [2, 1], [-1, 1]], v = (1, -1, 2), x = (2, 1):
  // h = W x = (1, 5, -1); relu' = (1, 1, 0).
  // Ordinary gradient:  W^T (v * relu') = W^T (1, -1, 0)         = (1 - 2, -1 - 1)  = (-1, -2)
  // Guided:             W^T (max(v, 0) * relu') = W^T (1, 0, 0)  = (1, -1)
  // Deconvolution:      W^T max(v, 0) = W^T (1, 0, 2)             = (1 - 2, -1 + 2) = (-1, 1)
  const Tensor W = from_values(std::vector<double>{1, -1, 2, 1, -1, 1}, {3, 2}, DType::f64);
  const Tensor v = from_values(std::vector<double>{1, -1, 2}, {1, 3}, DType::f64);
  auto f = [&](const std::vector<Tensor>& in) { return linear(relu(linear(in[0], W)), v); };
  Query q{f, {from_values(std::vector<double>{2, 1}, {1, 2}, DType::f64)}};
  CHECK(values(saliency(q, {.absolute = false}).attributions[0]) == std::vector<double>{-1, -2});
  CHECK(values(guided_backprop(q).attributions[0]) == std::vector<double>{1, -1});
  CHECK(values(deconvolution(q).attributions[0]) == std::vector<double>{-1, 1});
}

TEST_CASE("gradient methods: results do not depend on internal_batch_size") {
  const Tensor w1 = random_tensor({6, 4}, DType::f32, -1, 1, 21), b1 = random_tensor({6}, DType::f32, -1, 1, 22);
  const Tensor w2 = random_tensor({3, 6}, DType::f32, -1, 1, 23);
  auto f = [&](const std::vector<Tensor>& in) { return linear(relu(linear(in[0], w1, b1)), w2); };
  Query q{f, {random_tensor({7, 4}, DType::f32, -1, 1, 24)}, Target::per_row({0, 1, 2, 0, 1, 2, 0})};
  const Tensor all = guided_backprop(q).attributions[0];
  for (int64_t chunk : {1, 3, 7}) {
    check_close(guided_backprop(q, {.internal_batch_size = chunk}).attributions[0], all, 1e-7, 1e-6, "guided");
    check_close(saliency(q, {.internal_batch_size = chunk}).attributions[0], saliency(q).attributions[0], 1e-7, 1e-6,
                "saliency");
  }
}

TEST_CASE("explain works with an nn::Module") {
  const Tensor w = weights();
  TinyLinear model(w);
  const Attribution a = saliency(Query{as_forward(model), {inputs()}, 1}, {.absolute = false});
  check_close(a.attributions[0], weight_rows(w, {1, 1}), 0, 0, "module");
  // The parameters' .grad is untouched: explanations are not training.
  CHECK_FALSE(model.parameters()[0].grad().defined());
}

TEST_CASE("explain API errors name the problem") {
  const Tensor w = weights(), x = inputs();
  CHECK_THROWS_WITH_AS(saliency(Query{linear_model(w), {x}, 7}), doctest::Contains("target 7"), Error);
  CHECK_THROWS_AS(saliency(Query{linear_model(w), {x}, Target::per_row({0, 1, 2})}), Error);  // 3 targets, 2 rows
  CHECK_THROWS_AS(saliency(Query{linear_model(w), {x}}), Error);                             // (N, 3) without target
  CHECK_THROWS_AS(saliency(Query{linear_model(w), {x, random_tensor({3, 4}, DType::f64)}, 0}), Error);  // batch mismatch
  CHECK_THROWS_AS(saliency(Query{ForwardFn(), {x}, 0}), Error);
  CHECK_THROWS_AS(saliency(Query{linear_model(w), {from_values(std::vector<int64_t>{1, 2}, {1, 2})}, 0}), Error);
  Query three{linear_model(w), {x}, 0};
  three.baselines = {0.0, 1.0};  // two baselines for one input
  CHECK_THROWS_AS(integrated_gradients(three), Error);
  CHECK_THROWS_WITH_AS(saliency(Query{linear_model(w), {x}, 0}, {.internal_batch_size = -1}),
                       doctest::Contains("internal_batch_size"), Error);
}

}  // namespace loupe::test
