// Differentiable 2-d pooling. See pool.hpp.
#include "autograd/functions/pool.hpp"

#include "autograd/record.hpp"

namespace loupe {

namespace {

using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

// Stride 0 means "same as the kernel"; nodes store the stride actually used.
Pool2dParams resolved(const Pool2dParams& params) {
  Pool2dParams p = params;
  for (int i = 0; i < 2; ++i) {
    if (p.stride[i] == 0) p.stride[i] = p.kernel[i];
  }
  return p;
}

}  // namespace

ops::ValuesIndices max_pool2d_with_indices(const Tensor& x, const Pool2dParams& params) {
  ops::ValuesIndices out = ops::max_pool2d_with_indices(x, params);
  if (!autograd::should_record({x})) return out;
  const Pool2dParams p = resolved(params);
  // Each output's gradient goes to the input element its window picked.
  out.values = autograd::record(
      out.values, OpKind::max_pool2d, "max_pool2d", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        return {ops::max_pool2d_backward(g, n.saved[2], n.inputs()[0].shape)};
      },
      {x, out.values, out.indices},
      {double(p.kernel[0]), double(p.kernel[1]), double(p.stride[0]), double(p.stride[1]), double(p.padding[0]),
       double(p.padding[1]), double(p.dilation[0]), double(p.dilation[1]), p.ceil_mode ? 1.0 : 0.0});
  return out;
}

// Qualified: Pool2dParams lives in loupe::ops, so an unqualified call would also find
// ops::max_pool2d_with_indices by argument-dependent lookup.
Tensor max_pool2d(const Tensor& x, const Pool2dParams& params) {
  return loupe::max_pool2d_with_indices(x, params).values;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params) {
  Tensor out = ops::avg_pool2d(x, params);
  if (!autograd::should_record({x})) return out;
  const Pool2dParams p = resolved(params);
  return autograd::record(
      out, OpKind::avg_pool2d, "avg_pool2d", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        Pool2dParams q;
        q.kernel = {int64_t(n.attrs[0]), int64_t(n.attrs[1])};
        q.stride = {int64_t(n.attrs[2]), int64_t(n.attrs[3])};
        q.padding = {int64_t(n.attrs[4]), int64_t(n.attrs[5])};
        q.ceil_mode = n.attrs[6] != 0.0;
        q.count_include_pad = n.attrs[7] != 0.0;
        return {ops::avg_pool2d_backward(g, n.inputs()[0].shape, q)};
      },
      {},
      {double(p.kernel[0]), double(p.kernel[1]), double(p.stride[0]), double(p.stride[1]), double(p.padding[0]),
       double(p.padding[1]), p.ceil_mode ? 1.0 : 0.0, p.count_include_pad ? 1.0 : 0.0});
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  Tensor out = ops::adaptive_avg_pool2d(x, output_size);
  if (!autograd::should_record({x})) return out;
  // The output size is g's own shape, so the node needs nothing but the input's shape.
  return autograd::record(
      out, OpKind::adaptive_avg_pool2d, "adaptive_avg_pool2d", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        return {ops::adaptive_avg_pool2d_backward(g, n.inputs()[0].shape)};
      },
      {}, {double(output_size[0]), double(output_size[1])});
}

}  // namespace loupe
