// The basic layers: Linear (PyTorch layout and default initialisation), Flatten, Sequential.
// ReLU and the other activations are in activation.hpp (included here).
// Tests: tests/nn/test_optim.cpp, tests/nn/models/test_layers.cpp
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/layers/activation.hpp"
#include "nn/module.hpp"

namespace loupe::nn {

// y = x W^T + b with W (out, in). Initialised like torch.nn.Linear: W and b uniform in
// [-1/sqrt(in), 1/sqrt(in)] (kaiming_uniform with a = sqrt(5) reduces to that bound).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }

  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim_(start_dim), end_dim_(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Flatten"; }

 private:
  int64_t start_dim_, end_dim_;
};

// Applies its children in order. Children are named "0", "1", ... as in torch.nn.Sequential, or
// given names (torchvision's DenseNet `features` holds "conv0", "norm0", ...).
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> module);  // named by its position
  void push_back(const std::string& name, std::shared_ptr<Module> module);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const { return modules_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace loupe::nn
