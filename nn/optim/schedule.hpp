// Learning-rate schedules and gradient clipping.
//
// A schedule maps a step count (optimiser steps or epochs — the caller decides which it counts)
// to a learning rate, as a pure function: a resumed run gets exactly the rate it would have had,
// with nothing to save but the step count. The formulas are PyTorch's:
//   StepLR:            lr0 * gamma^floor(t / step_size)
//   CosineAnnealingLR: eta_min + (lr0 - eta_min) (1 + cos(pi t / T)) / 2   (t clipped to T)
//   linear warm-up:    lr * (start + (1 - start) t / warmup) for t < warmup, then the schedule
//                      above evaluated at t - warmup (as SequentialLR chains them).
// Tests: tests/nn/test_optim.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::nn {

enum class ScheduleKind { constant, step, cosine };

struct Schedule {
  ScheduleKind kind = ScheduleKind::constant;
  double base_lr = 1e-3;
  int64_t step_size = 30;  // step: every step_size steps ...
  double gamma = 0.1;      // ... multiply by gamma
  int64_t total = 100;     // cosine: steps from base_lr down to eta_min (after warm-up)
  double eta_min = 0.0;
  int64_t warmup = 0;           // linear warm-up steps before the schedule starts
  double warmup_start = 0.0;    // warm-up starts at base_lr * warmup_start

  double lr_at(int64_t t) const;
  static ScheduleKind parse_kind(const std::string& name);  // "constant", "step", "cosine"
};

// Scales all gradients so their joint norm is at most max_norm (p = 2, or inf); returns the norm
// before clipping, like torch.nn.utils.clip_grad_norm_. Parameters without a gradient are skipped.
double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0);
// Clamps every gradient element to [-clip, clip].
void clip_grad_value(const std::vector<Tensor>& parameters, double clip);

}  // namespace loupe::nn
