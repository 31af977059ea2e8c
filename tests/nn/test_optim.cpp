// Optimisers against updates worked out by hand (PyTorch's formulas), and the first layers.
#include <doctest/doctest.h>

#include "nn/layers/basic.hpp"
#include "nn/optim/optimizer.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {
Tensor leaf(std::vector<double> v) {
  Tensor t = from_values(v, {static_cast<int64_t>(v.size())}, DType::f64);
  t.set_requires_grad(true);
  return t;
}
}  // namespace

TEST_CASE("SGD with momentum, weight decay and nesterov follows PyTorch's update") {
  Tensor w = leaf({1.0});
  nn::SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 0.5;
  o.nesterov = true;
  nn::SGD sgd({w}, o);
  // step 1: g = 2 (set by hand), d = 2 + 0.5*1 = 2.5, buf = 2.5, nesterov d = 2.5 + 0.9*2.5 = 4.75
  w.set_grad(from_values(std::vector<double>{2.0}, {1}, DType::f64));
  sgd.step();
  CHECK(w.item() == doctest::Approx(1.0 - 0.475));
  // step 2: d = 2 + 0.5*0.525 = 2.2625, buf = 0.9*2.5 + 2.2625 = 4.5125, d = 2.2625 + 0.9*4.5125
  sgd.step();
  CHECK(w.item() == doctest::Approx(0.525 - 0.1 * (2.2625 + 0.9 * 4.5125)));
}

TEST_CASE("Adam's first steps match the closed form") {
  Tensor w = leaf({0.5, -1.0});
  nn::AdamOptions o;
  o.lr = 0.01;
  nn::Adam adam({w}, o);
  // Constant gradient g: m_t/(1-b1^t) = g and v_t/(1-b2^t) = g^2, so each step moves lr * sign(g)
  // (up to eps).
  w.set_grad(from_values(std::vector<double>{3.0, -0.2}, {2}, DType::f64));
  adam.step();
  adam.step();
  const auto v = values(w);
  CHECK(v[0] == doctest::Approx(0.5 - 0.02).epsilon(1e-6));
  CHECK(v[1] == doctest::Approx(-1.0 + 0.02).epsilon(1e-6));
}

TEST_CASE("AdamW decays weights multiplicatively before the Adam step") {
  Tensor w = leaf({2.0});
  nn::Adam adamw({w}, nn::adamw_options(0.1, 0.5));
  w.set_grad(from_values(std::vector<double>{1.0}, {1}, DType::f64));
  adamw.step();
  CHECK(w.item() == doctest::Approx(2.0 * (1 - 0.1 * 0.5) - 0.1).epsilon(1e-6));
}

TEST_CASE("optimisers reject non-leaf or non-contiguous parameters") {
  Tensor w = leaf({1.0, 2.0});
  CHECK_THROWS_AS(nn::SGD({w * 2.0}, {}), Error);
  CHECK_THROWS_AS(nn::Adam({zeros({2})}, {}), Error);
}

TEST_CASE("Linear: PyTorch's parameter names, shapes, init bound and forward") {
  Generator gen(3);
  nn::Linear layer(4, 3, true, &gen);
  const auto named = layer.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  CHECK(named[0].second.shape() == Shape{3, 4});
  CHECK(named[1].first == "bias");
  for (double v : values(layer.weight)) CHECK(std::abs(v) <= 0.5);  // 1/sqrt(4)
  Tensor x = random_tensor({2, 4});
  Tensor y = layer(x);
  Tensor expected = ops::add(ops::matmul(x, ops::transpose(layer.weight, 0, 1)), layer.bias);
  check_close(y, expected, 1e-6, 1e-6, "linear forward");
  nn::Sequential seq({std::make_shared<nn::Linear>(4, 5, true, &gen), std::make_shared<nn::ReLU>(),
                      std::make_shared<nn::Linear>(5, 2, true, &gen)});
  const auto names = seq.named_parameters();
  CHECK(names[0].first == "0.weight");
  CHECK(names[3].first == "2.bias");
  CHECK(seq.parameter_count() == 4 * 5 + 5 + 5 * 2 + 2);
}

}  // namespace loupe::test

#include "nn/optim/schedule.hpp"

namespace loupe::test {

TEST_CASE("schedules follow PyTorch's formulas") {
  nn::Schedule step;
  step.kind = nn::ScheduleKind::step;
  step.base_lr = 0.1;
  step.step_size = 3;
  step.gamma = 0.5;
  CHECK(step.lr_at(0) == doctest::Approx(0.1));
  CHECK(step.lr_at(2) == doctest::Approx(0.1));
  CHECK(step.lr_at(3) == doctest::Approx(0.05));
  CHECK(step.lr_at(7) == doctest::Approx(0.025));
  nn::Schedule cosine;
  cosine.kind = nn::ScheduleKind::cosine;
  cosine.base_lr = 1.0;
  cosine.total = 10;
  cosine.eta_min = 0.1;
  cosine.warmup = 4;
  cosine.warmup_start = 0.25;
  CHECK(cosine.lr_at(0) == doctest::Approx(0.25));
  CHECK(cosine.lr_at(2) == doctest::Approx(0.25 + 0.75 * 0.5));
  CHECK(cosine.lr_at(4) == doctest::Approx(1.0));
  CHECK(cosine.lr_at(4 + 5) == doctest::Approx(0.1 + 0.9 * 0.5));
  CHECK(cosine.lr_at(4 + 10) == doctest::Approx(0.1));
  CHECK(cosine.lr_at(4 + 50) == doctest::Approx(0.1));
  CHECK_THROWS_AS(nn::Schedule::parse_kind("linear"), Error);
}

TEST_CASE("clip_grad_norm scales to max_norm and returns the norm before clipping") {
  Tensor a = zeros({2}, DType::f64).set_requires_grad();
  Tensor b = zeros({1}, DType::f64).set_requires_grad();
  a.set_grad(from_values(std::vector<double>{3, 0}, {2}, DType::f64));
  b.set_grad(from_values(std::vector<double>{4}, {1}, DType::f64));
  const double norm = nn::clip_grad_norm({a, b}, 1.0);
  CHECK(norm == doctest::Approx(5.0));
  CHECK(values(a.grad())[0] == doctest::Approx(3.0 / (5.0 + 1e-6)));
  CHECK(values(b.grad())[0] == doctest::Approx(4.0 / (5.0 + 1e-6)));
  // Below the limit nothing changes; the infinity norm is the largest magnitude.
  CHECK(nn::clip_grad_norm({a, b}, 10.0, INFINITY) == doctest::Approx(4.0 / (5.0 + 1e-6)));
  CHECK(values(b.grad())[0] == doctest::Approx(4.0 / (5.0 + 1e-6)));
  nn::clip_grad_value({a}, 0.1);
  CHECK(values(a.grad())[0] == doctest::Approx(0.1));
}

}  // namespace loupe::test
