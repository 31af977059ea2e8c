// ResNet18 / ResNet34. See resnet.hpp.
#include "nn/models/resnet.hpp"

#include "nn/init.hpp"

namespace loupe::nn {

namespace {

// Square kernel, stride and padding (all of ResNet's and DenseNet's convolutions).
std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, Generator* gen) {
  return conv_no_bias(in, out, {k, k}, {stride, stride}, {padding, padding}, gen);
}

}  // namespace

BasicBlock::BasicBlock(int64_t in_planes, int64_t planes, int64_t stride, Generator* generator) {
  conv1_ = register_module("conv1", conv(in_planes, planes, 3, stride, 1, generator));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  relu_ = register_module("relu", std::make_shared<ReLU>());
  conv2_ = register_module("conv2", conv(planes, planes, 3, 1, 1, generator));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (stride != 1 || in_planes != planes) {
    downsample_ = register_module(
        "downsample", std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                          conv(in_planes, planes, 1, stride, 0, generator), std::make_shared<BatchNorm2d>(planes)}));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = batch_norm_then_relu(*bn1_, *relu_, (*conv1_)(x));  // (N, planes, H / stride, W / stride)
  out = (*bn2_)((*conv2_)(out));
  Tensor identity = downsample_ ? (*downsample_)(x) : x;
  return (*relu_)(out + identity);
}

ResNet::ResNet(const std::vector<int64_t>& blocks_per_layer, const ModelOptions& options, const ResNetVariant& variant) {
  check_model_options(options, "ResNet");
  LOUPE_CHECK(blocks_per_layer.size() == 4, "ResNet: expected 4 stages, got ", blocks_per_layer.size());
  LOUPE_CHECK(variant.width > 0, "ResNet: width must be positive, got ", variant.width);
  Generator* gen = options.generator;
  const int64_t width = variant.width;
  conv1_ = register_module("conv1", variant.small_input ? conv(options.in_channels, width, 3, 1, 1, gen)
                                                        : conv(options.in_channels, width, 7, 2, 3, gen));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(width));
  relu_ = register_module("relu", std::make_shared<ReLU>());
  maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  int64_t in_planes = width;
  for (size_t stage = 0; stage < 4; ++stage) {
    const int64_t planes = width << stage;
    auto layer = std::make_shared<Sequential>();
    for (int64_t b = 0; b < blocks_per_layer[stage]; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      layer->push_back(std::make_shared<BasicBlock>(in_planes, planes, stride, gen));
      in_planes = planes;
    }
    layers_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
  }
  avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  fc_ = register_module("fc", std::make_shared<Linear>(width * 8, options.num_classes, true, gen));

  // torchvision's ResNet.__init__ initialisation.
  for (auto& [name, m] : named_modules()) {
    if (auto* c = dynamic_cast<Conv2d*>(m)) {
      init::kaiming_normal_(c->weight, 0.0, init::FanMode::fan_out, "relu", gen);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      init::ones_(bn->weight);
      init::zeros_(bn->bias);
    }
  }
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor h = (*maxpool_)(batch_norm_then_relu(*bn1_, *relu_, (*conv1_)(x)));  // (N, 64, H / 4, W / 4)
  for (auto& layer : layers_) h = (*layer)(h);            // (N, 512, H / 32, W / 32)
  h = flatten((*avgpool_)(h), 1);                          // (N, 512)
  return (*fc_)(h);                                        // (N, num_classes)
}

std::shared_ptr<ResNet> resnet18(const ModelOptions& options, const ResNetVariant& variant) {
  return std::make_shared<ResNet>(std::vector<int64_t>{2, 2, 2, 2}, options, variant);
}
std::shared_ptr<ResNet> resnet34(const ModelOptions& options, const ResNetVariant& variant) {
  return std::make_shared<ResNet>(std::vector<int64_t>{3, 4, 6, 3}, options, variant);
}

}  // namespace loupe::nn
