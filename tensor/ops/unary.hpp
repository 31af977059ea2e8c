// Unary elementwise ops (raw forward, no gradients) and the matching derivative kernels that
// autograd/functions/unary.cpp uses for backward: unary_backward(op, x, y, g) = g * f'(x).
// Floating-only functions (exp, sigmoid, ...) compute integer inputs in float32, like PyTorch.
// Tests: tests/ops/op_table_unary.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe::ops {

enum class UnaryOp {
  neg, abs, sign, exp, log, log1p, sqrt, rsqrt, square, reciprocal, sin, cos,
  relu, sigmoid, tanh, gelu_erf, gelu_tanh, silu, softplus, elu, leaky_relu, clamp,
};

// Parameters of the parametrised ops: softplus (a = beta, b = threshold), elu (a = alpha),
// leaky_relu (a = negative slope), clamp (a = min, b = max; NaN = no bound).
struct UnaryParams {
  double a = 0.0;
  double b = 0.0;
};

const char* unary_name(UnaryOp op);
Tensor unary(UnaryOp op, const Tensor& x, UnaryParams params = {});
// g * f'(x), with y = f(x) available to ops whose derivative is cheaper from the output.
Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g, UnaryParams params = {});

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

}  // namespace loupe::ops
