// Differentiable normalisation layers. Forward and backward kernels: tensor/ops/norm.hpp.
// Gradients flow to x, weight and bias; running statistics are buffers (updated in place by
// batch_norm in training, never differentiated), as in PyTorch.
// Nodes save {x, mean, rstd, weight} (mean undefined for rms_norm);
// attrs: batch_norm {training, momentum, eps}, layer_norm / rms_norm {eps, normalized_shape...}.
// Tests: tests/ops/op_table_norm.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe {

// x (N, C, *); running_mean, running_var, weight, bias (C), each may be undefined (the running
// statistics are required when training is false).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);
// relu(batch_norm(...)). Without a graph to record (no_grad, inference) it runs the fused kernel;
// when recording it records the two nodes (batch_norm, then relu) exactly as the unfused calls
// would, so backward rule sets (guided backprop, DeepLIFT) still see every ReLU.
Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);
// x (..., *normalized_shape); weight and bias have normalized_shape.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
// eps < 0: the machine epsilon of x's dtype (PyTorch's eps=None).
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(), double eps = -1.0);

}  // namespace loupe
