// Gradient-ready hooks. See hooks.hpp.
#include "autograd/hooks.hpp"

namespace loupe::autograd {

namespace {
thread_local const GradReadyFn* current_hook = nullptr;
}  // namespace

const GradReadyFn* active_grad_ready_hook() { return current_hook; }

GradReadyScope::GradReadyScope(GradReadyFn hook) : hook_(std::move(hook)), previous_(current_hook) {
  current_hook = hook_ ? &hook_ : nullptr;
}

GradReadyScope::~GradReadyScope() { current_hook = previous_; }

}  // namespace loupe::autograd
