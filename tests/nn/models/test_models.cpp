// The model zoo: parameter counts equal to torchvision's / timm's (REFERENCE.md section 6),
// state-dict keys, dtypes and shapes equal to the lists exported from PyTorch
// (tests/fixtures/keys_*.txt), the factory, class counts and 1-channel input, forward shapes on
// small inputs, and InceptionV3's auxiliary head. Values are checked in test_fixtures.cpp.
#include <doctest/doctest.h>

#include "nn/models/zoo.hpp"
#include "tests/nn/models/fixture_support.hpp"
#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("Model zoo: parameter counts and state-dict keys, dtypes and shapes equal PyTorch's, in order") {
  struct Case {
    const char* model;
    int64_t parameters;  // REFERENCE.md section 6; InceptionResNetV2: timm 1.0's count
  };
  const Case cases[] = {{"resnet18", 11689512},     {"resnet34", 21797672},     {"densenet121", 7978856},
                        {"densenet161", 28681000},  {"inception_v3", 27161264}, {"inception_resnet_v2", 55843464}};
  for (const Case& c : cases) {
    CAPTURE(c.model);
    const auto model = nn::make_model(c.model);
    CHECK(model->parameter_count() == c.parameters);
    const auto expected = load_keys(std::string("keys_") + c.model + ".txt");
    const auto state = model->named_state();
    CHECK(state.size() == expected.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < std::min(state.size(), expected.size()); ++i) {
      const bool same = state[i].first == expected[i].name && state[i].second.shape() == expected[i].shape &&
                        dtype_tag(state[i].second.dtype()) == expected[i].dtype;
      if (!same && mismatches++ < 5)
        FAIL_CHECK("entry ", i, ": loupe ", state[i].first, " ", shape_str(state[i].second.shape()), " vs PyTorch ",
                   expected[i].name, " ", shape_str(expected[i].shape));
    }
    CHECK(mismatches == 0);
  }
  CHECK(nn::inception_v3({}, {.aux_logits = false})->parameter_count() == 23834568);
}

TEST_CASE("make_model: names, class counts, 1-channel input and errors") {
  CHECK(nn::model_names().size() == 6);
  auto m = nn::make_model("resnet34", 3, 1);
  const auto sd = m->state_dict();
  CHECK(sd.at("conv1.weight").shape() == Shape{64, 1, 7, 7});
  CHECK(sd.at("fc.weight").shape() == Shape{3, 512});
  CHECK(nn::make_model("densenet121", 2, 1)->state_dict().at("features.conv0.weight").shape() == Shape{64, 1, 7, 7});
  const auto v3 = nn::make_model("inception_v3", 4, 1)->state_dict();
  CHECK(v3.at("Conv2d_1a_3x3.conv.weight").shape() == Shape{32, 1, 3, 3});
  CHECK(v3.at("AuxLogits.fc.weight").shape() == Shape{4, 768});
  CHECK(nn::make_model("inception_resnet_v2", 5, 1)->state_dict().at("classif.bias").shape() == Shape{5});
  CHECK_THROWS_WITH_AS(nn::make_model("vgg16"), doctest::Contains("unknown model 'vgg16'"), Error);
  CHECK_THROWS_AS(nn::make_model("resnet18", 0), Error);
  CHECK_THROWS_AS(nn::make_model("resnet18", 10, 0), Error);
}

TEST_CASE("Initialisation follows torchvision's rules") {
  Generator gen(1);
  auto r = nn::resnet18({.generator = &gen});
  const auto sd = r->state_dict();
  // kaiming_normal, fan_out, relu: std sqrt(2 / (64 * 49)) for conv1.
  const auto w = values(sd.at("conv1.weight"));
  double s2 = 0;
  for (double v : w) s2 += v * v;
  CHECK(std::sqrt(s2 / double(w.size())) == doctest::Approx(std::sqrt(2.0 / (64 * 49))).epsilon(0.05));
  CHECK(values(sd.at("layer1.0.bn1.weight")) == std::vector<double>(64, 1.0));
  CHECK(values(sd.at("layer1.0.bn1.bias")) == std::vector<double>(64, 0.0));
  // DenseNet's classifier bias starts at 0.
  const auto d = nn::densenet121({.num_classes = 10, .generator = &gen})->state_dict();
  CHECK(values(d.at("classifier.bias")) == std::vector<double>(10, 0.0));
  // Same generator seed, same weights.
  Generator g1(9), g2(9);
  CHECK(values(nn::resnet18({.num_classes = 2, .generator = &g1})->state_dict().at("fc.weight")) ==
        values(nn::resnet18({.num_classes = 2, .generator = &g2})->state_dict().at("fc.weight")));
}

TEST_CASE("Forward shapes on small inputs, training and eval") {
  auto r = nn::resnet18({.num_classes = 10, .in_channels = 1});
  Tensor x = random_tensor({2, 1, 32, 32});
  CHECK(r->forward(x).shape() == Shape{2, 10});
  r->eval();
  CHECK((*r)(x).shape() == Shape{2, 10});

  auto d = nn::densenet161({.num_classes = 3});
  d->eval();
  CHECK((*d)(random_tensor({1, 3, 32, 32})).shape() == Shape{1, 3});
}

TEST_CASE("InceptionV3: the auxiliary head runs in training only; its output shape") {
  auto v3 = nn::inception_v3({.num_classes = 6});
  v3->eval();
  auto [logits, aux] = v3->forward_with_aux(random_tensor({1, 3, 75, 75}));
  CHECK(logits.shape() == Shape{1, 6});
  CHECK_FALSE(aux.defined());
  // The head alone on Mixed_6e-shaped maps (a 299x299 image gives 17x17; smaller images make
  // the head's 5x5 convolution fail, as in torchvision).
  REQUIRE(v3->aux_head() != nullptr);
  v3->train();
  Tensor a = (*v3->aux_head())(random_tensor({2, 768, 17, 17}));
  CHECK(a.shape() == Shape{2, 6});
  CHECK(nn::InceptionV3::aux_loss_weight == 0.4);
  CHECK(nn::inception_v3({}, {.aux_logits = false})->aux_head() == nullptr);
}

TEST_CASE("DenseNet's fused inference steps give the bits of the unfused modules") {
  // In eval mode without a graph, DenseBlock hands each layer the list of feature maps
  // (batch_norm_relu_of_concat) and BatchNorm2d + ReLU pairs run as one pass. A forward hook on
  // every module turns all of that off (hooks must see each module's own input and output): the
  // logits must be the same bits either way, and the same with a graph recorded.
  Generator gen(5);
  auto model = nn::densenet121({.num_classes = 10, .generator = &gen});
  model->eval();
  const Tensor x = random_tensor({2, 3, 32, 32}, DType::f32, -1, 1, 7);
  Tensor fused;
  {
    NoGradGuard no_grad;
    fused = (*model)(x);
  }
  Tensor x_grad = x.detach();
  x_grad.set_requires_grad(true);
  const Tensor recorded = (*model)(x_grad);
  CHECK(recorded.requires_grad());
  check_close(recorded.detach(), fused, 0.0, 0.0, "with a graph recorded");
  std::vector<nn::ForwardHookHandle> hooks;
  int64_t calls = 0;
  for (auto& [name, module] : model->named_modules()) {
    hooks.push_back(module->add_forward_hook([&calls](const Tensor&) { ++calls; }));
  }
  NoGradGuard no_grad;
  const Tensor unfused = (*model)(x);
  CHECK(calls > 300);  // every BatchNorm2d and ReLU of the 58 dense layers reported
  check_close(unfused, fused, 0.0, 0.0, "every module hooked");
}

}  // namespace loupe::test
