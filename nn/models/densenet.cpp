// DenseNet-121 / DenseNet-161. See densenet.hpp.
#include "nn/models/densenet.hpp"

#include "autograd/record.hpp"
#include "nn/init.hpp"
#include "tensor/ops/norm.hpp"

namespace loupe::nn {

namespace {

// Square kernel, stride and padding (all of ResNet's and DenseNet's convolutions).
std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, Generator* gen) {
  return conv_no_bias(in, out, {k, k}, {stride, stride}, {padding, padding}, gen);
}

}  // namespace

DenseLayer::DenseLayer(int64_t in_features, int64_t growth_rate, int64_t bn_size, Generator* generator) {
  norm1_ = register_module("norm1", std::make_shared<BatchNorm2d>(in_features));
  relu1_ = register_module("relu1", std::make_shared<ReLU>());
  conv1_ = register_module("conv1", conv(in_features, bn_size * growth_rate, 1, 1, 0, generator));
  norm2_ = register_module("norm2", std::make_shared<BatchNorm2d>(bn_size * growth_rate));
  relu2_ = register_module("relu2", std::make_shared<ReLU>());
  conv2_ = register_module("conv2", conv(bn_size * growth_rate, growth_rate, 3, 1, 1, generator));
}

Tensor DenseLayer::forward(const Tensor& x) {
  Tensor bottleneck = (*conv1_)(batch_norm_then_relu(*norm1_, *relu1_, x));  // (N, bn_size * growth, H, W)
  return (*conv2_)(batch_norm_then_relu(*norm2_, *relu2_, bottleneck));      // (N, growth, H, W)
}

Tensor DenseLayer::forward_features(const std::vector<Tensor>& features) {
  std::vector<Tensor> recorded = features;
  recorded.push_back(norm1_->weight);
  recorded.push_back(norm1_->bias);
  const bool fused = norm1_->is_plain_inference() && norm1_->forward_hook_count() == 0 &&
                     relu1_->forward_hook_count() == 0 && !autograd::should_record(recorded);
  if (!fused) return forward(cat(features, 1));
  const Tensor activated = ops::batch_norm_relu_of_concat(features, norm1_->running_mean, norm1_->running_var,
                                                          norm1_->weight, norm1_->bias, norm1_->options().eps);
  return (*conv2_)(batch_norm_then_relu(*norm2_, *relu2_, (*conv1_)(activated)));
}

DenseBlock::DenseBlock(int64_t layers, int64_t in_features, int64_t growth_rate, int64_t bn_size, Generator* generator) {
  for (int64_t i = 0; i < layers; ++i) {
    layers_.push_back(register_module("denselayer" + std::to_string(i + 1),
                                      std::make_shared<DenseLayer>(in_features + i * growth_rate, growth_rate, bn_size,
                                                                   generator)));
  }
}

Tensor DenseBlock::forward(const Tensor& x) {
  std::vector<Tensor> features{x};
  for (auto& layer : layers_) {
    features.push_back(layer->forward_hook_count() == 0 ? layer->forward_features(features) : (*layer)(cat(features, 1)));
  }
  return cat(features, 1);
}

DenseNet::DenseNet(const DenseNetConfig& config, const ModelOptions& options) {
  check_model_options(options, "DenseNet");
  LOUPE_CHECK(config.growth_rate > 0 && config.bn_size > 0 && config.num_init_features > 0 && !config.block_config.empty(),
              "DenseNet: growth_rate, bn_size and num_init_features must be positive and block_config non-empty");
  Generator* gen = options.generator;
  features = register_module("features", std::make_shared<Sequential>());
  features->push_back("conv0", conv(options.in_channels, config.num_init_features, 7, 2, 3, gen));
  features->push_back("norm0", std::make_shared<BatchNorm2d>(config.num_init_features));
  features->push_back("relu0", std::make_shared<ReLU>());
  features->push_back("pool0", std::make_shared<MaxPool2d>(3, 2, 1));
  int64_t num_features = config.num_init_features;
  for (size_t i = 0; i < config.block_config.size(); ++i) {
    const int64_t layers = config.block_config[i];
    features->push_back("denseblock" + std::to_string(i + 1),
                        std::make_shared<DenseBlock>(layers, num_features, config.growth_rate, config.bn_size, gen));
    num_features += layers * config.growth_rate;
    if (i + 1 != config.block_config.size()) {
      auto transition = std::make_shared<Sequential>();
      transition->push_back("norm", std::make_shared<BatchNorm2d>(num_features));
      transition->push_back("relu", std::make_shared<ReLU>());
      transition->push_back("conv", conv(num_features, num_features / 2, 1, 1, 0, gen));
      transition->push_back("pool", std::make_shared<AvgPool2d>(2, 2));
      features->push_back("transition" + std::to_string(i + 1), transition);
      num_features /= 2;
    }
  }
  features->push_back("norm5", std::make_shared<BatchNorm2d>(num_features));
  classifier = register_module("classifier", std::make_shared<Linear>(num_features, options.num_classes, true, gen));

  // torchvision's DenseNet.__init__ initialisation.
  for (auto& [name, m] : named_modules()) {
    if (auto* c = dynamic_cast<Conv2d*>(m)) {
      init::kaiming_normal_(c->weight, 0.0, init::FanMode::fan_in, "leaky_relu", gen);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      init::ones_(bn->weight);
      init::zeros_(bn->bias);
    } else if (auto* fc = dynamic_cast<Linear*>(m)) {
      init::zeros_(fc->bias);
    }
  }
}

Tensor DenseNet::forward(const Tensor& x) {
  Tensor h = relu((*features)(x));                        // (N, F, H / 32, W / 32)
  h = flatten(adaptive_avg_pool2d(h, {1, 1}), 1);          // (N, F)
  return (*classifier)(h);                                // (N, num_classes)
}

std::shared_ptr<DenseNet> densenet121(const ModelOptions& options) {
  return std::make_shared<DenseNet>(DenseNetConfig{32, {6, 12, 24, 16}, 64, 4}, options);
}

std::shared_ptr<DenseNet> densenet161(const ModelOptions& options) {
  return std::make_shared<DenseNet>(DenseNetConfig{48, {6, 12, 36, 24}, 96, 4}, options);
}

}  // namespace loupe::nn
