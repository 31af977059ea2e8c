// The shipped backward rule sets: guided backprop, deconvolution and DeepLIFT's rescale rule.
// See rules.hpp for the mechanism and REFERENCE.md section 2 for the definitions (they follow
// Captum's formulas, so attributions can be compared with Captum's on the same weights).
#include <cmath>

#include "autograd/rules.hpp"
#include "tensor/cpu/deeplift_rules.hpp"
#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/pool.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/softmax.hpp"
#include "tensor/ops/unary.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::autograd {

namespace {

using Grads = std::vector<Tensor>;

Tensor positive_part(const Tensor& g) { return ops::relu(g); }

// The unary op behind a node of an elementwise kind (for its ordinary derivative).
ops::UnaryOp unary_op_of(OpKind kind) {
  switch (kind) {
    case OpKind::relu: return ops::UnaryOp::relu;
    case OpKind::elu: return ops::UnaryOp::elu;
    case OpKind::leaky_relu: return ops::UnaryOp::leaky_relu;
    case OpKind::sigmoid: return ops::UnaryOp::sigmoid;
    case OpKind::tanh: return ops::UnaryOp::tanh;
    case OpKind::softplus: return ops::UnaryOp::softplus;
    case OpKind::gelu: return ops::UnaryOp::gelu_erf;
    case OpKind::gelu_tanh: return ops::UnaryOp::gelu_tanh;
    case OpKind::silu: return ops::UnaryOp::silu;
    default: break;
  }
  throw Error(detail::make_message("deeplift: no rescale rule for op kind ", op_kind_name(kind)));
}

// The two halves [input; reference] of a doubled batch, each repeated to the full batch:
// returns (first half - second half) stacked twice, so it lines up with the whole tensor.
Tensor doubled_difference(const Tensor& t, const char* what) {
  LOUPE_CHECK(t.dim() >= 1 && t.size(0) % 2 == 0, "deeplift: ", what, " of shape ", shape_str(t.shape()),
              " is not a doubled batch [inputs; references] (dim 0 must be even)");
  const int64_t half = t.size(0) / 2;
  const Tensor delta = ops::sub(ops::narrow(t, 0, 0, half), ops::narrow(t, 0, half, half));
  Tensor out = Tensor::empty(t.shape(), delta.dtype(), t.device());
  ops::copy_(ops::narrow(out, 0, 0, half), delta);
  ops::copy_(ops::narrow(out, 0, half, half), delta);
  return out;
}

// where(|dx| < eps, ordinary, numerator / dx): the rescale multiplier with its fallback.
Tensor rescale(const Tensor& numerator, const Tensor& dx, const Tensor& ordinary, double eps) {
  const Tensor small = ops::lt(ops::abs(dx), ops::scalar_like(eps, dx));
  // Divide by 1 where the fallback is taken, so no inf/NaN is ever formed.
  const Tensor safe_dx = ops::where(small, ops::scalar_like(1.0, dx), dx);
  return ops::where(small, ordinary, ops::div(numerator, safe_dx));
}

// The fused ReLU rule (tensor/cpu/deeplift_rules.hpp) when the operands qualify (else false: the
// composed rule below runs).
bool fused_relu_rescale(const Node& node, const Tensor& g, double eps, Tensor& out) {
  const Tensor& x = node.saved[0];
  const Tensor& y = node.saved[1];
  if (node.kind() != OpKind::relu || !cpu::fast::enabled() || !x.defined() || !y.defined() || !g.defined()) return false;
  const DType dtype = x.dtype();
  if ((dtype != DType::f32 && dtype != DType::f64) || y.dtype() != dtype || g.dtype() != dtype) return false;
  if (!x.device().is_cpu() || !y.device().is_cpu() || !g.device().is_cpu()) return false;
  if (!x.is_contiguous() || !y.is_contiguous() || !g.is_contiguous()) return false;
  if (x.shape() != y.shape() || x.shape() != g.shape() || x.dim() < 1 || x.size(0) % 2 != 0) return false;
  out = Tensor::empty(x.shape(), dtype, x.device());
  const int64_t half = x.numel() / 2;
  if (dtype == DType::f32) {
    cpu::deeplift::relu_rescale(x.data<float>(), y.data<float>(), g.data<float>(), half, static_cast<float>(eps),
                                out.data<float>());
  } else {
    cpu::deeplift::relu_rescale(x.data<double>(), y.data<double>(), g.data<double>(), half, eps, out.data<double>());
  }
  return true;
}

Grads deeplift_nonlinearity(const Node& node, const Tensor& g, double eps) {
  if (Tensor fused; fused_relu_rescale(node, g, eps, fused)) return {fused};
  const Tensor& x = node.saved[0];
  const Tensor& y = node.saved[1];
  const ops::UnaryParams params{node.attrs[0], node.attrs[1]};
  const Tensor ordinary = ops::unary_backward(unary_op_of(node.kind()), x, y, g, params);
  const Tensor dx = doubled_difference(x, "input");
  const Tensor dy = doubled_difference(y, "output");
  return {rescale(ops::mul(g, dy), dx, ordinary, eps)};
}

// The fused max-pool rule (tensor/cpu/deeplift_rules.hpp) when the operands qualify (else false:
// the composed rule below runs).
bool fused_max_pool_rescale(const Node& node, const Tensor& g, double eps, Tensor& out) {
  const Tensor& x = node.saved[0];
  const Tensor& y = node.saved[1];
  const Tensor& indices = node.saved[2];
  if (!cpu::fast::enabled() || !x.defined() || !y.defined() || !indices.defined() || !g.defined()) return false;
  const DType dtype = x.dtype();
  if ((dtype != DType::f32 && dtype != DType::f64) || y.dtype() != dtype || g.dtype() != dtype ||
      indices.dtype() != DType::i64) {
    return false;
  }
  for (const Tensor* t : {&x, &y, &indices, &g}) {
    if (!t->device().is_cpu() || !t->is_contiguous()) return false;
  }
  if (x.dim() < 3 || y.dim() != x.dim() || y.shape() != g.shape() || y.shape() != indices.shape() ||
      x.size(0) % 2 != 0 || y.size(0) != x.size(0)) {
    return false;
  }
  const int64_t in_plane = x.size(-2) * x.size(-1), out_plane = y.size(-2) * y.size(-1);
  if (in_plane == 0 || out_plane == 0 || x.numel() / in_plane != y.numel() / out_plane) return false;
  const int64_t half_planes = x.numel() / in_plane / 2;
  out = Tensor::empty(x.shape(), dtype, x.device());
  if (dtype == DType::f32) {
    cpu::deeplift::max_pool_rescale(x.data<float>(), y.data<float>(), indices.data<int64_t>(), g.data<float>(),
                                    half_planes, in_plane, out_plane, static_cast<float>(eps), out.data<float>());
  } else {
    cpu::deeplift::max_pool_rescale(x.data<double>(), y.data<double>(), indices.data<int64_t>(), g.data<double>(),
                                    half_planes, in_plane, out_plane, eps, out.data<double>());
  }
  return true;
}

Grads deeplift_max_pool(const Node& node, const Tensor& g, double eps) {
  if (Tensor fused; fused_max_pool_rescale(node, g, eps, fused)) return {fused};
  const Tensor& x = node.saved[0];        // (2B, C, H, W)
  const Tensor& y = node.saved[1];        // (2B, C, OH, OW)
  const Tensor& indices = node.saved[2];  // argmax positions of each half's own windows
  const int64_t half = y.size(0) / 2;
  LOUPE_CHECK(y.size(0) % 2 == 0, "deeplift: max_pool2d output of shape ", shape_str(y.shape()),
              " is not a doubled batch");
  const Tensor y_in = ops::narrow(y, 0, 0, half);
  const Tensor y_ref = ops::narrow(y, 0, half, half);
  const Tensor m = ops::maximum(y_in, y_ref);
  // Route g * (m - y') through the input half's argmax and g * (y - m) through the reference
  // half's, then add the two halves: that is the pooled difference seen from each input pixel.
  Tensor delta_out = Tensor::empty(y.shape(), y.dtype(), y.device());
  ops::copy_(ops::narrow(delta_out, 0, 0, half), ops::sub(m, y_ref));
  ops::copy_(ops::narrow(delta_out, 0, half, half), ops::sub(y_in, m));
  const Tensor routed = ops::max_pool2d_backward(ops::mul(g, delta_out), indices, x.shape());
  const Tensor summed = ops::add(ops::narrow(routed, 0, 0, half), ops::narrow(routed, 0, half, half));
  Tensor numerator = Tensor::empty(x.shape(), summed.dtype(), x.device());
  ops::copy_(ops::narrow(numerator, 0, 0, half), summed);
  ops::copy_(ops::narrow(numerator, 0, half, half), summed);
  const Tensor ordinary = ops::max_pool2d_backward(g, indices, x.shape());
  return {rescale(numerator, doubled_difference(x, "input"), ordinary, eps)};
}

Grads deeplift_softmax(const Node& node, const Tensor& g, double eps) {
  const Tensor& x = node.saved[0];
  const Tensor& y = node.saved[1];
  const auto dim = static_cast<int64_t>(node.attrs[0]);
  const Tensor ordinary = ops::softmax_backward(y, g, dim);
  const Tensor unnormalised =
      rescale(ops::mul(g, doubled_difference(y, "output")), doubled_difference(x, "input"), ordinary, eps);
  // Captum's normalisation: subtract the mean over the whole tensor.
  return {ops::sub(unnormalised, ops::mean(unnormalised))};
}

}  // namespace

RuleSet guided_backprop_rules() {
  RuleSet rules;
  rules.set(OpKind::relu, [](const Node& node, const Tensor& g) -> Grads {
    // 1[x > 0] * max(g, 0): the ordinary ReLU backward of the positive part of g.
    return {ops::unary_backward(ops::UnaryOp::relu, node.saved[0], node.saved[1], positive_part(g))};
  });
  return rules;
}

RuleSet deconvolution_rules() {
  RuleSet rules;
  rules.set(OpKind::relu, [](const Node&, const Tensor& g) -> Grads { return {positive_part(g)}; });
  return rules;
}

RuleSet deeplift_rescale_rules(double eps) {
  RuleSet rules;
  for (OpKind kind : {OpKind::relu, OpKind::elu, OpKind::leaky_relu, OpKind::sigmoid, OpKind::tanh, OpKind::softplus,
                      OpKind::gelu, OpKind::gelu_tanh, OpKind::silu}) {
    rules.set(kind, [eps](const Node& node, const Tensor& g) { return deeplift_nonlinearity(node, g, eps); });
  }
  rules.set(OpKind::max_pool2d, [eps](const Node& node, const Tensor& g) { return deeplift_max_pool(node, g, eps); });
  rules.set(OpKind::softmax, [eps](const Node& node, const Tensor& g) { return deeplift_softmax(node, g, eps); });
  return rules;
}

}  // namespace loupe::autograd
