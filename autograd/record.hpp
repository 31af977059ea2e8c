// How a differentiable op records itself: the glue between a raw forward (tensor/ops) and the
// graph. Every function in autograd/functions/ follows the same three steps:
//
//   Tensor out = ops::exp(x);                          // 1. raw forward
//   if (!should_record({x})) return out;               // 2. nothing to differentiate
//   return record(out, OpKind::exp, "exp", {x},        // 3. attach a node
//                 [](const Node& n, const Tensor& g) { return grads{g * n.saved[1]}; },
//                 {x, out});
//
// Tests: tests/autograd/test_engine.cpp
#pragma once

#include <vector>

#include "autograd/grad_mode.hpp"
#include "autograd/node.hpp"

namespace loupe::autograd {

// True when grad mode is on and at least one input requires a gradient.
bool should_record(const std::vector<Tensor>& inputs);

// Attaches a node of `kind` to `out` and returns the tensor that carries it. `saved` tensors are
// stored detached; `attrs` are the numbers rules need. If `out` shares its handle with an input
// (an op that returned its input unchanged), a fresh handle is made so the input keeps its history.
Tensor record(const Tensor& out, OpKind kind, const char* name, const std::vector<Tensor>& inputs,
              Node::BackwardFn backward, const std::vector<Tensor>& saved = {},
              std::vector<double> attrs = {});

}  // namespace loupe::autograd
