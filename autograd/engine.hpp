// The backward engine: walks the graph behind some outputs in topological order (iteratively:
// DenseNet graphs are thousands of nodes deep) and runs each node's backward (or the active rule)
// exactly once, after all gradients flowing into it have been summed.
// Tests: tests/autograd/test_engine.cpp
#pragma once

#include <vector>

#include "tensor/tensor.hpp"

namespace loupe {

// Accumulates d(output)/d(leaf) into the .grad of every leaf that requires a gradient.
// `grad_output` defaults to 1 for a one-element output; it is required otherwise.
void backward(const Tensor& output, const Tensor& grad_output = Tensor(), bool retain_graph = false);

// Gradients of sum_i <outputs[i], grad_outputs[i]> with respect to each of `inputs` (leaves or
// intermediate tensors), returned without touching any .grad. An input the outputs do not depend
// on gets an undefined tensor (or an error when allow_unused is false).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool allow_unused = true);

// Clears .grad of each tensor.
void zero_grad(const std::vector<Tensor>& tensors);

}  // namespace loupe
