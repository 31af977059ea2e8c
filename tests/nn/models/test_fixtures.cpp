// Whole models against PyTorch (fixtures written by tests/fixtures/make_fixtures.py):
//   - a small CNN with random weights: eval and training logits, the cross-entropy loss, every
//     parameter gradient and the BatchNorm buffers after one training step;
//   - ResNet18 (10 classes, four 64x64 images) filled with the fixture formula: training logits, loss and
//     gradients (small tensors whole, every tensor through a projection and its squared norm);
//   - eval logits of formula-filled full-size ResNet18 (224x224), DenseNet-121, InceptionV3,
//     InceptionResNetV2 and a 1-channel ResNet34.
// PyTorch computed the references in float64 (the small CNN in float32); loupe runs float32.
// Tolerance: 1e-4 relative to the largest reference value, which is about 5 to 30 times the
// difference between PyTorch's own float32 and float64 results.
#include <doctest/doctest.h>

#include <cmath>

#include "nn/layers/layers.hpp"
#include "nn/models/zoo.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/nn/models/fixture_support.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// Keep in step with small_cnn() in make_fixtures.py.
std::shared_ptr<nn::Sequential> make_small_cnn() {
  using M = std::shared_ptr<nn::Module>;
  return std::make_shared<nn::Sequential>(std::vector<M>{
      std::make_shared<nn::Conv2d>(3, 8, 3, nn::Conv2dOptions{.padding = {1, 1}}), std::make_shared<nn::BatchNorm2d>(8),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Conv2d>(8, 16, 3, nn::Conv2dOptions{.stride = {2, 2}, .padding = {1, 1}, .bias = false}),
      std::make_shared<nn::BatchNorm2d>(16), std::make_shared<nn::GELU>(), std::make_shared<nn::AvgPool2d>(2),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(64, 5)});
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : values(t)) m = std::max(m, std::abs(v));
  return m;
}

// |actual - expected| <= rel * max|expected| + 1e-6 everywhere.
void check_scaled(const Tensor& actual, const Tensor& expected, double rel, const std::string& what) {
  check_close(actual, expected, rel * max_abs(expected) + 1e-6, 0.0, what);
}

nn::StateDict with_prefix(const std::map<std::string, Tensor>& file, const std::string& prefix) {
  nn::StateDict out;
  for (const auto& [name, t] : file)
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = t;
  return out;
}

}  // namespace

TEST_CASE("Small CNN: logits, loss, gradients and BatchNorm buffers match PyTorch") {
  const auto f = load_safetensors(fixture_path("small_cnn.safetensors"));
  auto model = make_small_cnn();
  model->load_state_dict(with_prefix(f, "state."));
  const Tensor& x = f.at("input");

  model->eval();
  check_scaled((*model)(x), f.at("logits_eval"), 1e-5, "eval logits");

  model->train();
  Tensor logits = (*model)(x);
  check_scaled(logits, f.at("logits_train"), 1e-5, "training logits");
  Tensor loss = cross_entropy(logits, f.at("target"));
  CHECK(loss.item() == doctest::Approx(f.at("loss").item()).epsilon(1e-5));
  backward(loss);
  for (const auto& named : model->named_parameters()) {
    const std::string& name = named.first;  // not a structured binding: doctest's macros capture it
    const Tensor& p = named.second;
    REQUIRE_MESSAGE(p.grad().defined(), name);
    check_scaled(p.grad(), f.at("grad." + name), 1e-4, "gradient of " + name);
  }
  for (const auto& [name, b] : model->named_buffers()) check_scaled(b, f.at("after." + name), 1e-5, "buffer " + name);
}

TEST_CASE("ResNet18 (10 classes, 64x64) training step: logits, loss and gradients match PyTorch") {
  const auto f = load_safetensors(fixture_path("resnet18_train_grads.safetensors"));
  auto model = nn::resnet18({.num_classes = 10});
  fill_with_formula(*model);
  model->train();
  Tensor logits = (*model)(formula_input({4, 3, 64, 64}));
  check_scaled(logits, f.at("logits_train"), 1e-4, "training logits");
  Tensor loss = cross_entropy(logits, f.at("target"));
  CHECK(loss.item() == doctest::Approx(f.at("loss").item()).epsilon(1e-4));
  backward(loss);
  int whole = 0;
  for (const auto& named : model->named_parameters()) {
    const std::string& name = named.first;  // not a structured binding: doctest's macros capture it
    const Tensor& p = named.second;
    CAPTURE(name);
    const Tensor g = ops::to_dtype(p.grad(), DType::f64);
    if (f.count("grad." + name)) {
      check_scaled(g, f.at("grad." + name), 2e-4, "gradient of " + name);
      ++whole;
    }
    const Tensor probe = from_values(formula_values("probe." + name, g.numel(), 0.0, 1.0), g.shape(), DType::f64);
    const double dot = ops::sum(ops::mul(g, probe)).item(), sq = ops::sum(ops::mul(g, g)).item();
    const double ref_sq = f.at("sqsum." + name).item();
    CHECK(sq == doctest::Approx(ref_sq).epsilon(1e-3));
    CHECK(std::abs(dot - f.at("probe." + name).item()) <= 1e-3 * std::sqrt(ref_sq * double(g.numel())));
  }
  CHECK(whole > 40);
}

TEST_CASE("Formula-filled models give PyTorch's eval logits") {
  const auto f = load_safetensors(fixture_path("formula_logits.safetensors"));
  struct Case {
    const char* key;
    const char* model;
    int64_t classes, channels;
    Shape input;
  };
  const Case cases[] = {
      {"resnet34_1ch_32", "resnet34", 7, 1, {1, 1, 32, 32}},
      {"densenet121_32", "densenet121", 10, 3, {2, 3, 32, 32}},
      {"inception_v3_75", "inception_v3", 10, 3, {1, 3, 75, 75}},
      {"inception_resnet_v2_75", "inception_resnet_v2", 10, 3, {1, 3, 75, 75}},
      {"resnet18_224", "resnet18", 1000, 3, {1, 3, 224, 224}},  // full size, as torchvision's
  };
  for (const Case& c : cases) {
    CAPTURE(c.key);
    std::shared_ptr<nn::Module> model = c.model == std::string("inception_v3")
                                            ? nn::inception_v3({c.classes, c.channels}, {.aux_logits = false})
                                            : nn::make_model(c.model, c.classes, c.channels);
    fill_with_formula(*model);
    model->eval();
    NoGradGuard no_grad;
    check_scaled((*model)(formula_input(c.input)), f.at(c.key), 1e-4, c.key);
  }
}

}  // namespace loupe::test
