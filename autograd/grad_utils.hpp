// Small helpers shared by backward formulas.
#pragma once

#include "autograd/node.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/reduce.hpp"

namespace loupe::autograd {

// The gradient of a broadcast, type-promoted input: sum g over the broadcast dims back to the
// input's shape and cast it to the input's dtype. Undefined when the input needs no gradient.
inline Tensor reduce_to_input(const Node& node, size_t input, const Tensor& g) {
  if (!node.needs_input_grad(input)) return Tensor();
  const Edge& edge = node.inputs()[input];
  return ops::to_dtype(ops::sum_to(g, edge.shape), edge.dtype);
}

}  // namespace loupe::autograd
