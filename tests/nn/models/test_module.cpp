// Module bookkeeping: state dicts with buffers, load_state_dict's checks and errors, safetensors
// round trips, the printed summary, named_modules, to(device), zero_grad.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>

#include "nn/layers/layers.hpp"
#include "nn/models/resnet.hpp"
#include "nn/serialization.hpp"
#include "tensor/cuda/backend.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

std::shared_ptr<nn::Sequential> conv_bn_net(uint64_t seed) {
  Generator gen(seed);
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(2, 4, 3, nn::Conv2dOptions{}, &gen), std::make_shared<nn::BatchNorm2d>(4),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(16, 3, true, &gen)});
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("loupe_nn_" + name)).string();
}

}  // namespace

TEST_CASE("state_dict holds parameters and BatchNorm buffers in PyTorch's order") {
  auto net = conv_bn_net(1);
  std::vector<std::string> names;
  for (const auto& [name, t] : net->named_state()) names.push_back(name);
  const std::vector<std::string> expected{"0.weight",           "0.bias",           "1.weight", "1.bias",
                                          "1.running_mean",     "1.running_var",    "1.num_batches_tracked",
                                          "4.weight",           "4.bias"};
  CHECK(names == expected);
  const nn::StateDict sd = net->state_dict();
  CHECK(sd.size() == expected.size());
  CHECK(sd.at("1.num_batches_tracked").dtype() == DType::i64);
  CHECK(sd.at("1.num_batches_tracked").dim() == 0);
  CHECK(values(sd.at("1.running_var")) == std::vector<double>(4, 1.0));
  // Parameters only in named_parameters / parameter_count; buffers are not parameters.
  CHECK(net->named_parameters().size() == 6);
  CHECK(net->named_buffers().size() == 3);
  CHECK(net->parameter_count() == 4 * 2 * 9 + 4 + 4 + 4 + 16 * 3 + 3);
  // state_dict tensors share storage with the model but carry no gradient flag.
  CHECK_FALSE(sd.at("0.weight").requires_grad());
  CHECK(sd.at("0.weight").storage() == net->named_parameters()[0].second.storage());
}

TEST_CASE("load_state_dict copies values and checks keys and shapes before copying anything") {
  auto a = conv_bn_net(1);
  auto b = conv_bn_net(2);
  CHECK(values(a->state_dict().at("0.weight")) != values(b->state_dict().at("0.weight")));
  b->load_state_dict(a->state_dict());
  for (const auto& named : a->state_dict()) {
    CHECK_MESSAGE(values(named.second) == values(b->state_dict().at(named.first)), named.first);
  }
  CHECK(b->named_parameters()[0].second.requires_grad());  // still a trainable leaf
  CHECK(b->named_parameters()[0].second.is_leaf());

  auto c = conv_bn_net(3);
  const auto before = values(c->state_dict().at("0.weight"));

  nn::StateDict missing = a->state_dict();
  missing.erase("1.running_mean");
  CHECK_THROWS_WITH_AS(c->load_state_dict(missing), doctest::Contains("missing keys (1): '1.running_mean'"), Error);

  nn::StateDict extra = a->state_dict();
  extra["head.weight"] = zeros({3});
  CHECK_THROWS_WITH_AS(c->load_state_dict(extra), doctest::Contains("unexpected keys (1): 'head.weight'"), Error);

  nn::StateDict wrong = a->state_dict();
  wrong["4.weight"] = zeros({3, 15});
  CHECK_THROWS_WITH_AS(c->load_state_dict(wrong), doctest::Contains("'4.weight': checkpoint (3, 15), model (3, 16)"),
                       Error);
  CHECK_THROWS_AS(c->load_state_dict(wrong, /*strict=*/false), Error);  // shapes are checked even when not strict
  CHECK(values(c->state_dict().at("0.weight")) == before);              // nothing was copied

  // Non-strict: loads what matches, reports the rest.
  nn::StateDict partial = missing;
  partial["head.weight"] = zeros({3});
  const nn::LoadResult r = c->load_state_dict(partial, /*strict=*/false);
  CHECK(r.missing_keys == std::vector<std::string>{"1.running_mean"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"head.weight"});
  CHECK(values(c->state_dict().at("0.weight")) == values(a->state_dict().at("0.weight")));

  // dtype conversion as PyTorch's copy_: f64 values load into f32 parameters.
  nn::StateDict f64 = a->state_dict();
  f64["4.bias"] = from_values(std::vector<double>{1.5, -2.0, 0.25}, {3}, DType::f64);
  c->load_state_dict(f64);
  CHECK(c->state_dict().at("4.bias").dtype() == DType::f32);
  CHECK(values(c->state_dict().at("4.bias")) == std::vector<double>{1.5, -2.0, 0.25});
}

TEST_CASE("state dicts round-trip through safetensors files, buffers included") {
  auto a = conv_bn_net(4);
  a->train();
  (*a)(random_tensor({3, 2, 4, 4}));  // moves the running statistics and num_batches_tracked
  const std::string path = temp_path("roundtrip.safetensors");
  nn::save_state_dict(*a, path, {{"format", "pt"}});
  CHECK(load_safetensors_metadata(path).at("format") == "pt");
  const auto file = load_safetensors(path);
  CHECK(file.size() == 9);
  CHECK(file.at("1.num_batches_tracked").item() == 1.0);

  auto b = conv_bn_net(5);
  const nn::LoadResult r = nn::load_state_dict(*b, path);
  CHECK(r.missing_keys.empty());
  for (const auto& named : a->state_dict()) {
    CHECK_MESSAGE(values(named.second) == values(b->state_dict().at(named.first)), named.first);
  }
  a->eval();
  b->eval();
  Tensor x = random_tensor({2, 2, 4, 4});
  check_close((*b)(x), (*a)(x), 0.0, 0.0, "same logits after the round trip");

  // A file for another architecture: the error names the keys and the file.
  auto other = std::make_shared<nn::Sequential>(
      std::vector<std::shared_ptr<nn::Module>>{std::make_shared<nn::Linear>(16, 3)});
  CHECK_THROWS_WITH_AS(nn::load_state_dict(*other, path), doctest::Contains("roundtrip.safetensors"), Error);
  std::remove(path.c_str());
  CHECK_THROWS_AS(nn::load_state_dict(*b, temp_path("missing.safetensors")), Error);
}

TEST_CASE("summary lists every module call with output shape and parameters") {
  auto net = conv_bn_net(6);
  net->train();
  const std::string s = net->summary({2, 2, 4, 4});
  CHECK(s.find("(model)") != std::string::npos);
  CHECK(s.find("Conv2d") != std::string::npos);
  CHECK(s.find("(2, 4, 2, 2)") != std::string::npos);
  CHECK(s.find("(2, 3)") != std::string::npos);
  CHECK(s.find("Total parameters: 135") != std::string::npos);
  CHECK(net->is_training());  // restored
  CHECK(values(net->state_dict().at("1.num_batches_tracked")) == std::vector<double>{0.0});  // ran in eval

  auto r18 = nn::resnet18({10, 3});
  const std::string rs = r18->summary({1, 3, 32, 32}, /*max_depth=*/1);
  CHECK(rs.find("layer4") != std::string::npos);
  CHECK(rs.find("(1, 512, 1, 1)") != std::string::npos);
  CHECK(rs.find("layer1.0.conv1") == std::string::npos);  // deeper than max_depth
  CHECK(rs.find("Total parameters: 11,181,642") != std::string::npos);
  CHECK(r18->summary({1, 3, 32, 32}).find("layer1.0.conv1") != std::string::npos);
  CHECK_THROWS_AS(r18->summary({1, 2, 32, 32}), Error);  // wrong channel count: a clear error
}

TEST_CASE("named_modules, train/eval, to(device) and zero_grad") {
  auto net = conv_bn_net(7);
  const auto modules = net->named_modules();
  REQUIRE(modules.size() == 6);
  CHECK(modules[0].first.empty());
  CHECK(modules[2].first == "1");
  CHECK(modules[2].second->type_name() == "BatchNorm2d");
  net->eval();
  for (const auto& [name, m] : modules) CHECK_FALSE(m->is_training());
  net->train();
  for (const auto& [name, m] : modules) CHECK(m->is_training());

  net->to(Device::cpu());
  // Without a GPU (or without the backend) moving raises; tests/cuda/test_cuda_models.cpp moves for real.
  if (!cuda::is_available()) CHECK_THROWS_AS(net->to(Device::cuda(0)), Error);

  Tensor loss = sum((*net)(random_tensor({2, 2, 4, 4})));
  backward(loss);
  CHECK(net->parameters()[0].grad().defined());
  net->zero_grad();
  for (const Tensor& p : net->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("Tensor::set_data repoints every holder of a handle; Module::device follows its parameters") {
  Tensor a = from_values(std::vector<double>{1, 2, 3}, {3});
  a.set_requires_grad(true);
  Tensor alias = a;  // another holder of the same handle, as a layer's member and its registry are
  a.set_data(from_values(std::vector<double>{4, 5}, {2}, DType::f64));
  CHECK(alias.shape() == Shape{2});
  CHECK(alias.dtype() == DType::f64);
  CHECK(alias.requires_grad());
  CHECK(values(alias) == std::vector<double>{4, 5});
  CHECK_THROWS_AS(a.set_data(Tensor()), Error);

  auto model = conv_bn_net(1);
  CHECK(model->device() == Device::cpu());
  model->to(Device::cpu());  // a no-op
  CHECK(model->device() == Device::cpu());
  nn::ReLU no_parameters;
  CHECK(no_parameters.device() == Device::cpu());
}

}  // namespace loupe::test
