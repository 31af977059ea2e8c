// Layers and initialisers: shapes, PyTorch's parameter names and defaults, train/eval behaviour,
// running statistics, and the initialisers' distributions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "nn/init.hpp"
#include "nn/layers/layers.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
double std_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size()));
}
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEST_CASE("Conv2d: PyTorch's names, shapes, default init bound, options and forward") {
  Generator gen(1);
  nn::Conv2d conv(4, 6, {3, 5}, {.stride = {2, 1}, .padding = {1, 2}, .groups = 2}, &gen);
  const auto named = conv.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  CHECK(conv.weight.shape() == Shape{6, 2, 3, 5});
  CHECK(conv.bias.shape() == Shape{6});
  const double bound = 1.0 / std::sqrt(2.0 * 15.0);  // fan_in = in / groups * kh * kw
  CHECK(max_abs(values(conv.weight)) <= bound);
  CHECK(max_abs(values(conv.weight)) > 0.8 * bound);
  CHECK(max_abs(values(conv.bias)) <= bound);
  Tensor x = random_tensor({2, 4, 7, 8});
  Tensor y = conv(x);
  CHECK(y.shape() == Shape{2, 6, 4, 8});
  Conv2dParams p;
  p.stride = {2, 1};
  p.padding = {1, 2};
  p.groups = 2;
  check_close(y, ops::conv2d(x, conv.weight, conv.bias, p), 0.0, 0.0, "Conv2d forward");

  nn::Conv2d no_bias(3, 8, 1, {.bias = false});
  CHECK(no_bias.named_parameters().size() == 1);
  CHECK_FALSE(no_bias.bias.defined());
  CHECK_THROWS_WITH_AS(no_bias(random_tensor({1, 4, 5, 5})), doctest::Contains("Conv2d"), Error);
  CHECK_THROWS_AS(nn::Conv2d(3, 8, 3, {.groups = 2}), Error);
  CHECK_THROWS_AS(nn::Conv2d(0, 8, 3), Error);
}

TEST_CASE("BatchNorm2d: batch statistics in training, running statistics in eval, buffer updates") {
  nn::BatchNorm2d bn(3);
  Tensor x = random_tensor({4, 3, 2, 2}, DType::f32, -2.0, 3.0);
  bn.train();
  Tensor y = bn(x);
  // Training output: zero mean, unit (biased) variance per channel.
  for (int64_t c = 0; c < 3; ++c) {
    const auto v = values(ops::select(y, 1, c));
    CHECK(std::abs(mean_of(v)) < 1e-5);
    CHECK(std::abs(std_of(v) - 1.0) < 1e-3);
  }
  CHECK(bn.num_batches_tracked.item() == 1.0);
  // running = 0.9 * initial + 0.1 * batch statistic (unbiased variance).
  for (int64_t c = 0; c < 3; ++c) {
    const auto v = values(ops::select(x, 1, c));
    const double m = mean_of(v), var_unbiased = std_of(v) * std_of(v) * 16.0 / 15.0;
    CHECK(values(bn.running_mean)[c] == doctest::Approx(0.1 * m).epsilon(1e-5));
    CHECK(values(bn.running_var)[c] == doctest::Approx(0.9 + 0.1 * var_unbiased).epsilon(1e-5));
  }
  bn.eval();
  Tensor ye = bn(x);
  CHECK(bn.num_batches_tracked.item() == 1.0);  // eval leaves the buffers alone
  check_close(ye, ops::batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, false), 0.0, 0.0, "eval");

  // momentum < 0 (PyTorch's None): the running statistics are the plain average of the batches.
  nn::BatchNorm2d avg(3, {.momentum = -1.0});
  Tensor x2 = random_tensor({4, 3, 2, 2}, DType::f32, 0.0, 1.0, 99);
  avg(x);
  avg(x2);
  const auto m1 = values(ops::mean(x, {0, 2, 3})), m2 = values(ops::mean(x2, {0, 2, 3}));
  for (int c = 0; c < 3; ++c) CHECK(values(avg.running_mean)[c] == doctest::Approx((m1[c] + m2[c]) / 2).epsilon(1e-5));
  CHECK(avg.num_batches_tracked.item() == 2.0);

  // No running statistics: no buffers, batch statistics even in eval.
  nn::BatchNorm2d plain(3, {.affine = false, .track_running_stats = false});
  CHECK(plain.state_dict().empty());
  plain.eval();
  check_close(plain(x), ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true), 1e-6, 1e-6, "untracked");

  CHECK_THROWS_WITH_AS(bn(random_tensor({4, 3, 2})), doctest::Contains("expected 4D input"), Error);
  CHECK_THROWS_WITH_AS(bn(random_tensor({4, 2, 2, 2})), doctest::Contains("expected 3"), Error);
}

TEST_CASE("Pooling layers follow torch.nn's defaults") {
  Tensor x = random_tensor({1, 2, 7, 7});
  CHECK(nn::MaxPool2d(3, 2, 1)(x).shape() == Shape{1, 2, 4, 4});
  CHECK(nn::MaxPool2d(2)(x).shape() == Shape{1, 2, 3, 3});  // stride defaults to the kernel
  CHECK(nn::MaxPool2d(2, 0, 0, /*ceil_mode=*/true)(x).shape() == Shape{1, 2, 4, 4});
  CHECK(nn::AvgPool2d(2, 2)(x).shape() == Shape{1, 2, 3, 3});
  CHECK(nn::AdaptiveAvgPool2d(1)(x).shape() == Shape{1, 2, 1, 1});
  CHECK(nn::AdaptiveAvgPool2d({2, 3})(x).shape() == Shape{1, 2, 2, 3});
  // count_include_pad = false: a corner window averages only its 4 real elements.
  Tensor ones4 = ones({1, 1, 3, 3});
  CHECK(values(nn::AvgPool2d(3, 1, 1, false, true)(ones4))[0] == doctest::Approx(4.0 / 9.0));
  CHECK(values(nn::AvgPool2d(3, 1, 1, false, false)(ones4))[0] == doctest::Approx(1.0));
}

TEST_CASE("Dropout uses the module's mode and generator") {
  Tensor x = ones({1000});
  Generator g1(5), g2(5);
  nn::Dropout d1(0.25, &g1), d2(0.25, &g2);
  const auto a = values(d1(x)), b = values(d2(x));
  CHECK(a == b);  // same seed, same mask
  const auto zeros_count = std::count(a.begin(), a.end(), 0.0);
  CHECK(zeros_count > 180);
  CHECK(zeros_count < 320);
  for (double v : a) CHECK((v == 0.0 || std::abs(v - 4.0 / 3.0) < 1e-6));
  d1.eval();
  CHECK(values(d1(x)) == values(x));
  CHECK_THROWS_AS(nn::Dropout(1.5), Error);
}

TEST_CASE("LayerNorm and Embedding: names, defaults and forward") {
  nn::LayerNorm ln({4});
  CHECK(ln.named_parameters().size() == 2);
  Tensor x = random_tensor({3, 4});
  check_close(ln(x), ops::layer_norm(x, {4}, ones({4}), zeros({4})), 1e-6, 1e-6, "LayerNorm");
  CHECK(nn::LayerNorm({4}, 1e-5, false).named_parameters().empty());

  Generator gen(2);
  nn::Embedding emb(10, 3, /*padding_idx=*/-1, &gen);  // -1 = the last row, as in PyTorch
  CHECK(emb.padding_idx() == 9);
  CHECK(values(ops::select(emb.weight, 0, 9)) == std::vector<double>(3, 0.0));
  Tensor idx = from_values(std::vector<int64_t>{1, 9, 1, 0}, {2, 2});
  Tensor e = emb(idx);
  CHECK(e.shape() == Shape{2, 2, 3});
  backward(sum(e));
  const auto g = values(emb.weight.grad());
  CHECK(g[1 * 3] == 2.0);  // row 1 used twice
  CHECK(g[9 * 3] == 0.0);  // padding row gets no gradient
  CHECK(nn::Embedding(5, 2).padding_idx() == -1);
  CHECK_THROWS_AS(nn::Embedding(5, 2, 5), Error);
  CHECK_THROWS_AS(emb(from_values(std::vector<int64_t>{10}, {1})), Error);
}

TEST_CASE("Activation modules match their functions; Identity, Branches and Sequential") {
  Tensor x = random_tensor({2, 5}, DType::f32, -3.0, 3.0);
  check_close(nn::ReLU()(x), ops::relu(x), 0, 0, "ReLU");
  check_close(nn::GELU()(x), ops::gelu(x), 0, 0, "GELU");
  check_close(nn::GELU(true)(x), ops::gelu(x, true), 0, 0, "GELU tanh");
  check_close(nn::SiLU()(x), ops::silu(x), 0, 0, "SiLU");
  check_close(nn::Sigmoid()(x), ops::sigmoid(x), 0, 0, "Sigmoid");
  check_close(nn::Tanh()(x), ops::tanh(x), 0, 0, "Tanh");
  check_close(nn::LeakyReLU(0.2)(x), ops::leaky_relu(x, 0.2), 0, 0, "LeakyReLU");
  check_close(nn::ELU(0.5)(x), ops::elu(x, 0.5), 0, 0, "ELU");
  check_close(nn::Softplus(2.0, 10.0)(x), ops::softplus(x, 2.0, 10.0), 0, 0, "Softplus");
  CHECK(nn::Identity()(x).is_same(x));

  Generator gen(3);
  auto c1 = std::make_shared<nn::Conv2d>(2, 3, 1, nn::Conv2dOptions{}, &gen);
  auto c2 = std::make_shared<nn::Conv2d>(2, 5, 3, nn::Conv2dOptions{.padding = {1, 1}}, &gen);
  nn::Branches branches({{"branch0", c1}, {"branch1", c2}});
  Tensor img = random_tensor({1, 2, 4, 4});
  check_close(branches(img), ops::cat({(*c1)(img), (*c2)(img)}, 1), 0, 0, "Branches");
  CHECK(branches.state_dict().count("branch1.weight") == 1);

  nn::Sequential named;
  named.push_back("conv0", c1);
  named.push_back("relu0", std::make_shared<nn::ReLU>());
  CHECK(named.state_dict().count("conv0.bias") == 1);
  CHECK(named.size() == 2);
}

TEST_CASE("Initialisers: fans, gains and distributions as torch.nn.init") {
  Tensor w = Tensor::empty({64, 32, 3, 3});
  const auto fans = nn::init::calculate_fans(w);
  CHECK(fans.fan_in == 32 * 9);
  CHECK(fans.fan_out == 64 * 9);
  CHECK_THROWS_AS(nn::init::calculate_fans(Tensor::empty({5})), Error);
  CHECK(nn::init::calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)));
  CHECK(nn::init::calculate_gain("leaky_relu", 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)));
  CHECK(nn::init::calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
  CHECK_THROWS_AS(nn::init::calculate_gain("swish"), Error);

  Generator gen(7);
  nn::init::kaiming_normal_(w, 0.0, nn::init::FanMode::fan_out, "relu", &gen);
  CHECK(std_of(values(w)) == doctest::Approx(std::sqrt(2.0 / (64 * 9))).epsilon(0.03));
  nn::init::kaiming_uniform_(w, 0.0, nn::init::FanMode::fan_in, "relu", &gen);
  const double kb = std::sqrt(6.0 / (32 * 9));
  CHECK(max_abs(values(w)) <= kb);
  CHECK(max_abs(values(w)) > 0.99 * kb);
  nn::init::xavier_uniform_(w, 1.0, &gen);
  const double xb = std::sqrt(6.0 / (32 * 9 + 64 * 9));
  CHECK(max_abs(values(w)) <= xb);
  CHECK(max_abs(values(w)) > 0.99 * xb);
  nn::init::xavier_normal_(w, 2.0, &gen);
  CHECK(std_of(values(w)) == doctest::Approx(2.0 * std::sqrt(2.0 / (32 * 9 + 64 * 9))).epsilon(0.03));

  // Truncated normal: std 0.1 inside +-2 (InceptionV3) is almost a plain normal; tight bounds cut it.
  nn::init::trunc_normal_(w, 0.0, 0.1, -2.0, 2.0, &gen);
  CHECK(std_of(values(w)) == doctest::Approx(0.1).epsilon(0.03));
  CHECK(std::abs(mean_of(values(w))) < 0.005);
  nn::init::trunc_normal_(w, 1.0, 1.0, 0.5, 1.5, &gen);
  const auto t = values(w);
  CHECK(*std::min_element(t.begin(), t.end()) >= 0.5);
  CHECK(*std::max_element(t.begin(), t.end()) <= 1.5);
  // A normal truncated at +-0.5 std has std 0.2838 (of the untruncated one).
  CHECK(std_of(t) == doctest::Approx(0.2838).epsilon(0.03));

  nn::init::constant_(w, 0.5);
  CHECK(values(w) == std::vector<double>(w.numel(), 0.5));
  nn::init::zeros_(w);
  CHECK(max_abs(values(w)) == 0.0);
  CHECK_THROWS_AS(nn::init::normal_(Tensor::empty({3}, DType::i64)), Error);
}

}  // namespace loupe::test
