// Gradient-ready hooks: a callback the engine calls once per backward() for each leaf, at the
// moment that leaf's .grad is final for this pass (every edge into it has delivered, or found
// nothing to deliver). Data-parallel training uses it to start the all-reduce of a bucket of
// parameter gradients while backward is still computing the gradients of earlier layers
// (distributed/gradient_reducer.hpp), as PyTorch's DDP does with its accumulate-grad hooks.
//
//   GradReadyScope scope([&](AutogradMeta& leaf) { ... leaf.grad ... });
//   backward(loss);   // the callback runs inside, on this thread, in the engine's order
//
// The scope is thread-local and nests (the inner one replaces the outer for its lifetime). Only
// backward() calls it; grad(outputs, inputs) touches no .grad and calls nothing. A leaf that the
// pass does not reach is not reported. Tests: tests/autograd/test_hooks.cpp
#pragma once

#include <functional>

#include "tensor/tensor.hpp"

namespace loupe::autograd {

using GradReadyFn = std::function<void(AutogradMeta& leaf)>;

// The callback of the innermost live scope on this thread (null when none).
const GradReadyFn* active_grad_ready_hook();

class GradReadyScope {
 public:
  explicit GradReadyScope(GradReadyFn hook);
  ~GradReadyScope();
  GradReadyScope(const GradReadyScope&) = delete;
  GradReadyScope& operator=(const GradReadyScope&) = delete;

 private:
  GradReadyFn hook_;
  const GradReadyFn* previous_;
};

}  // namespace loupe::autograd
