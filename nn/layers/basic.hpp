// The first layers: Linear (PyTorch layout and default initialisation), ReLU, Flatten, Sequential.
// Tests: tests/nn/test_module.cpp
#pragma once

#include <memory>
#include <vector>

#include "nn/module.hpp"

namespace loupe::nn {

// y = x W^T + b with W (out, in). Initialised like torch.nn.Linear: W and b uniform in
// [-1/sqrt(in), 1/sqrt(in)] (kaiming_uniform with a = sqrt(5) reduces to that bound).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;

  Tensor weight;
  Tensor bias;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim_(start_dim), end_dim_(end_dim) {}
  Tensor forward(const Tensor& x) override;

 private:
  int64_t start_dim_, end_dim_;
};

// Children named "0", "1", ... as in torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace loupe::nn
