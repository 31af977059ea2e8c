// Differentiable indexing ops. See index.hpp.
#include "autograd/functions/index.hpp"

#include <algorithm>

#include "autograd/grad_utils.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/view.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

// dim wrapped as the gather/scatter family does (a 0-d tensor counts as 1-d).
double wrapped(int64_t dim, const Tensor& x, const char* op) {
  return static_cast<double>(wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op));
}

// t (no larger than `shape` in any dim) written into the leading corner of a zero tensor of
// `shape`: the gradient of scatter_add's src when index covers only part of src.
Tensor into_zeros(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  Tensor out = zeros(shape, t.dtype(), t.device());
  if (t.numel() == 0) return out;
  const Tensor src = t.dim() == 0 ? ops::reshape(t, {1}) : t;
  Tensor window = shape.empty() ? ops::reshape(out, {1}) : out;
  for (int64_t d = 0; d < src.dim(); ++d) window = ops::slice(window, d, 0, src.shape()[static_cast<size_t>(d)]);
  ops::copy_(window, src);
  return out;
}
}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = ops::gather(x, dim, index);
  if (!autograd::should_record({x})) return out;
  return autograd::record(
      out, OpKind::gather, "gather", {x, index},
      [](const Node& n, const Tensor& g) -> Grads {
        const auto d = static_cast<int64_t>(n.attrs[0]);
        return {ops::scatter_add(zeros(n.inputs()[0].shape, g.dtype(), g.device()), d, n.saved[0], g), Tensor()};
      },
      {index}, {wrapped(dim, x, "gather")});
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = ops::scatter_add(x, dim, index, src);
  if (!autograd::should_record({x, src})) return out;
  return autograd::record(
      out, OpKind::scatter_add, "scatter_add", {x, index, src},
      [](const Node& n, const Tensor& g) -> Grads {
        const auto d = static_cast<int64_t>(n.attrs[0]);
        const Tensor& index = n.saved[0];
        Tensor g_src;
        if (n.needs_input_grad(2)) {
          const Shape& src_shape = n.inputs()[2].shape;
          // Only the part of src that index covers was read; the rest gets zero.
          g_src = index.numel() == 0 ? zeros(src_shape, g.dtype(), g.device()) : into_zeros(ops::gather(g, d, index), src_shape);
        }
        return {n.needs_input_grad(0) ? g : Tensor(), Tensor(), g_src};
      },
      {index}, {wrapped(dim, x, "scatter_add")});
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = ops::index_select(x, dim, index);
  if (!autograd::should_record({x})) return out;
  return autograd::record(
      out, OpKind::index_select, "index_select", {x, index},
      [](const Node& n, const Tensor& g) -> Grads {
        const auto d = static_cast<int64_t>(n.attrs[0]);
        const Tensor zero = zeros(n.inputs()[0].shape, g.dtype(), g.device());
        return {ops::index_add(zero, d, n.saved[0], g), Tensor()};
      },
      {index}, {wrapped(dim, x, "index_select")});
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha) {
  Tensor out = ops::index_add(x, dim, index, src, alpha);
  if (!autograd::should_record({x, src})) return out;
  return autograd::record(
      out, OpKind::index_add, "index_add", {x, index, src},
      [](const Node& n, const Tensor& g) -> Grads {
        const auto d = static_cast<int64_t>(n.attrs[0]);
        const double alpha = n.attrs[1];
        Tensor g_src;
        if (n.needs_input_grad(2)) {
          g_src = ops::reshape(ops::index_select(g, d, n.saved[0]), n.inputs()[2].shape);
          if (alpha != 1.0) g_src = ops::mul(g_src, alpha);
        }
        return {n.needs_input_grad(0) ? g : Tensor(), Tensor(), g_src};
      },
      {index}, {wrapped(dim, x, "index_add"), alpha});
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  Tensor out = ops::masked_fill(x, mask, value);
  if (!autograd::should_record({x})) return out;
  return autograd::record(
      out, OpKind::masked_fill, "masked_fill", {x, mask},
      [](const Node& n, const Tensor& g) -> Grads {
        // Filled positions no longer depend on x; the rest pass g through.
        const Tensor kept = ops::where(n.saved[0], ops::scalar_like(0.0, g), g);
        return {autograd::reduce_to_input(n, 0, kept), Tensor()};
      },
      {mask}, {value});
}

Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  Tensor out = ops::embedding(weight, indices, padding_idx);
  if (!autograd::should_record({weight})) return out;
  return autograd::record(
      out, OpKind::embedding, "embedding", {weight, indices},
      [](const Node& n, const Tensor& g) -> Grads {
        const int64_t num_weights = n.inputs()[0].shape[0];
        return {ops::embedding_backward(g, n.saved[0], num_weights, static_cast<int64_t>(n.attrs[0])), Tensor()};
      },
      {indices}, {static_cast<double>(padding_idx)});
}

Tensor one_hot(const Tensor& indices, int64_t num_classes) { return ops::one_hot(indices, num_classes); }

}  // namespace loupe
