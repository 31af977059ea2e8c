// Differentiable unary ops. See unary.hpp.
#include "autograd/functions/unary.hpp"

#include "autograd/autocast.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/unary.hpp"

namespace loupe {

namespace {

using autograd::Node;
using autograd::OpKind;

// The unary ops that autocast runs in float32 (bf16 inputs cast first): their range or precision
// needs it (autograd/autocast.hpp).
bool autocast_float32(ops::UnaryOp op) {
  using ops::UnaryOp;
  return op == UnaryOp::exp || op == UnaryOp::log || op == UnaryOp::log1p || op == UnaryOp::rsqrt ||
         op == UnaryOp::reciprocal || op == UnaryOp::softplus;
}

// One helper records every unary op: forward, then a node that saves {x, y} and the op's
// parameters, with backward g * f'(x).
Tensor unary_op(ops::UnaryOp op, OpKind kind, const Tensor& x_in, ops::UnaryParams params = {}) {
  const Tensor x = autocast_float32(op) ? autocast_to_float(x_in) : x_in;
  Tensor y = ops::unary(op, x, params);
  if (!autograd::should_record({x})) return y;
  return autograd::record(
      y, kind, ops::unary_name(op), {x},
      [op](const Node& node, const Tensor& g) -> std::vector<Tensor> {
        const ops::UnaryParams p{node.attrs[0], node.attrs[1]};
        return {ops::unary_backward(op, node.saved[0], node.saved[1], g, p)};
      },
      {x, y}, {params.a, params.b});
}

}  // namespace

Tensor neg(const Tensor& x) { return unary_op(ops::UnaryOp::neg, OpKind::neg, x); }
Tensor abs(const Tensor& x) { return unary_op(ops::UnaryOp::abs, OpKind::abs, x); }
Tensor sign(const Tensor& x) { return unary_op(ops::UnaryOp::sign, OpKind::sign, x); }
Tensor exp(const Tensor& x) { return unary_op(ops::UnaryOp::exp, OpKind::exp, x); }
Tensor log(const Tensor& x) { return unary_op(ops::UnaryOp::log, OpKind::log, x); }
Tensor log1p(const Tensor& x) { return unary_op(ops::UnaryOp::log1p, OpKind::log1p, x); }
Tensor sqrt(const Tensor& x) { return unary_op(ops::UnaryOp::sqrt, OpKind::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary_op(ops::UnaryOp::rsqrt, OpKind::rsqrt, x); }
Tensor square(const Tensor& x) { return unary_op(ops::UnaryOp::square, OpKind::square, x); }
Tensor reciprocal(const Tensor& x) { return unary_op(ops::UnaryOp::reciprocal, OpKind::reciprocal, x); }
Tensor sin(const Tensor& x) { return unary_op(ops::UnaryOp::sin, OpKind::sin, x); }
Tensor cos(const Tensor& x) { return unary_op(ops::UnaryOp::cos, OpKind::cos, x); }
Tensor relu(const Tensor& x) { return unary_op(ops::UnaryOp::relu, OpKind::relu, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(ops::UnaryOp::sigmoid, OpKind::sigmoid, x); }
Tensor tanh(const Tensor& x) { return unary_op(ops::UnaryOp::tanh, OpKind::tanh, x); }
Tensor gelu(const Tensor& x, bool tanh_approximation) {
  return tanh_approximation ? unary_op(ops::UnaryOp::gelu_tanh, OpKind::gelu_tanh, x)
                            : unary_op(ops::UnaryOp::gelu_erf, OpKind::gelu, x);
}
Tensor silu(const Tensor& x) { return unary_op(ops::UnaryOp::silu, OpKind::silu, x); }
Tensor softplus(const Tensor& x, double beta, double threshold) {
  return unary_op(ops::UnaryOp::softplus, OpKind::softplus, x, {beta, threshold});
}
Tensor elu(const Tensor& x, double alpha) { return unary_op(ops::UnaryOp::elu, OpKind::elu, x, {alpha, 0.0}); }
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return unary_op(ops::UnaryOp::leaky_relu, OpKind::leaky_relu, x, {negative_slope, 0.0});
}
Tensor clamp(const Tensor& x, double min, double max) {
  return unary_op(ops::UnaryOp::clamp, OpKind::clamp, x, {min, max});
}

}  // namespace loupe
