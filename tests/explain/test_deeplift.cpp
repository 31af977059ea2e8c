// DeepLIFT (rescale) and DeepLIFT-SHAP through the explain API: hand cases, exact completeness on
// piecewise-linear nets (residual adds, max-pool, a weight used twice), agreement with IG where
// theory says so, chunking.
#include <doctest/doctest.h>

#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

// conv - relu - maxpool - [conv - relu - conv] + identity - relu - flatten - linear, with the first
// conv's weights used twice (a module applied twice): (N, 2, 6, 6) -> (N, 3).
ForwardFn piecewise_linear_net() {
  const Tensor c1 = random_tensor({4, 2, 3, 3}, DType::f64, -0.5, 0.5, 71), b1 = random_tensor({4}, DType::f64, -0.2, 0.2, 72);
  const Tensor c2 = random_tensor({4, 4, 3, 3}, DType::f64, -0.5, 0.5, 73);
  const Tensor c3 = random_tensor({4, 4, 3, 3}, DType::f64, -0.5, 0.5, 74);
  const Tensor fc = random_tensor({3, 36}, DType::f64, -0.5, 0.5, 75);
  return [=](const std::vector<Tensor>& in) {
    Conv2dParams same;
    same.padding = {1, 1};
    Pool2dParams pool;
    pool.kernel = {2, 2};
    Tensor h = max_pool2d(relu(conv2d(in[0], c1, b1, same)), pool);  // (N, 4, 3, 3)
    Tensor y = conv2d(relu(conv2d(h, c2, Tensor(), same)), c3, Tensor(), same);
    h = relu(add(h, y));
    h = relu(conv2d(h, c2, Tensor(), same));  // c2 again: the same weights in two places
    return linear(flatten(h, 1), fc);
  };
}

}  // namespace

TEST_CASE("DeepLIFT by hand through the API") {
  // f(x) = relu(x1 - x2), x = (3, 1), x' = 0: multiplier 1 on the relu, attributions (3, -1).
  auto f = [](const std::vector<Tensor>& in) {
    return relu(sum(mul(in[0], from_values(std::vector<double>{1, -1}, {2}, DType::f64)), {1}));
  };
  Query q{f, {from_values(std::vector<double>{3, 1, 1, 3}, {2, 2}, DType::f64)}};
  const Attribution a = deeplift(q, {.return_convergence_delta = true});
  CHECK(values(a.attributions[0]) == std::vector<double>{3, -1, 0, 0});  // second row: relu off
  CHECK(values(a.delta) == std::vector<double>{0, 0});
  CHECK(values(deeplift(q, {.multiply_by_inputs = false}).attributions[0]) == std::vector<double>{1, -1, 0, 0});
}

TEST_CASE("DeepLIFT equals IG on a linear model, and on one nonlinear layer") {
  const Tensor w = random_tensor({3, 5}, DType::f64, -1, 1, 81), b = random_tensor({3}, DType::f64, -1, 1, 82);
  const Tensor x = random_tensor({4, 5}, DType::f64, -2, 2, 83);
  Query q{linear_model(w, b), {x}, Target::per_row({0, 1, 2, 0})};
  q.baselines = {random_tensor({4, 5}, DType::f64, -1, 1, 84)};
  check_close(deeplift(q).attributions[0], integrated_gradients(q, {.n_steps = 5}).attributions[0], 1e-14, 1e-12,
              "linear");
  // One hidden layer of an elementwise nonlinearity: along the straight path each hidden unit's
  // input moves linearly from z' to z, so IG's average derivative is exactly (s(z) - s(z')) / (z - z'),
  // the rescale multiplier. Gauss-Legendre with 50 steps integrates the smooth path to ~1e-12.
  const Tensor w1 = random_tensor({6, 5}, DType::f64, -1, 1, 85), b1 = random_tensor({6}, DType::f64, -1, 1, 86);
  const Tensor w2 = random_tensor({3, 6}, DType::f64, -1, 1, 87);
  q.model = tanh_mlp(w1, b1, w2);
  check_close(deeplift(q).attributions[0], integrated_gradients(q, {.n_steps = 50}).attributions[0], 1e-10, 1e-9,
              "tanh layer");
  q.model = [=](const std::vector<Tensor>& in) { return linear(sigmoid(linear(in[0], w1, b1)), w2); };
  check_close(deeplift(q).attributions[0], integrated_gradients(q, {.n_steps = 50}).attributions[0], 1e-10, 1e-9,
              "sigmoid layer");
}

TEST_CASE("DeepLIFT is exact on a piecewise-linear net with max-pool, a residual add and a reused conv") {
  Query q{piecewise_linear_net(), {random_tensor({3, 2, 6, 6}, DType::f64, -1, 1, 91)}, Target::per_row({0, 2, 1})};
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) q.baselines = {random_tensor({1, 2, 6, 6}, DType::f64, -1, 1, 92)};  // broadcast over rows
    const Attribution a = deeplift(q, {.return_convergence_delta = true});
    const auto scores = values(explain::detail::score_rows(q.model, {q.inputs[0]}, {0, 2, 1}, Output::logit));
    for (size_t r = 0; r < 3; ++r) {
      CHECK(std::abs(values(a.delta)[r]) < 1e-12);
      CHECK(std::abs(scores[r]) > 1e-3);  // a non-trivial score to be complete about
    }
    // IG with many steps is not exact on the same net: the two methods differ here.
    const Attribution ig = integrated_gradients(q, {.n_steps = 10, .return_convergence_delta = true});
    CHECK(max_relative_error(ig.attributions[0], a.attributions[0]) > 1e-6);
  }
}

TEST_CASE("DeepLIFT on probabilities: sigmoid output is rescaled, delta 0 on a piecewise-linear body") {
  Query q{piecewise_linear_net(), {random_tensor({2, 2, 6, 6}, DType::f64, -1, 1, 93)}, Target::per_row({1, 0}),
          Output::sigmoid};
  const Attribution a = deeplift(q, {.return_convergence_delta = true});
  for (double d : values(a.delta)) CHECK(std::abs(d) < 1e-12);
}

TEST_CASE("DeepLIFT: internal_batch_size does not change the result") {
  Query q{piecewise_linear_net(), {random_tensor({5, 2, 6, 6}, DType::f64, -1, 1, 94)}, 1};
  q.baselines = {0.1};
  const Attribution all = deeplift(q, {.return_convergence_delta = true});
  for (int64_t chunk : {1, 2, 5}) {
    const Attribution part = deeplift(q, {.internal_batch_size = chunk, .return_convergence_delta = true});
    check_close(part.attributions[0], all.attributions[0], 1e-6, 1e-5, "chunked DeepLIFT");
    check_close(part.delta, all.delta, 1e-6, 0, "chunked delta");
  }
}

TEST_CASE("DeepLIFT-SHAP is the mean of DeepLIFT over the baselines") {
  const ForwardFn net = piecewise_linear_net();
  const Tensor x = random_tensor({2, 2, 6, 6}, DType::f64, -1, 1, 95);
  const Tensor set = random_tensor({3, 2, 6, 6}, DType::f64, -1, 1, 96);
  Query q{net, {x}, Target::per_row({2, 0})};
  const Attribution shap = deeplift_shap(q, {set}, {.return_convergence_delta = true});
  Tensor expected = zeros({2, 2, 6, 6}, DType::f64);
  for (int64_t j = 0; j < 3; ++j) {
    Query one = q;
    one.baselines = {ops::narrow(set, 0, j, 1)};
    expected = ops::add(expected, deeplift(one).attributions[0]);
  }
  check_close(shap.attributions[0], ops::div(expected, ops::scalar_like(3.0, expected)), 1e-13, 1e-12, "DeepLIFT-SHAP");
  for (double d : values(shap.delta)) CHECK(std::abs(d) < 1e-12);
  // Chunked pairs give the same.
  check_close(deeplift_shap(q, {set}, {.internal_batch_size = 4}).attributions[0], shap.attributions[0], 1e-13, 1e-12,
              "chunked DeepLIFT-SHAP");
  // Linear model: (x - mean baseline) * w.
  const Tensor w = random_tensor({2, 3}, DType::f64, -1, 1, 97);
  const Tensor xs = random_tensor({2, 3}, DType::f64, -1, 1, 98), bs = random_tensor({4, 3}, DType::f64, -1, 1, 99);
  const Attribution lin = deeplift_shap(Query{linear_model(w), {xs}, 1}, {bs});
  check_close(lin.attributions[0], ops::mul(ops::sub(xs, ops::mean(bs, {0}, true)), weight_rows(w, {1, 1})), 1e-14,
              1e-12, "linear DeepLIFT-SHAP");
  CHECK_THROWS_AS(deeplift_shap(q, {set, set}), Error);
  CHECK_THROWS_AS(deeplift_shap(q, {random_tensor({3, 2, 6}, DType::f64)}), Error);
}

}  // namespace loupe::test
