// Differentiable joining, splitting and padding. See join.hpp.
#include "autograd/functions/join.hpp"

#include "autograd/functions/view.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/view.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

bool skipped_by_cat(const Tensor& t) { return t.dim() == 1 && t.shape()[0] == 0; }

// Gradients for the inputs of a join along dim `d` (attrs[0]) whose input i covered
// `take(g, i, offset, size)` of the output, with size attrs[i + 1] (-1: an empty 1-d input that
// cat skipped, which gets an empty gradient).
template <typename Take>
Grads split_gradient(const Node& n, const Tensor& g, Take take) {
  const auto d = static_cast<int64_t>(n.attrs[0]);
  Grads grads;
  int64_t offset = 0;
  for (size_t i = 0; i < n.inputs().size(); ++i) {
    const auto size = static_cast<int64_t>(n.attrs[i + 1]);
    const auto& edge = n.inputs()[i];
    if (!n.needs_input_grad(i)) {
      grads.emplace_back();
    } else if (size < 0) {
      grads.push_back(zeros(edge.shape, edge.dtype, g.device()));
    } else {
      grads.push_back(ops::to_dtype(take(g, d, offset, size), edge.dtype));
    }
    offset += std::max<int64_t>(size, 0);
  }
  return grads;
}
}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  Tensor out = ops::cat(tensors, dim);
  if (!autograd::should_record(tensors)) return out;
  // attrs = {dim, each input's size along dim (-1 where cat skipped it)}
  bool any_joined = false;
  for (const Tensor& t : tensors) any_joined = any_joined || !skipped_by_cat(t);
  const int64_t d = any_joined ? wrap_dim(dim, out.dim(), "cat") : 0;
  std::vector<double> attrs{static_cast<double>(d)};
  for (const Tensor& t : tensors) {
    attrs.push_back(skipped_by_cat(t) ? -1.0 : static_cast<double>(t.shape()[static_cast<size_t>(d)]));
  }
  return autograd::record(
      out, OpKind::cat, "cat", tensors,
      [](const Node& n, const Tensor& g) -> Grads {
        return split_gradient(n, g, [](const Tensor& g, int64_t d, int64_t offset, int64_t size) {
          return ops::narrow(g, d, offset, size);
        });
      },
      {}, attrs);
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  Tensor out = ops::stack(tensors, dim);
  if (!autograd::should_record(tensors)) return out;
  // A cat along a new dim: input i's gradient is slice i of g along it.
  const int64_t d = wrap_dim(dim, out.dim(), "stack");
  std::vector<double> attrs(tensors.size() + 1, 1.0);
  attrs[0] = static_cast<double>(d);
  return autograd::record(
      out, OpKind::cat, "stack", tensors,
      [](const Node& n, const Tensor& g) -> Grads {
        return split_gradient(n, g, [](const Tensor& g, int64_t d, int64_t offset, int64_t) {
          return ops::select(g, d, offset);
        });
      },
      {}, attrs);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  std::vector<Tensor> pieces = ops::split(x, sizes, dim);  // validates the sizes
  if (!autograd::should_record({x})) return pieces;
  // Each piece is its own differentiable slice, so each carries its own node.
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t offset = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    pieces[i] = slice(x, d, offset, offset + sizes[i]);
    offset += sizes[i];
  }
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  LOUPE_CHECK(x.dim() > 0, "split: expects at least a 1-dimensional tensor");
  const int64_t size = x.shape()[static_cast<size_t>(wrap_dim(dim, x.dim(), "split"))];
  return split(x, ops::split_sizes(size, split_size), dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  LOUPE_CHECK(x.dim() > 0, "chunk: expects at least a 1-dimensional tensor");
  const int64_t size = x.shape()[static_cast<size_t>(wrap_dim(dim, x.dim(), "chunk"))];
  return split(x, ops::chunk_sizes(size, chunks), dim);
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  Tensor out = ops::pad(x, pads, mode, value);
  if (!autograd::should_record({x})) return out;
  // attrs = {mode, value, pads...}
  std::vector<double> attrs{static_cast<double>(mode), value};
  for (int64_t p : pads) attrs.push_back(static_cast<double>(p));
  return autograd::record(
      out, OpKind::pad, "pad", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        const auto mode = static_cast<PadMode>(static_cast<int>(n.attrs[0]));
        std::vector<int64_t> pads;
        for (size_t i = 2; i < n.attrs.size(); ++i) pads.push_back(static_cast<int64_t>(n.attrs[i]));
        if (mode == PadMode::constant) {
          // Crop the padding away again (and zero-fill what a negative pad cropped).
          for (int64_t& p : pads) p = -p;
          return {ops::pad(g, pads, PadMode::constant, 0.0)};
        }
        return {ops::pad_backward(g, n.inputs()[0].shape, pads, mode)};
      },
      {}, attrs);
}

}  // namespace loupe
