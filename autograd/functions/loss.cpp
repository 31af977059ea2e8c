// Differentiable loss functions. See loss.hpp.
#include "autograd/functions/loss.hpp"

#include "autograd/autocast.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/loss_backward.hpp"
#include "tensor/ops/unary.hpp"
#include "tensor/ops/view.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

// Nodes store the reduction as a number (attrs[0]).
double reduction_attr(ops::Reduction r) { return static_cast<double>(static_cast<int>(r)); }
ops::Reduction attr_reduction(double a) { return static_cast<ops::Reduction>(static_cast<int>(a)); }

// The class-index losses share their node layout: saved {input, target, weight}.
Tensor record_class_loss(const Tensor& out, OpKind kind, const char* name, const Tensor& input, const Tensor& target,
                         const ops::CrossEntropyOptions& o) {
  return autograd::record(
      out, kind, name, {input},
      [kind](const Node& n, const Tensor& g) -> Grads {
        ops::CrossEntropyOptions o;
        o.reduction = attr_reduction(n.attrs[0]);
        o.ignore_index = static_cast<int64_t>(n.attrs[1]);
        o.label_smoothing = n.attrs[2];
        o.weight = n.saved[2];
        const Tensor& x = n.saved[0];
        const Tensor& t = n.saved[1];
        return {kind == OpKind::cross_entropy ? ops::cross_entropy_backward(g, x, t, o)
                                              : ops::nll_loss_backward(g, x, t, o)};
      },
      {input, target, o.weight},
      {reduction_attr(o.reduction), static_cast<double>(o.ignore_index), o.label_smoothing});
}

// dL/d(elementwise loss) in the loss's full shape: g itself (none), or the 0-d g spread over
// every element (sum) and divided by their count (mean).
Tensor spread(const Tensor& g, const Shape& shape, ops::Reduction r) {
  const Tensor scaled = r == ops::Reduction::mean ? ops::div(g, static_cast<double>(shape_numel(shape))) : g;
  return ops::expand(scaled, shape);
}

// The elementwise regression losses: loss = f(input - target), dloss/dinput = f'(d) =
// -dloss/dtarget. `derivative` maps (d, g) to g * f'(d).
template <typename Derivative>
Tensor record_difference_loss(const Tensor& out, OpKind kind, const char* name, const Tensor& input,
                              const Tensor& target, ops::Reduction reduction, double beta, Derivative derivative) {
  return autograd::record(
      out, kind, name, {input, target},
      [derivative](const Node& n, const Tensor& g) -> Grads {
        const Tensor d = ops::sub(n.saved[0], n.saved[1]);
        const Tensor gd = derivative(d, spread(g, d.shape(), attr_reduction(n.attrs[0])), n.attrs[1]);
        Grads grads(2);
        if (n.needs_input_grad(0)) grads[0] = ops::to_dtype(gd, n.inputs()[0].dtype);
        if (n.needs_input_grad(1)) grads[1] = ops::to_dtype(ops::neg(gd), n.inputs()[1].dtype);
        return grads;
      },
      {input, target}, {reduction_attr(reduction), beta});
}
}  // namespace

Tensor cross_entropy(const Tensor& logits_in, const Tensor& target, const CrossEntropyOptions& options) {
  const Tensor logits = autocast_to_float(logits_in);  // float32 under autocast
  const ops::CrossEntropyOptions o = options;
  Tensor out = ops::cross_entropy(logits, target, o);
  if (!autograd::should_record({logits})) return out;
  return record_class_loss(out, OpKind::cross_entropy, "cross_entropy", logits, target, o);
}

Tensor nll_loss(const Tensor& log_probs_in, const Tensor& target, const CrossEntropyOptions& options) {
  const Tensor log_probs = autocast_to_float(log_probs_in);  // float32 under autocast
  const ops::CrossEntropyOptions o = options;
  Tensor out = ops::nll_loss(log_probs, target, o);
  if (!autograd::should_record({log_probs})) return out;
  return record_class_loss(out, OpKind::nll_loss, "nll_loss", log_probs, target, o);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits_in, const Tensor& target_in, const Tensor& pos_weight,
                                        Reduction reduction) {
  // float32 under autocast
  const Tensor logits = autocast_to_float(logits_in), target = autocast_to_float(target_in);
  Tensor out = ops::binary_cross_entropy_with_logits(logits, target, pos_weight, reduction);
  if (!autograd::should_record({logits, target})) return out;
  return autograd::record(
      out, OpKind::bce_with_logits, "binary_cross_entropy_with_logits", {logits, target},
      [](const Node& n, const Tensor& g) -> Grads {
        const ops::BceGrads d = ops::binary_cross_entropy_with_logits_backward(
            g, n.saved[0], n.saved[1], n.saved[2], attr_reduction(n.attrs[0]), n.needs_input_grad(0),
            n.needs_input_grad(1));
        Grads grads(2);
        if (d.logits.defined()) grads[0] = ops::to_dtype(d.logits, n.inputs()[0].dtype);
        if (d.target.defined()) grads[1] = ops::to_dtype(d.target, n.inputs()[1].dtype);
        return grads;
      },
      {logits, target, pos_weight}, {reduction_attr(reduction)});
}

Tensor mse_loss(const Tensor& input_in, const Tensor& target_in, Reduction reduction) {
  const Tensor input = autocast_to_float(input_in), target = autocast_to_float(target_in);  // float32 under autocast
  Tensor out = ops::mse_loss(input, target, reduction);
  if (!autograd::should_record({input, target})) return out;
  return record_difference_loss(out, OpKind::mse_loss, "mse_loss", input, target, reduction, 0.0,
                                [](const Tensor& d, const Tensor& g, double) { return ops::mul(ops::mul(d, g), 2.0); });
}

Tensor l1_loss(const Tensor& input_in, const Tensor& target_in, Reduction reduction) {
  const Tensor input = autocast_to_float(input_in), target = autocast_to_float(target_in);  // float32 under autocast
  Tensor out = ops::l1_loss(input, target, reduction);
  if (!autograd::should_record({input, target})) return out;
  // sign(0) = 0: no gradient where input == target, as in PyTorch.
  return record_difference_loss(out, OpKind::l1_loss, "l1_loss", input, target, reduction, 0.0,
                                [](const Tensor& d, const Tensor& g, double) { return ops::mul(ops::sign(d), g); });
}

Tensor smooth_l1_loss(const Tensor& input_in, const Tensor& target_in, Reduction reduction, double beta) {
  const Tensor input = autocast_to_float(input_in), target = autocast_to_float(target_in);  // float32 under autocast
  Tensor out = ops::smooth_l1_loss(input, target, reduction, beta);
  if (!autograd::should_record({input, target})) return out;
  return record_difference_loss(
      out, OpKind::smooth_l1_loss, "smooth_l1_loss", input, target, reduction, beta,
      [](const Tensor& d, const Tensor& g, double b) {
        // d / beta inside the quadratic zone |d| < beta, sign(d) outside (beta = 0: always outside).
        const Tensor inside = ops::lt(ops::abs(d), ops::scalar_like(b, d));
        const Tensor slope = b > 0.0 ? ops::where(inside, ops::div(d, b), ops::sign(d)) : ops::sign(d);
        return ops::mul(slope, g);
      });
}

}  // namespace loupe
