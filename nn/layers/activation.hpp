// Activation modules: parameter-free wrappers of the differentiable elementwise ops
// (autograd/functions/unary.hpp), with PyTorch's names and default arguments.
// Tests: tests/nn/models/test_layers.cpp
#pragma once

#include "nn/module.hpp"

namespace loupe::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ReLU"; }
};

// tanh_approximation = PyTorch's approximate='tanh'.
class GELU : public Module {
 public:
  explicit GELU(bool tanh_approximation = false) : tanh_approximation_(tanh_approximation) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GELU"; }

 private:
  bool tanh_approximation_;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "SiLU"; }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sigmoid"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Tanh"; }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LeakyReLU"; }

 private:
  double negative_slope_;
};

class ELU : public Module {
 public:
  explicit ELU(double alpha = 1.0) : alpha_(alpha) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ELU"; }

 private:
  double alpha_;
};

// log(1 + exp(beta x)) / beta, linear above threshold (in units of beta x), as PyTorch.
class Softplus : public Module {
 public:
  explicit Softplus(double beta = 1.0, double threshold = 20.0) : beta_(beta), threshold_(threshold) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Softplus"; }

 private:
  double beta_, threshold_;
};

}  // namespace loupe::nn
