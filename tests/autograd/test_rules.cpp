// Backward rule sets on small graphs whose answers are worked out by hand in the comments.
#include <doctest/doctest.h>

#include <functional>

#include "tensor/cpu/fast_elementwise.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {
Tensor vec(std::vector<double> v) { return from_values(v, {static_cast<int64_t>(v.size())}, DType::f64); }

// [x; reference] stacked along a new leading batch dim: (2, ...).
Tensor doubled(const Tensor& x, const Tensor& reference) {
  Shape shape = x.shape();
  shape.insert(shape.begin(), 2);
  Tensor out = Tensor::empty(shape, x.dtype());
  ops::copy_(ops::select(out, 0, 0), x);
  ops::copy_(ops::select(out, 0, 1), reference);
  return out;
}

// DeepLIFT attributions of f (which maps a (2, ...) batch to (2) scores) for x against reference:
// run f on [x; x'], backprop the scores of both halves under the rescale rules, and multiply the
// input half's gradient by (x - x').
Tensor deeplift(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& reference) {
  Tensor batch = doubled(x, reference).set_requires_grad();
  autograd::RuleScope scope(autograd::deeplift_rescale_rules());
  Tensor g = grad({sum(f(batch))}, {batch})[0];
  return ops::mul(ops::sub(x, reference), ops::select(g, 0, 0));
}

// A doubled batch of 6 rows (inputs 0-2, references 3-5) for holding DeepLIFT's fused rules to the
// composed ones: row 3 equals row 0 (dx = 0: the ordinary-gradient fallback), row 4 is row 1 plus
// 1e-9 (a tiny dx), and channel 0 is exactly zero.
Tensor doubled_batch_with_edges(const Shape& shape, DType dtype, uint64_t seed) {
  Tensor x = random_tensor(shape, dtype, -2.0, 2.0, seed);
  NoGradGuard no_grad;
  ops::copy_(ops::slice(x, 0, 3, 4), ops::slice(x, 0, 0, 1));
  ops::copy_(ops::slice(x, 0, 4, 5), ops::add(ops::slice(x, 0, 1, 2), ops::scalar_like(1e-9, x)));
  ops::fill_(ops::slice(x, 1, 0, 1), 0.0);
  return x;
}

// Whether f(leaf) backpropagated from g under the DeepLIFT rules gives the same bits with the fast
// kernels (the fused rules) as with the reference kernels forced (the composed rules). Returns the
// fused gradient.
Tensor fused_rule_matches_composed(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& g) {
  auto rule_grad = [&] {
    Tensor leaf = x.detach().set_requires_grad();
    autograd::RuleScope scope(autograd::deeplift_rescale_rules());
    return grad({f(leaf)}, {leaf}, {g})[0];
  };
  const Tensor fused = rule_grad();
  cpu::fast::use_reference_kernels(true);
  const Tensor composed = rule_grad();
  cpu::fast::use_reference_kernels(false);
  CHECK(max_abs_diff(fused, composed) == 0.0);
  return fused;
}
}  // namespace

TEST_CASE("guided backprop and deconvolution replace every ReLU's backward") {
  // y = sum(w * relu(x)), w = (1, -2, 3), x = (1, 2, -1).
  // Ordinary:  relu'(x) * w          = (1, -2, 0)
  // Guided:    relu'(x) * max(w, 0)  = (1,  0, 0)
  // Deconv:    max(w, 0)             = (1,  0, 3)
  const Tensor w = vec({1, -2, 3});
  Tensor x = vec({1, 2, -1}).set_requires_grad();
  auto f = [&] { return sum(mul(w, relu(x))); };
  CHECK(values(grad({f()}, {x})[0]) == std::vector<double>{1, -2, 0});
  {
    autograd::RuleScope scope(autograd::guided_backprop_rules());
    CHECK(values(grad({f()}, {x})[0]) == std::vector<double>{1, 0, 0});
  }
  {
    autograd::RuleScope scope(autograd::deconvolution_rules());
    CHECK(values(grad({f()}, {x})[0]) == std::vector<double>{1, 0, 3});
  }
  // The scope has ended: ordinary gradients again.
  CHECK(values(grad({f()}, {x})[0]) == std::vector<double>{1, -2, 0});
}

TEST_CASE("guided backprop applies to every ReLU node, including one function used twice") {
  // h = relu(x); y = sum(relu(-h + 2) * (-1)) with x = (1, 3):
  // h = (1, 3); inner = (1, -1); relu(inner) = (1, 0); dy/d relu(inner) = -1.
  // Ordinary: d/dh = -relu'(inner) * -1... = (1, 0) * (-1) * (-1) = (1, 0); dx = relu'(x) * (1, 0) = (1, 0).
  // Guided: the outer ReLU clips g = -1 to 0, so everything below is 0.
  Tensor x = vec({1, 3}).set_requires_grad();
  auto f = [&] {
    Tensor h = relu(x);
    return sum(mul(relu(add(neg(h), 2.0)), -1.0));
  };
  CHECK(values(grad({f()}, {x})[0]) == std::vector<double>{1, 0});
  autograd::RuleScope scope(autograd::guided_backprop_rules());
  CHECK(values(grad({f()}, {x})[0]) == std::vector<double>{0, 0});
}

TEST_CASE("DeepLIFT rescale on relu(x1 - x2) by hand") {
  // f(x) = relu(x1 - x2). x = (3, 1), x' = (0, 0): relu input 2 vs 0, multiplier (2-0)/(2-0) = 1,
  // attributions (x - x') * (1, -1) = (3, -1), summing to f(x) - f(x') = 2.
  const Tensor w = vec({1, -1});
  auto f = [&](const Tensor& batch) { return relu(sum(mul(batch, w), {1})); };
  auto attr = values(deeplift(f, vec({3, 1}), vec({0, 0})));
  CHECK(attr[0] == doctest::Approx(3));
  CHECK(attr[1] == doctest::Approx(-1));
  // x = (1, 3): relu input -2 vs 0, both outputs 0, multiplier 0/(-2) = 0: no attribution.
  auto off = values(deeplift(f, vec({1, 3}), vec({0, 0})));
  CHECK(off[0] == 0.0);
  CHECK(off[1] == 0.0);
}

TEST_CASE("DeepLIFT's fused ReLU rule equals the composed rule bit for bit (float32 and float64)") {
  // The one-pass ReLU rule (autograd/rule_sets.cpp) against the composed one (a dozen ops), on
  // doubled_batch_with_edges: equal pre-activations (dx = 0), tiny and large differences, zeros
  // and both signs.
  for (DType dtype : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dtype));
    const Tensor x = doubled_batch_with_edges({6, 3, 5, 7}, dtype, 21);
    const Tensor g = random_tensor({6, 3, 5, 7}, dtype, -1.0, 1.0, 22);
    fused_rule_matches_composed([](const Tensor& t) { return relu(t); }, x, g);
  }
}

TEST_CASE("DeepLIFT rescale on a sigmoid is exactly f(x) - f(x')") {
  // One input through a sigmoid: the attribution is (x - x') * (s(x) - s(x')) / (x - x').
  auto f = [](const Tensor& batch) { return sum(sigmoid(batch), {1}); };
  auto attr = values(deeplift(f, vec({2.0}), vec({0.0})));
  CHECK(attr[0] == doctest::Approx(1.0 / (1.0 + std::exp(-2.0)) - 0.5));
  // Equal input and reference: the eps fallback uses the ordinary gradient, attribution 0.
  auto same = values(deeplift(f, vec({0.7}), vec({0.7})));
  CHECK(same[0] == 0.0);
}

TEST_CASE("DeepLIFT is exact (summation to delta) on a piecewise-linear network") {
  // Two layers with ReLUs: DeepLIFT's attributions add up to f(x) - f(x') exactly.
  const Tensor w1 = random_tensor({4, 6}, DType::f64, -1, 1, 101);
  const Tensor w2 = random_tensor({6, 1}, DType::f64, -1, 1, 102);
  auto f = [&](const Tensor& batch) {
    Tensor h = relu(matmul(batch, w1));
    return sum(leaky_relu(matmul(h, w2), 0.1), {1});
  };
  const Tensor x = random_tensor({4}, DType::f64, -1, 1, 103);
  const Tensor x0 = random_tensor({4}, DType::f64, -1, 1, 104);
  const double total = values(ops::sum(deeplift(f, x, x0)))[0];
  const auto scores = values(f(doubled(x, x0)));
  CHECK(total == doctest::Approx(scores[0] - scores[1]).epsilon(1e-10));
}

TEST_CASE("DeepLIFT max-pool rule routes the pooled difference by hand") {
  // One 2x2 window. x = [[1, 2], [0, 0]] (max 2 at position 1), x' = [[5, 0], [0, 0]] (max 5 at 0).
  // m = max(2, 5) = 5; the input half routes g (m - y') = 0 to position 1, the reference half
  // routes g (y - m) = -3 to position 0. Position 0 gets -3 / (1 - 5) = 0.75, attribution
  // (1 - 5) * 0.75 = -3 = f(x) - f(x').
  ops::Pool2dParams p;
  p.kernel = {2, 2};
  auto f = [&](const Tensor& batch) { return sum(flatten(max_pool2d(batch, p), 1), {1}); };
  const Tensor x = from_values(std::vector<double>{1, 2, 0, 0}, {1, 2, 2}, DType::f64);
  const Tensor x0 = from_values(std::vector<double>{5, 0, 0, 0}, {1, 2, 2}, DType::f64);
  auto attr = values(deeplift(f, x, x0));
  CHECK(attr[0] == doctest::Approx(-3));
  CHECK(attr[1] == doctest::Approx(0));
  CHECK(attr[2] == 0.0);
  CHECK(attr[3] == 0.0);
}

TEST_CASE("DeepLIFT's fused max-pool rule equals the composed rule bit for bit (float32 and float64)") {
  // ResNet's pooling (3x3, stride 2, padding 1: overlapping windows, so one input position can
  // collect from several windows), on doubled_batch_with_edges plus ties inside windows (the zero
  // channel, and a constant one), with either half winning the maximum.
  ops::Pool2dParams p;
  p.kernel = {3, 3};
  p.stride = {2, 2};
  p.padding = {1, 1};
  for (DType dtype : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dtype));
    Tensor x = doubled_batch_with_edges({6, 3, 9, 10}, dtype, 31);
    {
      NoGradGuard no_grad;
      ops::fill_(ops::slice(x, 1, 1, 2), 0.25);  // a constant channel: ties inside every window
    }
    const Tensor g = random_tensor({6, 3, 5, 5}, dtype, -1.0, 1.0, 32);
    auto pool = [&](const Tensor& t) { return max_pool2d(t, p); };
    const Tensor fused = fused_rule_matches_composed(pool, x, g);
    // Not trivially equal: the rescaled multipliers differ from the ordinary routed gradient.
    Tensor leaf = x.detach().set_requires_grad();
    CHECK(max_abs_diff(fused, grad({pool(leaf)}, {leaf}, {g})[0]) > 0.1);
  }
}

TEST_CASE("DeepLIFT softmax rule: rescale, then subtract the mean") {
  // softmax over 2 logits of one row; score = first probability.
  // x = (1, 0), x' = (0, 0): p(x) = (s, 1-s) with s = sigmoid(1); p(x') = (0.5, 0.5).
  // Only the first output is scored, so the incoming g = (1, 0) for both halves.
  // Rescaled: (1 * (s - 0.5) / 1, 0 (the second input did not move: ordinary-gradient fallback
  // of softmax gives -s(1-s) * ... for the second logit)). The rule then subtracts the mean over
  // the whole doubled tensor; the test checks the input-half result against that recipe.
  auto f = [](const Tensor& batch) { return select(softmax(batch, 1), 1, 0); };
  const Tensor x = vec({1, 0});
  const Tensor x0 = vec({0, 0});
  Tensor batch = doubled(x, x0).set_requires_grad();
  autograd::RuleScope scope(autograd::deeplift_rescale_rules());
  const auto g = values(grad({sum(f(batch))}, {batch})[0]);
  const double s = 1.0 / (1.0 + std::exp(-1.0));
  // Unnormalised multipliers (rows: input, reference): input row (s - 0.5, fallback), reference
  // row (s - 0.5, fallback); the fallback for the unmoved logit is the ordinary softmax gradient
  // of each half: input half -s (1 - s), reference half -0.25.
  const double a = s - 0.5, b_in = -s * (1 - s), b_ref = -0.25;
  const double mean = (a + b_in + a + b_ref) / 4;
  CHECK(g[0] == doctest::Approx(a - mean));
  CHECK(g[1] == doctest::Approx(b_in - mean));
}

TEST_CASE("a rule set applies only inside its scope, and scopes nest") {
  Tensor x = vec({-1, 2}).set_requires_grad();
  auto f = [&] { return sum(mul(relu(x), vec({-1, -1}))); };
  autograd::RuleScope outer(autograd::deconvolution_rules());
  CHECK(values(grad({f()}, {x})[0]) == std::vector<double>{0, 0});
  {
    autograd::RuleScope inner(autograd::RuleSet{});
    CHECK(values(grad({f()}, {x})[0]) == std::vector<double>{0, -1});
  }
  CHECK(values(grad({f()}, {x})[0]) == std::vector<double>{0, 0});
}

}  // namespace loupe::test
