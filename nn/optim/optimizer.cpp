// Optimiser updates. See optimizer.hpp.
#include "nn/optim/optimizer.hpp"

#include <cmath>

#include "tensor/dispatch.hpp"
#include "tensor/ops/creation.hpp"
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

SGD::SGD(std::vector<Tensor> parameters, SgdOptions options) : Optimizer(std::move(parameters)), options_(options) {
  lr_ = options.lr;
  LOUPE_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0), "SGD: nesterov needs momentum > 0 ",
              "and dampening 0");
  momentum_.resize(parameters_.size());
}

void SGD::step() {
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& p = parameters_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    LOUPE_CHECK(g.is_contiguous(), "SGD: gradient of shape ", shape_str(g.shape()), " is not contiguous");
    const bool first = !momentum_[i].defined();
    if (options_.momentum != 0 && first) momentum_[i] = zeros(p.shape(), p.dtype());
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
}

Adam::Adam(std::vector<Tensor> parameters, AdamOptions options) : Optimizer(std::move(parameters)), options_(options) {
  lr_ = options.lr;
  LOUPE_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
              "Adam: betas must be in [0, 1), got ", options.beta1, ", ", options.beta2);
  for (const Tensor& p : parameters_) {
    exp_avg_.push_back(zeros(p.shape(), p.dtype()));
    exp_avg_sq_.push_back(zeros(p.shape(), p.dtype()));
  }
}

void Adam::step() {
  ++step_;
  const AdamOptions o = options_;
  const double bias1 = 1 - std::pow(o.beta1, static_cast<double>(step_));
  const double bias2 = 1 - std::pow(o.beta2, static_cast<double>(step_));
  const double step_size = lr_ / bias1;
  const double lr = lr_;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& p = parameters_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    LOUPE_CHECK(g.is_contiguous(), "Adam: gradient of shape ", shape_str(g.shape()), " is not contiguous");
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
}

}  // namespace loupe::nn
