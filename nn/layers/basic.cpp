// The basic layers. See basic.hpp.
#include "nn/layers/basic.hpp"

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/norm.hpp"

namespace loupe::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Generator* generator) {
  LOUPE_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got ", in_features, " -> ",
              out_features);
  weight = register_parameter("weight", Tensor::empty({out_features, in_features}));
  init::default_weight_(weight, generator);
  if (with_bias) {
    bias = register_parameter("bias", Tensor::empty({out_features}));
    init::default_bias_(bias, in_features, generator);
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_dim_, end_dim_); }

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> module) { push_back(std::to_string(modules_.size()), std::move(module)); }

void Sequential::push_back(const std::string& name, std::shared_ptr<Module> module) {
  register_module(name, module);
  modules_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < modules_.size(); ++i) {
    // A BatchNorm2d followed by a ReLU (DenseNet's stem and transitions) runs as one pass where it
    // can (batch_norm_then_relu: not while either has a forward hook).
    auto* norm = dynamic_cast<BatchNorm2d*>(modules_[i].get());
    if (norm != nullptr && i + 1 < modules_.size() && dynamic_cast<ReLU*>(modules_[i + 1].get()) != nullptr) {
      h = batch_norm_then_relu(*norm, *modules_[i + 1], h);
      ++i;
      continue;
    }
    h = (*modules_[i])(h);
  }
  return h;
}

}  // namespace loupe::nn
