// Optimisers: SGD (momentum, dampening, nesterov, weight decay), Adam and AdamW, with PyTorch's
// update rules so that the same hyper-parameters give the same trajectories.
// Each step is one fused loop per parameter tensor (read grad, update state, write weight).
// Tests: tests/nn/test_optim.cpp
#pragma once

#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::nn {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> parameters);
  virtual ~Optimizer() = default;

  virtual void step() = 0;
  void zero_grad();
  double learning_rate() const { return lr_; }
  void set_learning_rate(double lr) { lr_ = lr; }
  const std::vector<Tensor>& parameters() const { return parameters_; }

 protected:
  std::vector<Tensor> parameters_;
  double lr_ = 1e-3;
};

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> parameters, SgdOptions options);
  void step() override;

 private:
  SgdOptions options_;
  std::vector<Tensor> momentum_;  // one buffer per parameter, created on the first step
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;  // true = AdamW
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> parameters, AdamOptions options);
  void step() override;
  int64_t steps() const { return step_; }

 private:
  AdamOptions options_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
  int64_t step_ = 0;
};

// AdamW = Adam with decoupled weight decay (default 0.01, as PyTorch).
inline AdamOptions adamw_options(double lr = 1e-3, double weight_decay = 0.01) {
  AdamOptions o;
  o.lr = lr;
  o.weight_decay = weight_decay;
  o.decoupled_weight_decay = true;
  return o;
}

}  // namespace loupe::nn
