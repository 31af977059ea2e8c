// The cascading randomisation check (explain/evaluate/sanity.hpp): Spearman's rank correlation
// against hand-computed values, the block order of a Sequential and of ResNet18, a method that
// ignores the weights (the input itself: correlation stays exactly 1 at every step), gradients
// decorrelating, and the trained weights restored afterwards.
#include <doctest/doctest.h>

#include "explain/evaluate/sanity.hpp"
#include "nn/checkpoint.hpp"
#include "nn/layers/basic.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;
namespace ev = explain::evaluate;

TEST_CASE("spearman: ranks with ties averaged (faith)") {
  CHECK(ev::spearman({1, 2, 3, 4}, {10, 20, 30, 40}) == doctest::Approx(1.0));
  CHECK(ev::spearman({1, 2, 3, 4}, {4, 3, 2, 1}) == doctest::Approx(-1.0));
  // x ranks 1..5; y = (1, 3, 2, 5, 4): d = (0, -1, 1, -1, 1), rho = 1 - 6 * 4 / (5 * 24) = 0.8.
  CHECK(ev::spearman({1, 2, 3, 4, 5}, {1, 3, 2, 5, 4}) == doctest::Approx(0.8));
  // Ties: y = (1, 1, 2) has ranks (1.5, 1.5, 3); Pearson with (1, 2, 3) = 0.8660254 (sqrt(3)/2).
  CHECK(ev::spearman({1, 2, 3}, {5, 5, 7}) == doctest::Approx(std::sqrt(3.0) / 2.0));
  CHECK(std::isnan(ev::spearman({1, 2, 3}, {2, 2, 2})));
  CHECK_THROWS_AS(ev::spearman({1, 2}, {1}), Error);
}

TEST_CASE("cascading randomisation: the input itself stays, gradients decorrelate (faith)") {
  Generator g(7);
  nn::Sequential model({std::make_shared<nn::Linear>(16, 32, true, &g), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(32, 32, true, &g), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(32, 4, true, &g)});
  CHECK(ev::parameter_blocks(model) == std::vector<std::string>{"4", "2", "0"});
  const Tensor x = normal({3, 16}, 0.0, 1.0, DType::f32, &g);
  const Query q{as_forward(model), {x}, Target::per_row({0, 1, 3})};
  const std::vector<Tensor> before = [&] {
    std::vector<Tensor> out;
    for (const Tensor& p : model.parameters()) out.push_back(ops::clone(p.detach()));
    return out;
  }();

  // An "attribution" that is the input: nothing the weights do can change it.
  const Method input_itself = [](const Query& query) {
    return Attribution{{query.inputs[0]}, Tensor(), {0, 1, 2}, {0, 1, 3}};
  };
  const std::vector<ev::RandomisationStep> same = ev::cascading_randomisation(model, q, input_itself, {.seed = 1});
  REQUIRE(same.size() == 3);
  CHECK(same[0].block == "4");
  CHECK(same[2].block == "0");
  for (const ev::RandomisationStep& step : same) {
    for (double rho : step.spearman) CHECK(rho == doctest::Approx(1.0));
    for (double rho : step.spearman_abs) CHECK(rho == doctest::Approx(1.0));
  }

  // The gradient: once every layer is random, it has nothing to do with the trained one.
  const Method gradient = [](const Query& query) { return saliency(query, {.absolute = false}); };
  const std::vector<ev::RandomisationStep> steps = ev::cascading_randomisation(model, q, gradient, {.seed = 1});
  REQUIRE(steps.size() == 3);
  double last = 0;
  for (double rho : steps.back().spearman) last += std::abs(rho) / 3.0;
  CHECK(last < 0.5);
  // The weights are back.
  const std::vector<Tensor> after = model.parameters();
  for (size_t i = 0; i < after.size(); ++i) CHECK(check_close(after[i], before[i], 0, 0, "parameter"));
  // Coarser or unknown blocks.
  CHECK_THROWS_WITH_AS(ev::cascading_randomisation(model, q, gradient, {.blocks = {"fc"}}), doctest::Contains("fc"), Error);
}

TEST_CASE("parameter blocks of ResNet18, top first (faith)") {
  nn::ModelInfo info;
  info.model = "resnet18";
  info.num_classes = 3;
  info.width = 4;
  const std::shared_ptr<nn::Module> model = nn::build_model(info);
  const std::vector<std::string> blocks = ev::parameter_blocks(*model);
  const std::vector<std::string> expected = {"fc",       "layer4.1", "layer4.0", "layer3.1", "layer3.0", "layer2.1",
                                             "layer2.0", "layer1.1", "layer1.0", "bn1",      "conv1"};
  CHECK(blocks == expected);
}

}  // namespace loupe::test
