// Differentiable views. See view.hpp.
#include "autograd/functions/view.hpp"

#include <algorithm>

#include "autograd/grad_utils.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/view.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

// Every shape-only change (view, reshape, squeeze, unsqueeze, flatten) has the same backward:
// reshape the gradient to the input's shape.
Tensor record_reshape_like(const Tensor& out, const Tensor& x, const char* name) {
  if (!autograd::should_record({x})) return out;
  return autograd::record(out, OpKind::view, name, {x}, [](const Node& n, const Tensor& g) -> Grads {
    return {ops::reshape(g, n.inputs()[0].shape)};
  });
}
}  // namespace

Tensor view(const Tensor& x, const Shape& shape) { return record_reshape_like(ops::view(x, shape), x, "view"); }
Tensor reshape(const Tensor& x, const Shape& shape) {
  return record_reshape_like(ops::reshape(x, shape), x, "reshape");
}
Tensor squeeze(const Tensor& x) { return record_reshape_like(ops::squeeze(x), x, "squeeze"); }
Tensor squeeze(const Tensor& x, int64_t dim) { return record_reshape_like(ops::squeeze(x, dim), x, "squeeze"); }
Tensor unsqueeze(const Tensor& x, int64_t dim) {
  return record_reshape_like(ops::unsqueeze(x, dim), x, "unsqueeze");
}
Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  return record_reshape_like(ops::flatten(x, start_dim, end_dim), x, "flatten");
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor out = ops::permute(x, dims);
  if (!autograd::should_record({x})) return out;
  std::vector<double> attrs;
  for (int64_t d : dims) attrs.push_back(static_cast<double>(wrap_dim(d, x.dim(), "permute")));
  return autograd::record(
      out, OpKind::permute, "permute", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        std::vector<int64_t> inverse(n.attrs.size());
        for (size_t i = 0; i < n.attrs.size(); ++i) inverse[static_cast<size_t>(n.attrs[i])] = static_cast<int64_t>(i);
        return {ops::permute(g, inverse)};
      },
      {}, attrs);
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  if (x.dim() == 0) return x;
  std::vector<int64_t> dims(static_cast<size_t>(x.dim()));
  for (size_t i = 0; i < dims.size(); ++i) dims[i] = static_cast<int64_t>(i);
  std::swap(dims[static_cast<size_t>(wrap_dim(dim0, x.dim(), "transpose"))],
            dims[static_cast<size_t>(wrap_dim(dim1, x.dim(), "transpose"))]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor out = ops::slice(x, dim, start, end, step);
  if (!autograd::should_record({x})) return out;
  // Backward writes g into the same window of a zero tensor; resolve start as ops::slice does.
  const int64_t d = wrap_dim(dim, x.dim(), "slice");
  const int64_t size = x.shape()[static_cast<size_t>(d)];
  const int64_t begin = std::clamp<int64_t>(start < 0 ? start + size : start, 0, size);
  return autograd::record(
      out, OpKind::slice, "slice", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        Tensor grad = zeros(n.inputs()[0].shape, g.dtype(), g.device());
        const auto d = static_cast<int64_t>(n.attrs[0]);
        const auto b = static_cast<int64_t>(n.attrs[1]);
        const auto s = static_cast<int64_t>(n.attrs[2]);
        ops::copy_(ops::slice(grad, d, b, b + s * g.shape()[static_cast<size_t>(d)], s), g);
        return {grad};
      },
      {}, {static_cast<double>(d), static_cast<double>(begin), static_cast<double>(step)});
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  const int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), "narrow");
  if (start < 0 && x.dim() > 0) start += x.shape()[static_cast<size_t>(d)];
  ops::narrow(x, dim, start, length);  // validates the range with narrow's own message
  return slice(x, dim, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  LOUPE_CHECK(x.dim() > 0, "select: cannot select from a 0-d tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "select");
  const int64_t size = x.shape()[static_cast<size_t>(d)];
  LOUPE_CHECK(index >= -size && index < size, "select: index ", index, " out of range for dim ", d,
              " of shape ", shape_str(x.shape()));
  if (index < 0) index += size;
  return squeeze(slice(x, d, index, index + 1, 1), d);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Tensor out = ops::expand(x, shape);
  if (!autograd::should_record({x})) return out;
  return autograd::record(out, OpKind::expand, "expand", {x}, [](const Node& n, const Tensor& g) -> Grads {
    return {ops::sum_to(g, n.inputs()[0].shape)};
  });
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) { return expand(x, shape); }

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  return clone(x);
}

Tensor clone(const Tensor& x) {
  Tensor out = ops::clone(x);
  if (!autograd::should_record({x})) return out;
  return autograd::record(out, OpKind::copy, "clone", {x}, [](const Node&, const Tensor& g) -> Grads {
    return {g};
  });
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = ops::to_dtype(x, dtype);
  if (!autograd::should_record({x}) || !is_floating(dtype)) return out;
  return autograd::record(out, OpKind::to_dtype, "to_dtype", {x}, [](const Node& n, const Tensor& g) -> Grads {
    return {ops::to_dtype(g, n.inputs()[0].dtype)};
  });
}

}  // namespace loupe
