// Differentiable unary elementwise ops. Forward: tensor/ops/unary.hpp; backward: g * f'(x)
// through ops::unary_backward. Every node saves {x, y} so rule sets (DeepLIFT) can use both.
// Tests: tests/ops/op_table_unary.cpp (forward, gradcheck), tests/autograd/test_rules.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe {

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
Tensor silu(const Tensor& x);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor clamp(const Tensor& x, double min, double max);  // NaN for "no bound"

}  // namespace loupe
