// Differentiable conv2d. See conv.hpp.
//   grad_x      = conv2d_backward_input(g, weight)   (col2im of weight^T @ g)
//   grad_weight = conv2d_backward_weight(g, x)       (g @ im2col(x)^T, summed over samples)
//   grad_bias   = g summed over N, Ho, Wo
#include "autograd/functions/conv.hpp"

#include "autograd/autocast.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/reduce.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

std::vector<double> params_to_attrs(const Conv2dParams& p) {
  return {double(p.stride[0]),   double(p.stride[1]),   double(p.padding[0]), double(p.padding[1]),
          double(p.dilation[0]), double(p.dilation[1]), double(p.groups)};
}

Conv2dParams attrs_to_params(const std::vector<double>& a) {
  Conv2dParams p;
  p.stride = {int64_t(a[0]), int64_t(a[1])};
  p.padding = {int64_t(a[2]), int64_t(a[3])};
  p.dilation = {int64_t(a[4]), int64_t(a[5])};
  p.groups = int64_t(a[6]);
  return p;
}
}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, const Conv2dParams& params) {
  // bf16 under autocast; the casts' backward gives the float32 parameters float32 gradients.
  const Tensor x = autocast_to_lower(x_in), weight = autocast_to_lower(weight_in), bias = autocast_to_lower(bias_in);
  Tensor out = ops::conv2d(x, weight, bias, params);
  if (!autograd::should_record({x, weight, bias})) return out;
  return autograd::record(
      out, OpKind::conv2d, "conv2d", {x, weight, bias},
      [](const Node& n, const Tensor& g) -> Grads {
        const Tensor& x = n.saved[0];
        const Tensor& w = n.saved[1];
        const Conv2dParams p = attrs_to_params(n.attrs);
        Tensor gx, gw, gb;
        if (n.needs_input_grad(0)) gx = ops::conv2d_backward_input(g, w, x.shape(), p);
        if (n.needs_input_grad(1)) gw = ops::conv2d_backward_weight(g, x, w.shape(), p);
        if (n.needs_input_grad(2)) gb = g.dim() == 4 ? ops::sum(g, {0, 2, 3}) : ops::sum(g, {1, 2});
        return {gx, gw, gb};
      },
      {x, weight}, params_to_attrs(params));
}

}  // namespace loupe
