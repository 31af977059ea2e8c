// Differentiable reductions. See reduce.hpp.
#include "autograd/functions/reduce.hpp"

#include "autograd/record.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/view.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

// g has the reduced shape (keepdim or not); give it back the reduced dims as size 1 so it
// broadcasts against the input.
Tensor unsqueeze_reduced(const Tensor& g, const Shape& input_shape, const Dims& dims, bool keepdim) {
  if (keepdim) return g;
  return ops::reshape(g, ops::reduced_shape(input_shape, dims, /*keepdim=*/true));
}

std::vector<double> dims_attrs(const Dims& dims, bool keepdim) {
  std::vector<double> attrs{keepdim ? 1.0 : 0.0};
  for (int64_t d : dims) attrs.push_back(static_cast<double>(d));
  return attrs;
}

Dims attrs_dims(const Node& n) {
  Dims dims;
  for (size_t i = 1; i < n.attrs.size(); ++i) dims.push_back(static_cast<int64_t>(n.attrs[i]));
  return dims;
}
}  // namespace

Tensor sum(const Tensor& x, const Dims& dims_in, bool keepdim) {
  Tensor out = ops::sum(x, dims_in, keepdim);
  if (!autograd::should_record({x})) return out;
  const Dims dims = ops::normalize_dims(dims_in, x.dim(), "sum");
  return autograd::record(
      out, OpKind::sum, "sum", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        const Shape& shape = n.inputs()[0].shape;
        const Tensor gk = unsqueeze_reduced(g, shape, attrs_dims(n), n.attrs[0] != 0.0);
        return {ops::contiguous(ops::expand(gk, shape))};
      },
      {}, dims_attrs(dims, keepdim));
}

Tensor mean(const Tensor& x, const Dims& dims_in, bool keepdim) {
  Tensor out = ops::mean(x, dims_in, keepdim);
  if (!autograd::should_record({x})) return out;
  const Dims dims = ops::normalize_dims(dims_in, x.dim(), "mean");
  return autograd::record(
      out, OpKind::mean, "mean", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        const Shape& shape = n.inputs()[0].shape;
        const Tensor gk = unsqueeze_reduced(g, shape, attrs_dims(n), n.attrs[0] != 0.0);
        const double count = static_cast<double>(shape_numel(shape)) / static_cast<double>(std::max<int64_t>(g.numel(), 1));
        return {ops::contiguous(ops::expand(ops::div(gk, count), shape))};
      },
      {}, dims_attrs(dims, keepdim));
}

}  // namespace loupe
