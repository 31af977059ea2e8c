// Differentiable reductions. See reduce.hpp.
//
// Node layout: attrs = {leading parameters..., keepdim, dims...} with dims already wrapped and
// sorted; the leading parameter is the correction of var/std and p of norm.
#include "autograd/functions/reduce.hpp"

#include <algorithm>
#include <cmath>

#include "autograd/autocast.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/sort.hpp"
#include "tensor/ops/unary.hpp"
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

std::vector<double> dims_attrs(const Dims& dims, bool keepdim, std::vector<double> leading = {}) {
  std::vector<double> attrs = std::move(leading);
  attrs.push_back(keepdim ? 1.0 : 0.0);
  for (int64_t d : dims) attrs.push_back(static_cast<double>(d));
  return attrs;
}

// The dims and keepdim of a node whose attrs have `leading` parameters before keepdim.
Dims attrs_dims(const Node& n, size_t leading = 0) {
  Dims dims;
  for (size_t i = leading + 1; i < n.attrs.size(); ++i) dims.push_back(static_cast<int64_t>(n.attrs[i]));
  return dims;
}

bool attrs_keepdim(const Node& n, size_t leading = 0) { return n.attrs[leading] != 0.0; }

// x / y where y != 0, else 0 (the convention of PyTorch's norm/std backward at a zero result).
Tensor div_or_zero(const Tensor& x, const Tensor& y) {
  const Tensor zero = ops::scalar_like(0.0, x);
  return ops::where(ops::eq(y, zero), zero, ops::div(x, y));
}

// 1 where x equals the (broadcast) extreme y, else 0, divided by the number of such ties: how
// amax/amin and the inf-norm share their gradient among equal extremes, as PyTorch does.
Tensor tie_weights(const Tensor& x, const Tensor& yk, const Dims& dims, DType dtype) {
  const Tensor mask = ops::to_dtype(ops::eq(x, yk), dtype);
  return ops::div(mask, ops::sum(mask, dims, /*keepdim=*/true));
}
}  // namespace

Tensor sum(const Tensor& x_in, const Dims& dims_in, bool keepdim) {
  const Tensor x = autocast_to_float(x_in);  // float32 under autocast
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

Tensor mean(const Tensor& x_in, const Dims& dims_in, bool keepdim) {
  const Tensor x = autocast_to_float(x_in);  // float32 under autocast
  Tensor out = ops::mean(x, dims_in, keepdim);
  if (!autograd::should_record({x})) return out;
  const Dims dims = ops::normalize_dims(dims_in, x.dim(), "mean");
  return autograd::record(
      out, OpKind::mean, "mean", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        const Shape& shape = n.inputs()[0].shape;
        const Tensor gk = unsqueeze_reduced(g, shape, attrs_dims(n), n.attrs[0] != 0.0);
        const double count =
            static_cast<double>(shape_numel(shape)) / static_cast<double>(std::max<int64_t>(g.numel(), 1));
        return {ops::contiguous(ops::expand(ops::div(gk, count), shape))};
      },
      {}, dims_attrs(dims, keepdim));
}

namespace {

// max/min over one dim: the gradient goes to the one element each output was taken from.
ops::ValuesIndices record_pick(ops::ValuesIndices out, const Tensor& x, int64_t dim, bool keepdim, OpKind kind,
                               const char* name) {
  if (!autograd::should_record({x})) return out;
  const int64_t d = wrap_dim(dim, x.dim(), name);
  out.values = autograd::record(
      out.values, kind, name, {x},
      [](const Node& n, const Tensor& g) -> Grads {
        const Shape& shape = n.inputs()[0].shape;
        if (shape.empty()) return {g};  // max of a 0-d tensor is the tensor
        const auto along = static_cast<int64_t>(n.attrs[0]);
        const bool keep = n.attrs[1] != 0.0;
        const Tensor& indices = n.saved[0];
        return {ops::sort_backward(keep ? g : ops::unsqueeze(g, along),
                                   keep ? indices : ops::unsqueeze(indices, along), along, shape)};
      },
      {out.indices}, {static_cast<double>(d), keepdim ? 1.0 : 0.0});
  return out;
}

// amax/amin over several dims: ties share the gradient evenly.
Tensor record_extreme(const Tensor& out, const Tensor& x, const Dims& dims_in, bool keepdim, OpKind kind,
                      const char* name) {
  if (!autograd::should_record({x})) return out;
  const Dims dims = ops::normalize_dims(dims_in, x.dim(), name);
  return autograd::record(
      out, kind, name, {x},
      [](const Node& n, const Tensor& g) -> Grads {
        const Shape& shape = n.inputs()[0].shape;
        const Dims dims = attrs_dims(n);
        const bool keep = attrs_keepdim(n);
        const Tensor yk = unsqueeze_reduced(n.saved[1], shape, dims, keep);
        const Tensor gk = unsqueeze_reduced(g, shape, dims, keep);
        return {ops::mul(gk, tie_weights(n.saved[0], yk, dims, g.dtype()))};
      },
      {x, out}, dims_attrs(dims, keepdim));
}

// var and std share one node layout: saved {x, y}, attrs {correction, keepdim, dims...}.
// d var / dx = 2 (x - mean) / (N - correction); d std / dx = (x - mean) / ((N - correction) std).
Tensor record_variance(const Tensor& out, const Tensor& x, const Dims& dims_in, int64_t correction, bool keepdim,
                       bool is_std, const char* name) {
  if (!autograd::should_record({x})) return out;
  const Dims dims = ops::normalize_dims(dims_in, x.dim(), name);
  auto backward = [](const Node& n, const Tensor& g) -> Grads {
    const bool is_std = n.kind() == OpKind::std;
    const Tensor& x = n.saved[0];
    const Dims dims = attrs_dims(n, 1);
    const bool keep = attrs_keepdim(n, 1);
    int64_t count = 1;  // elements per output
    for (size_t d = 0; d < x.shape().size(); ++d) {
      if (dims.empty() || std::find(dims.begin(), dims.end(), static_cast<int64_t>(d)) != dims.end()) {
        count *= x.shape()[d];
      }
    }
    const double divisor = std::max(0.0, static_cast<double>(count) - n.attrs[0]);
    const Tensor centred = ops::sub(x, ops::mean(x, dims, /*keepdim=*/true));
    const Tensor gk = unsqueeze_reduced(g, x.shape(), dims, keep);
    if (!is_std) return {ops::mul(ops::mul(gk, centred), 2.0 / divisor)};
    const Tensor yk = unsqueeze_reduced(n.saved[1], x.shape(), dims, keep);
    return {ops::mul(div_or_zero(gk, ops::mul(yk, divisor)), centred)};
  };
  const std::vector<Tensor> saved = is_std ? std::vector<Tensor>{x, out} : std::vector<Tensor>{x};
  return autograd::record(out, is_std ? OpKind::std : OpKind::var, name, {x}, backward, saved,
                          dims_attrs(dims, keepdim, {static_cast<double>(correction)}));
}

// d ||x||_p / dx: sign(x) |x|^(p-1) / ||x||^(p-1) in general, x / ||x|| for p = 2, sign(x) for
// p = 1, sign(x) shared among the ties at max |x| for p = inf, and 0 for p = 0. A zero norm
// gives a zero gradient.
Grads norm_backward(const Node& n, const Tensor& g) {
  const Tensor& x = n.saved[0];
  const double p = n.attrs[0];
  const Dims dims = attrs_dims(n, 1);
  const bool keep = attrs_keepdim(n, 1);
  const Tensor gk = unsqueeze_reduced(g, x.shape(), dims, keep);
  const Tensor yk = unsqueeze_reduced(n.saved[1], x.shape(), dims, keep);
  if (p == 0.0) return {zeros_like(x)};
  if (p == 1.0) return {ops::mul(gk, ops::sign(x))};
  if (p == 2.0) return {ops::mul(div_or_zero(gk, yk), x)};
  if (std::isinf(p)) return {ops::mul(ops::mul(gk, ops::sign(x)), tie_weights(ops::abs(x), yk, dims, g.dtype()))};
  const Tensor zero = ops::scalar_like(0.0, x);
  // sign(x) |x|^(p-1), written as 0 at x = 0 (where p < 1 would give 0 * inf).
  const Tensor scaled = ops::where(ops::eq(x, zero), zero, ops::mul(ops::sign(x), ops::pow(ops::abs(x), p - 1.0)));
  return {ops::mul(scaled, div_or_zero(gk, ops::pow(yk, p - 1.0)))};
}

}  // namespace

ops::ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) {
  return record_pick(ops::max(x, dim, keepdim), x, dim, keepdim, OpKind::max, "max");
}

ops::ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) {
  return record_pick(ops::min(x, dim, keepdim), x, dim, keepdim, OpKind::min, "min");
}

Tensor amax(const Tensor& x, const Dims& dims, bool keepdim) {
  return record_extreme(ops::amax(x, dims, keepdim), x, dims, keepdim, OpKind::amax, "amax");
}

Tensor amin(const Tensor& x, const Dims& dims, bool keepdim) {
  return record_extreme(ops::amin(x, dims, keepdim), x, dims, keepdim, OpKind::amin, "amin");
}

Tensor var(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  return record_variance(ops::var(x, dims, correction, keepdim), x, dims, correction, keepdim, false, "var");
}

Tensor std(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  return record_variance(ops::std(x, dims, correction, keepdim), x, dims, correction, keepdim, true, "std");
}

Tensor norm(const Tensor& x_in, double p, const Dims& dims_in, bool keepdim) {
  const Tensor x = autocast_to_float(x_in);  // float32 under autocast
  Tensor out = ops::norm(x, p, dims_in, keepdim);
  if (!autograd::should_record({x})) return out;
  const Dims dims = ops::normalize_dims(dims_in, x.dim(), "norm");
  return autograd::record(out, OpKind::norm, "norm", {x}, norm_backward, {x, out}, dims_attrs(dims, keepdim, {p}));
}

// d logsumexp / dx = exp(x - logsumexp(x)), the softmax over the reduced dims.
Tensor logsumexp(const Tensor& x_in, const Dims& dims_in, bool keepdim) {
  const Tensor x = autocast_to_float(x_in);  // float32 under autocast
  Tensor out = ops::logsumexp(x, dims_in, keepdim);
  if (!autograd::should_record({x})) return out;
  const Dims dims = ops::normalize_dims(dims_in, x.dim(), "logsumexp");
  return autograd::record(
      out, OpKind::logsumexp, "logsumexp", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        const Tensor& x = n.saved[0];
        const Dims dims = attrs_dims(n);
        const bool keep = attrs_keepdim(n);
        const Tensor yk = unsqueeze_reduced(n.saved[1], x.shape(), dims, keep);
        return {ops::mul(unsqueeze_reduced(g, x.shape(), dims, keep), ops::exp(ops::sub(x, yk)))};
      },
      {x, out}, dims_attrs(dims, keepdim));
}

// Each x[i] appears in every out[j] with j >= i, so its gradient is the reversed running sum of g.
Tensor cumsum(const Tensor& x_in, int64_t dim) {
  const Tensor x = autocast_to_float(x_in);  // float32 under autocast
  Tensor out = ops::cumsum(x, dim);
  if (!autograd::should_record({x})) return out;
  const int64_t d = wrap_dim(dim, x.dim(), "cumsum");
  return autograd::record(
      out, OpKind::cumsum, "cumsum", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        return {ops::reverse_cumsum(g, static_cast<int64_t>(n.attrs[0]))};
      },
      {}, {static_cast<double>(d)});
}

}  // namespace loupe
