// Optimiser state dicts: a copy of an optimiser made through state_dict() / load_state_dict()
// takes exactly the steps the original takes; bad states are refused with a message.
#include <doctest/doctest.h>

#include "nn/optim/optimizer.hpp"
#include "nn/training.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

Tensor leaf(const std::vector<double>& v, const Shape& shape) {
  Tensor t = from_values(v, shape, DType::f64);
  t.set_requires_grad(true);
  return t;
}

// Two parameters with fixed, step-dependent gradients.
void set_grads(const std::vector<Tensor>& params, int step) {
  for (size_t i = 0; i < params.size(); ++i) {
    std::vector<double> g;
    for (int64_t j = 0; j < params[i].numel(); ++j) g.push_back(std::sin(1.0 + step + 3.0 * j + 7.0 * i));
    Tensor p = params[i];
    p.set_grad(from_values(g, params[i].shape(), DType::f64));
  }
}

std::vector<Tensor> make_params() {
  return {leaf({0.5, -1.0, 2.0, 0.25}, {2, 2}), leaf({1.5, -0.5}, {2})};
}

std::vector<Tensor> copy_params(const std::vector<Tensor>& params) {
  std::vector<Tensor> out;
  for (const Tensor& p : params) out.push_back(leaf(to_vector<double>(p), p.shape()));
  return out;
}

void check_round_trip(const nn::OptimizerConfig& config) {
  std::vector<Tensor> a = make_params();
  auto original = nn::make_optimizer(config, a);
  for (int s = 0; s < 3; ++s) {
    set_grads(a, s);
    original->set_learning_rate(config.lr * (1.0 + 0.1 * s));  // a schedule changed the rate
    original->step();
  }
  std::vector<Tensor> b = copy_params(a);
  auto copy = nn::make_optimizer(config, b);
  copy->load_state_dict(original->state_dict());
  CHECK(copy->learning_rate() == original->learning_rate());
  for (int s = 3; s < 6; ++s) {
    set_grads(a, s);
    set_grads(b, s);
    original->step();
    copy->step();
  }
  for (size_t i = 0; i < a.size(); ++i) CHECK(to_vector<double>(a[i]) == to_vector<double>(b[i]));
  // The state dict is a copy: stepping the original does not change an earlier dict.
  const auto before = original->state_dict();
  set_grads(a, 9);
  original->step();
  const auto after = original->state_dict();
  bool changed = false;
  for (const auto& [name, t] : before) changed = changed || to_vector<double>(ops::to_dtype(t, DType::f64)) !=
                                                               to_vector<double>(ops::to_dtype(after.at(name), DType::f64));
  CHECK(changed);
}

}  // namespace

TEST_CASE("optimizer state: a reloaded copy continues exactly like the original") {
  nn::OptimizerConfig config;
  config.lr = 0.05;
  config.weight_decay = 0.01;
  SUBCASE("sgd momentum") {
    config.name = "sgd";
    check_round_trip(config);
  }
  SUBCASE("sgd nesterov") {
    config.name = "sgd";
    config.nesterov = true;
    check_round_trip(config);
  }
  SUBCASE("adam") {
    config.name = "adam";
    check_round_trip(config);
  }
  SUBCASE("adamw") {
    config.name = "adamw";
    check_round_trip(config);
  }
}

TEST_CASE("optimizer state: names and contents") {
  std::vector<Tensor> p = make_params();
  nn::Adam adam(p, nn::AdamOptions{});
  set_grads(p, 0);
  adam.step();
  const auto state = adam.state_dict();
  CHECK(state.size() == 6);
  CHECK(state.at("step").item() == 1);
  CHECK(state.at("step").dtype() == DType::i64);
  CHECK(state.at("lr").item() == doctest::Approx(1e-3));
  CHECK(state.at("exp_avg.0").shape() == Shape{2, 2});
  CHECK(state.at("exp_avg_sq.1").shape() == Shape{2});

  nn::SgdOptions o;
  o.momentum = 0.9;
  nn::SGD sgd(p, o);
  CHECK(sgd.state_dict().size() == 1);  // no momentum buffers before the first step
  sgd.step();
  CHECK(sgd.state_dict().count("momentum.1") == 1);
}

TEST_CASE("optimizer state: wrong states are errors") {
  std::vector<Tensor> p = make_params();
  nn::Adam adam(p, nn::AdamOptions{});
  auto state = adam.state_dict();
  nn::Adam other(p, nn::AdamOptions{});

  auto missing = state;
  missing.erase("exp_avg.1");
  CHECK_THROWS_AS(other.load_state_dict(missing), Error);

  auto wrong_shape = state;
  wrong_shape["exp_avg.0"] = zeros({3}, DType::f64);
  CHECK_THROWS_WITH_AS(other.load_state_dict(wrong_shape), doctest::Contains("exp_avg.0"), Error);

  auto wrong_dtype = state;
  wrong_dtype["exp_avg_sq.1"] = zeros({2}, DType::f32);
  CHECK_THROWS_AS(other.load_state_dict(wrong_dtype), Error);

  nn::SGD sgd(p, nn::SgdOptions{});
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(state), doctest::Contains("unexpected entry"), Error);
  auto sgd_state = sgd.state_dict();
  sgd_state["momentum.7"] = zeros({2}, DType::f64);
  CHECK_THROWS_AS(sgd.load_state_dict(sgd_state), Error);
  CHECK_THROWS_AS(other.load_state_dict(sgd.state_dict()), Error);
  CHECK_THROWS_AS(nn::make_optimizer(nn::OptimizerConfig{"rmsprop"}, p), Error);
}

}  // namespace loupe::test
