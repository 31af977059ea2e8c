// Differentiable normalisation layers. See norm.hpp.
#include "autograd/functions/norm.hpp"

#include "autograd/functions/unary.hpp"
#include "autograd/autocast.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/norm.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

ops::NormNeeds needs_of(const Node& n) {
  return {n.needs_input_grad(0), n.needs_input_grad(1), n.needs_input_grad(2)};
}

// Each gradient in its input's dtype (undefined stays undefined).
Grads as_input_dtypes(const Node& n, const ops::NormGrads& g) {
  Grads out{g.x, g.weight, g.bias};
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].defined()) out[i] = ops::to_dtype(out[i], n.inputs()[i].dtype);
  }
  return out;
}
}  // namespace

// Batch norm is not on autocast's float32 list (as in PyTorch): a bfloat16 x stays bfloat16 (the
// CUDA kernels take it with float32 parameters, statistics in float64) and so does the output;
// the gradients come back in each input's dtype (bf16 for x, float32 for weight and bias).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  ops::NormForward f = ops::batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps);
  if (!autograd::should_record({x, weight, bias})) return f.out;
  return autograd::record(
      f.out, OpKind::batch_norm, "batch_norm", {x, weight, bias},
      [](const Node& n, const Tensor& g) -> Grads {
        const bool train = n.attrs[0] != 0.0;
        return as_input_dtypes(n, ops::batch_norm_backward(g, n.saved[0], n.saved[1], n.saved[2], n.saved[3], train,
                                                           needs_of(n)));
      },
      {x, f.mean, f.rstd, weight}, {training ? 1.0 : 0.0, momentum, eps});
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps) {
  if (!autograd::should_record({x, weight, bias})) {
    return ops::batch_norm_relu(x, running_mean, running_var, weight, bias, training, momentum, eps);
  }
  return loupe::relu(loupe::batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps));
}

namespace {
// layer_norm and rms_norm share their node: mean is undefined for rms_norm.
Tensor record_row_norm(const ops::NormForward& f, OpKind kind, const char* name, const Tensor& x,
                       const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  std::vector<double> attrs{eps};
  for (int64_t d : normalized_shape) attrs.push_back(static_cast<double>(d));
  return autograd::record(
      f.out, kind, name, {x, weight, bias},
      [](const Node& n, const Tensor& g) -> Grads {
        Shape normalized_shape;
        for (size_t i = 1; i < n.attrs.size(); ++i) normalized_shape.push_back(static_cast<int64_t>(n.attrs[i]));
        return as_input_dtypes(n, ops::layer_norm_backward(g, n.saved[0], normalized_shape, n.saved[1], n.saved[2],
                                                           n.saved[3], needs_of(n)));
      },
      {x, f.mean, f.rstd, weight}, attrs);
}
}  // namespace

Tensor layer_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const Tensor x = autocast_to_float(x_in);  // float32 under autocast
  ops::NormForward f = ops::layer_norm_forward(x, normalized_shape, weight, bias, eps);
  if (!autograd::should_record({x, weight, bias})) return f.out;
  return record_row_norm(f, OpKind::layer_norm, "layer_norm", x, normalized_shape, weight, bias, eps);
}

Tensor rms_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight, double eps) {
  const Tensor x = autocast_to_float(x_in);  // float32 under autocast
  ops::NormForward f = ops::rms_norm_forward(x, normalized_shape, weight, eps);
  if (!autograd::should_record({x, weight})) return f.out;
  return record_row_norm(f, OpKind::rms_norm, "rms_norm", x, normalized_shape, weight, Tensor(), eps);
}

}  // namespace loupe
