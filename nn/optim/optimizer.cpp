// Optimiser updates. See optimizer.hpp.
#include "nn/optim/optimizer.hpp"

#include <cmath>

#include "tensor/cuda/ops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/parallel.hpp"

namespace loupe::nn {

Optimizer::Optimizer(std::vector<Tensor> parameters) : parameters_(std::move(parameters)) {
  for (const Tensor& p : parameters_) {
    LOUPE_CHECK(p.is_contiguous() && p.requires_grad() && p.is_leaf(), "Optimizer: parameters must be contiguous leaves that ",
                "require gradients (shape ", shape_str(p.shape()), ")");
  }
}

void Optimizer::zero_grad() {
  for (Tensor p : parameters_) p.set_grad(Tensor());
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  return {{"lr", scalar_tensor(lr_, DType::f64)}};
}

namespace {

const Tensor& required_entry(const std::map<std::string, Tensor>& state, const std::string& name) {
  auto it = state.find(name);
  LOUPE_CHECK(it != state.end() && it->second.defined(), "Optimizer::load_state_dict: no entry '", name, "'");
  return it->second;
}

// Every key must be one the optimiser wrote: a state from another optimiser or model is an error.
void check_known_keys(const std::map<std::string, Tensor>& state, const std::map<std::string, Tensor>& known,
                      const std::vector<std::string>& known_prefixes) {
  for (const auto& [name, tensor] : state) {
    bool ok = known.count(name) > 0;
    for (const std::string& prefix : known_prefixes) ok = ok || name.rfind(prefix, 0) == 0;
    LOUPE_CHECK(ok, "Optimizer::load_state_dict: unexpected entry '", name, "'");
  }
}

}  // namespace

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  const Tensor& lr = required_entry(state, "lr");
  LOUPE_CHECK(lr.numel() == 1, "Optimizer::load_state_dict: 'lr' must hold one number, got shape ", shape_str(lr.shape()));
  lr_ = lr.item();
}

Tensor Optimizer::state_for(const std::map<std::string, Tensor>& state, const std::string& name, size_t i) const {
  const Tensor& src = required_entry(state, name);
  LOUPE_CHECK(i < parameters_.size(), "Optimizer::load_state_dict: '", name, "' names parameter ", i, " but there are ",
              parameters_.size());
  const Tensor& p = parameters_[i];
  LOUPE_CHECK(src.shape() == p.shape() && src.dtype() == p.dtype(), "Optimizer::load_state_dict: '", name, "' has shape ",
              shape_str(src.shape()), " ", dtype_name(src.dtype()), " but parameter ", i, " has ", shape_str(p.shape()), " ",
              dtype_name(p.dtype()));
  // On the parameter's device, whatever device the saved state was on.
  return src.device() == p.device() ? ops::clone(src) : ops::to_device(src, p.device());
}

SGD::SGD(std::vector<Tensor> parameters, SgdOptions options) : Optimizer(std::move(parameters)), options_(options) {
  lr_ = options.lr;
  LOUPE_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0), "SGD: nesterov needs momentum > 0 ",
              "and dampening 0");
  momentum_.resize(parameters_.size());
}

void SGD::step() {
  // CUDA parameters are collected and updated together by cuda::sgd_step (few launches).
  std::vector<Tensor> cuda_params, cuda_grads, cuda_buffers;
  std::vector<bool> cuda_first;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& p = parameters_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    LOUPE_CHECK(g.is_contiguous(), "SGD: gradient of shape ", shape_str(g.shape()), " is not contiguous");
    const bool first = !momentum_[i].defined();
    if (options_.momentum != 0 && first) momentum_[i] = zeros(p.shape(), p.dtype(), p.device());
    if (p.device().is_cuda() || g.device().is_cuda()) {
      cuda_params.push_back(p);
      cuda_grads.push_back(g);
      cuda_buffers.push_back(momentum_[i]);
      cuda_first.push_back(first);
      continue;
    }
    dispatch_floating(p.dtype(), "SGD", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* w = p.data<T>();
      const T* gp = g.data<T>();
      T* buf = options_.momentum != 0 ? momentum_[i].data<T>() : nullptr;
      const SgdOptions o = options_;
      const double lr = lr_;
      parallel_for(0, p.numel(), 16384, [&](int64_t lo, int64_t hi) {
        for (int64_t j = lo; j < hi; ++j) {
          double d = gp[j] + o.weight_decay * w[j];
          if (buf) {
            // PyTorch: the first step copies the gradient into the buffer (no dampening).
            buf[j] = static_cast<T>(first ? d : o.momentum * buf[j] + (1 - o.dampening) * d);
            d = o.nesterov ? d + o.momentum * buf[j] : buf[j];
          }
          w[j] = static_cast<T>(w[j] - lr * d);
        }
      });
    });
  }
  if (!cuda_params.empty()) {
    cuda::sgd_step(cuda_params, cuda_grads, cuda_buffers, cuda_first, lr_, options_.momentum, options_.dampening,
                   options_.weight_decay, options_.nesterov);
  }
}

std::map<std::string, Tensor> SGD::state_dict() const {
  std::map<std::string, Tensor> state = Optimizer::state_dict();
  for (size_t i = 0; i < momentum_.size(); ++i) {
    if (momentum_[i].defined()) state["momentum." + std::to_string(i)] = ops::clone(momentum_[i]);
  }
  return state;
}

void SGD::load_state_dict(const std::map<std::string, Tensor>& state) {
  check_known_keys(state, {{"lr", Tensor()}}, {"momentum."});
  std::vector<Tensor> momentum(parameters_.size());
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const std::string name = "momentum." + std::to_string(i);
    if (state.count(name)) momentum[i] = state_for(state, name, i);
  }
  for (const auto& [name, tensor] : state) {
    if (name.rfind("momentum.", 0) == 0) {
      const std::string index = name.substr(9);
      bool known = false;
      for (size_t i = 0; i < parameters_.size(); ++i) known = known || index == std::to_string(i);
      LOUPE_CHECK(known, "Optimizer::load_state_dict: '", name, "' names no parameter (there are ", parameters_.size(), ")");
    }
  }
  Optimizer::load_state_dict(state);
  momentum_ = std::move(momentum);
}

Adam::Adam(std::vector<Tensor> parameters, AdamOptions options) : Optimizer(std::move(parameters)), options_(options) {
  lr_ = options.lr;
  LOUPE_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
              "Adam: betas must be in [0, 1), got ", options.beta1, ", ", options.beta2);
  for (const Tensor& p : parameters_) {
    exp_avg_.push_back(zeros(p.shape(), p.dtype(), p.device()));
    exp_avg_sq_.push_back(zeros(p.shape(), p.dtype(), p.device()));
  }
}

void Adam::step() {
  ++step_;
  const AdamOptions o = options_;
  const double bias1 = 1 - std::pow(o.beta1, static_cast<double>(step_));
  const double bias2 = 1 - std::pow(o.beta2, static_cast<double>(step_));
  const double step_size = lr_ / bias1;
  const double lr = lr_;
  // CUDA parameters are collected and updated together by cuda::adam_step (few launches).
  std::vector<Tensor> cuda_params, cuda_grads, cuda_m, cuda_v;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& p = parameters_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    LOUPE_CHECK(g.is_contiguous(), "Adam: gradient of shape ", shape_str(g.shape()), " is not contiguous");
    if (p.device().is_cuda() || g.device().is_cuda()) {
      cuda_params.push_back(p);
      cuda_grads.push_back(g);
      cuda_m.push_back(exp_avg_[i]);
      cuda_v.push_back(exp_avg_sq_[i]);
      continue;
    }
    dispatch_floating(p.dtype(), "Adam", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* w = p.data<T>();
      const T* gp = g.data<T>();
      T* m = exp_avg_[i].data<T>();
      T* v = exp_avg_sq_[i].data<T>();
      parallel_for(0, p.numel(), 16384, [&](int64_t lo, int64_t hi) {
        for (int64_t j = lo; j < hi; ++j) {
          double grad = gp[j];
          double weight = w[j];
          if (o.decoupled_weight_decay) {
            weight *= 1 - lr * o.weight_decay;
          } else {
            grad += o.weight_decay * weight;
          }
          const double mj = o.beta1 * m[j] + (1 - o.beta1) * grad;
          const double vj = o.beta2 * v[j] + (1 - o.beta2) * grad * grad;
          m[j] = static_cast<T>(mj);
          v[j] = static_cast<T>(vj);
          const double denom = std::sqrt(vj) / std::sqrt(bias2) + o.eps;
          w[j] = static_cast<T>(weight - step_size * mj / denom);
        }
      });
    });
  }
  if (!cuda_params.empty()) {
    cuda::adam_step(cuda_params, cuda_grads, cuda_m, cuda_v, lr, o.beta1, o.beta2, o.eps, o.weight_decay,
                    o.decoupled_weight_decay, step_);
  }
}

}  // namespace loupe::nn

namespace loupe::nn {

std::map<std::string, Tensor> Adam::state_dict() const {
  std::map<std::string, Tensor> state = Optimizer::state_dict();
  state["step"] = scalar_tensor(static_cast<double>(step_), DType::i64);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    state["exp_avg." + std::to_string(i)] = ops::clone(exp_avg_[i]);
    state["exp_avg_sq." + std::to_string(i)] = ops::clone(exp_avg_sq_[i]);
  }
  return state;
}

void Adam::load_state_dict(const std::map<std::string, Tensor>& state) {
  const size_t expected = 2 + 2 * parameters_.size();
  LOUPE_CHECK(state.size() == expected, "Optimizer::load_state_dict: Adam expects ", expected, " entries (lr, step and two ",
              "moments for each of ", parameters_.size(), " parameters), got ", state.size());
  const Tensor& step = required_entry(state, "step");
  LOUPE_CHECK(step.numel() == 1 && step.item() >= 0, "Optimizer::load_state_dict: 'step' must be one count >= 0");
  std::vector<Tensor> exp_avg, exp_avg_sq;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    exp_avg.push_back(state_for(state, "exp_avg." + std::to_string(i), i));
    exp_avg_sq.push_back(state_for(state, "exp_avg_sq." + std::to_string(i), i));
  }
  Optimizer::load_state_dict(state);
  step_ = static_cast<int64_t>(step.item());
  exp_avg_ = std::move(exp_avg);
  exp_avg_sq_ = std::move(exp_avg_sq);
}

}  // namespace loupe::nn
