// Learning-rate schedules and gradient clipping. See schedule.hpp.
#include "nn/optim/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/unary.hpp"

namespace loupe::nn {

double Schedule::lr_at(int64_t t) const {
  LOUPE_CHECK(t >= 0, "Schedule: negative step ", t);
  if (t < warmup) {
    return base_lr * (warmup_start + (1.0 - warmup_start) * static_cast<double>(t) / static_cast<double>(warmup));
  }
  const int64_t s = t - warmup;
  switch (kind) {
    case ScheduleKind::constant: return base_lr;
    case ScheduleKind::step:
      LOUPE_CHECK(step_size > 0, "Schedule: step_size must be positive, got ", step_size);
      return base_lr * std::pow(gamma, static_cast<double>(s / step_size));
    case ScheduleKind::cosine: {
      LOUPE_CHECK(total > 0, "Schedule: cosine total must be positive, got ", total);
      const double progress = static_cast<double>(std::min(s, total)) / static_cast<double>(total);
      return eta_min + (base_lr - eta_min) * (1.0 + std::cos(std::numbers::pi * progress)) / 2.0;
    }
  }
  return base_lr;
}

ScheduleKind Schedule::parse_kind(const std::string& name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "step") return ScheduleKind::step;
  if (name == "cosine") return ScheduleKind::cosine;
  throw Error("schedule: unknown schedule '" + name + "' (constant, step or cosine)");
}

double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm, double norm_type) {
  LOUPE_CHECK(max_norm >= 0, "clip_grad_norm: max_norm must be non-negative, got ", max_norm);
  const bool infinity = std::isinf(norm_type);
  LOUPE_CHECK(infinity || norm_type > 0, "clip_grad_norm: norm_type must be positive or inf, got ", norm_type);
  double total = 0.0;
  for (const Tensor& p : parameters) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    // item() reads host memory: a CUDA gradient's norm comes back to the CPU first.
    const double norm = ops::to_device(ops::norm(ops::to_dtype(g, DType::f64), norm_type), Device::cpu()).item();
    total = infinity ? std::max(total, norm) : total + std::pow(norm, norm_type);
  }
  if (!infinity) total = std::pow(total, 1.0 / norm_type);
  // PyTorch's coefficient: max_norm / (total + 1e-6), applied only when it is below 1.
  const double coefficient = max_norm / (total + 1e-6);
  if (coefficient < 1.0) {
    for (const Tensor& p : parameters) {
      const Tensor g = p.grad();
      if (g.defined()) ops::copy_(g, ops::mul(g, coefficient));
    }
  }
  return total;
}

void clip_grad_value(const std::vector<Tensor>& parameters, double clip) {
  LOUPE_CHECK(clip >= 0, "clip_grad_value: clip must be non-negative, got ", clip);
  for (const Tensor& p : parameters) {
    const Tensor g = p.grad();
    if (g.defined()) ops::copy_(g, ops::clamp(g, -clip, clip));
  }
}

}  // namespace loupe::nn
