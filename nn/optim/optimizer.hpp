// Optimisers: SGD (momentum, dampening, nesterov, weight decay), Adam and AdamW, with PyTorch's
// update rules so that the same hyper-parameters give the same trajectories.
// Each step is one fused loop per parameter tensor (read grad, update state, write weight); CUDA
// parameters are updated by the multi-tensor kernels of tensor/cuda/optim.cu, state buffers live on
// the parameter's device (load_state_dict moves loaded state there).
//
// state_dict() names everything a resumed run needs (copies, so the caller may keep them):
//   "lr"                      0-d float64, the current learning rate
//   SGD   "momentum.<i>"      the momentum buffer of parameter i (absent until its first step)
//   Adam  "step"              0-d int64, steps taken;  "exp_avg.<i>", "exp_avg_sq.<i>" per parameter
// load_state_dict() copies them back into an optimiser built over parameters of the same shapes
// and dtypes (i = position in parameters()); a missing, extra or mis-shaped entry is an error.
// Tests: tests/nn/test_optim.cpp
#pragma once

#include <map>
#include <string>
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

  virtual std::map<std::string, Tensor> state_dict() const;
  virtual void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  // For load_state_dict: a copy of `state[name]` checked against parameter i's shape and dtype.
  Tensor state_for(const std::map<std::string, Tensor>& state, const std::string& name, size_t i) const;

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
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;

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
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;

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
