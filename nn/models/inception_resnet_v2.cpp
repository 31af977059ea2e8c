// Inception-ResNet-v2. See inception_resnet_v2.hpp. Block layouts follow timm's
// inception_resnet_v2.py; shapes in comments are for a 299x299 input.
#include "nn/models/inception_resnet_v2.hpp"

namespace loupe::nn {

namespace {

using Pair = std::array<int64_t, 2>;
using ModulePtr = std::shared_ptr<Module>;

ModulePtr cbr(int64_t in, int64_t out, Pair k, Pair padding, Generator* g, int64_t stride = 1) {
  return std::make_shared<ConvBnRelu>(in, out, k, Pair{stride, stride}, padding, 0.001, g);
}
ModulePtr cbr(int64_t in, int64_t out, int64_t k, Generator* g, int64_t stride = 1, int64_t padding = 0) {
  return cbr(in, out, {k, k}, {padding, padding}, g, stride);
}
ModulePtr seq(std::vector<ModulePtr> modules) { return std::make_shared<Sequential>(std::move(modules)); }
ModulePtr maxpool_3_2() { return std::make_shared<MaxPool2d>(3, 2); }

// (N, 192, 35, 35) -> (N, 320, 35, 35)
ModulePtr mixed_5b(Generator* g) {
  return std::make_shared<Branches>(std::vector<std::pair<std::string, ModulePtr>>{
      {"branch0", cbr(192, 96, 1, g)},
      {"branch1", seq({cbr(192, 48, 1, g), cbr(48, 64, 5, g, 1, 2)})},
      {"branch2", seq({cbr(192, 64, 1, g), cbr(64, 96, 3, g, 1, 1), cbr(96, 96, 3, g, 1, 1)})},
      {"branch3", seq({std::make_shared<AvgPool2d>(3, 1, 1, false, /*count_include_pad=*/false), cbr(192, 64, 1, g)})},
  });
}

// (N, 320, 35, 35) -> (N, 1088, 17, 17)
ModulePtr mixed_6a(Generator* g) {
  return std::make_shared<Branches>(std::vector<std::pair<std::string, ModulePtr>>{
      {"branch0", cbr(320, 384, 3, g, 2)},
      {"branch1", seq({cbr(320, 256, 1, g), cbr(256, 256, 3, g, 1, 1), cbr(256, 384, 3, g, 2)})},
      {"branch2", maxpool_3_2()},
  });
}

// (N, 1088, 17, 17) -> (N, 2080, 8, 8)
ModulePtr mixed_7a(Generator* g) {
  return std::make_shared<Branches>(std::vector<std::pair<std::string, ModulePtr>>{
      {"branch0", seq({cbr(1088, 256, 1, g), cbr(256, 384, 3, g, 2)})},
      {"branch1", seq({cbr(1088, 256, 1, g), cbr(256, 288, 3, g, 2)})},
      {"branch2", seq({cbr(1088, 256, 1, g), cbr(256, 288, 3, g, 1, 1), cbr(288, 320, 3, g, 2)})},
      {"branch3", maxpool_3_2()},
  });
}

ModulePtr block35(double scale, Generator* g) {
  return std::make_shared<ResidualInceptionBlock>(
      "Block35",
      std::vector<ModulePtr>{cbr(320, 32, 1, g), seq({cbr(320, 32, 1, g), cbr(32, 32, 3, g, 1, 1)}),
                             seq({cbr(320, 32, 1, g), cbr(32, 48, 3, g, 1, 1), cbr(48, 64, 3, g, 1, 1)})},
      128, 320, scale, true, g);
}

ModulePtr block17(double scale, Generator* g) {
  return std::make_shared<ResidualInceptionBlock>(
      "Block17",
      std::vector<ModulePtr>{cbr(1088, 192, 1, g), seq({cbr(1088, 128, 1, g), cbr(128, 160, {1, 7}, {0, 3}, g),
                                                        cbr(160, 192, {7, 1}, {3, 0}, g)})},
      384, 1088, scale, true, g);
}

ModulePtr block8(double scale, bool relu, Generator* g) {
  return std::make_shared<ResidualInceptionBlock>(
      "Block8",
      std::vector<ModulePtr>{cbr(2080, 192, 1, g), seq({cbr(2080, 192, 1, g), cbr(192, 224, {1, 3}, {0, 1}, g),
                                                        cbr(224, 256, {3, 1}, {1, 0}, g)})},
      448, 2080, scale, relu, g);
}

ModulePtr repeat(int n, const std::function<ModulePtr()>& make) {
  auto s = std::make_shared<Sequential>();
  for (int i = 0; i < n; ++i) s->push_back(make());
  return s;
}

}  // namespace

ResidualInceptionBlock::ResidualInceptionBlock(std::string type, std::vector<std::shared_ptr<Module>> branches,
                                               int64_t branch_channels, int64_t channels, double scale, bool relu,
                                               Generator* generator)
    : type_(std::move(type)), scale_(scale) {
  for (size_t i = 0; i < branches.size(); ++i)
    branches_.push_back(register_module("branch" + std::to_string(i), branches[i]));
  conv2d_ = register_module("conv2d", std::make_shared<Conv2d>(branch_channels, channels, 1, Conv2dOptions{}, generator));
  if (relu) relu_ = register_module(type_ == "Block8" ? "relu" : "act", std::make_shared<ReLU>());
}

Tensor ResidualInceptionBlock::forward(const Tensor& x) {
  std::vector<Tensor> outputs;
  for (auto& b : branches_) outputs.push_back((*b)(x));
  Tensor out = (*conv2d_)(cat(outputs, 1)) * scale_ + x;  // (N, channels, H, W)
  return relu_ ? (*relu_)(out) : out;
}

InceptionResNetV2::InceptionResNetV2(const ModelOptions& options) {
  check_model_options(options, "InceptionResNetV2");
  Generator* g = options.generator;
  conv2d_1a_ = register_module("conv2d_1a", cbr(options.in_channels, 32, 3, g, 2));  // (N, 32, 149, 149)
  conv2d_2a_ = register_module("conv2d_2a", cbr(32, 32, 3, g));                       // (N, 32, 147, 147)
  conv2d_2b_ = register_module("conv2d_2b", cbr(32, 64, 3, g, 1, 1));                 // (N, 64, 147, 147)
  maxpool_3a_ = register_module("maxpool_3a", maxpool_3_2());                         // (N, 64, 73, 73)
  conv2d_3b_ = register_module("conv2d_3b", cbr(64, 80, 1, g));                       // (N, 80, 73, 73)
  conv2d_4a_ = register_module("conv2d_4a", cbr(80, 192, 3, g));                      // (N, 192, 71, 71)
  maxpool_5a_ = register_module("maxpool_5a", maxpool_3_2());                         // (N, 192, 35, 35)
  mixed_5b_ = register_module("mixed_5b", mixed_5b(g));                               // (N, 320, 35, 35)
  repeat_ = register_module("repeat", repeat(10, [g] { return block35(0.17, g); }));
  mixed_6a_ = register_module("mixed_6a", mixed_6a(g));                               // (N, 1088, 17, 17)
  repeat_1_ = register_module("repeat_1", repeat(20, [g] { return block17(0.10, g); }));
  mixed_7a_ = register_module("mixed_7a", mixed_7a(g));                               // (N, 2080, 8, 8)
  repeat_2_ = register_module("repeat_2", repeat(9, [g] { return block8(0.20, true, g); }));
  block8_ = register_module("block8", block8(1.0, false, g));
  conv2d_7b_ = register_module("conv2d_7b", cbr(2080, 1536, 1, g));                   // (N, 1536, 8, 8)
  classif_ = register_module("classif", std::make_shared<Linear>(1536, options.num_classes, true, g));
}

Tensor InceptionResNetV2::forward(const Tensor& x) {
  Tensor h = x;
  for (auto* m : {&conv2d_1a_, &conv2d_2a_, &conv2d_2b_, &maxpool_3a_, &conv2d_3b_, &conv2d_4a_, &maxpool_5a_,
                  &mixed_5b_, &repeat_, &mixed_6a_, &repeat_1_, &mixed_7a_, &repeat_2_, &block8_, &conv2d_7b_})
    h = (**m)(h);
  h = flatten(adaptive_avg_pool2d(h, {1, 1}), 1);  // (N, 1536)
  return (*classif_)(h);                          // (N, num_classes)
}

std::shared_ptr<InceptionResNetV2> inception_resnet_v2(const ModelOptions& options) {
  return std::make_shared<InceptionResNetV2>(options);
}

}  // namespace loupe::nn
