// Differentiable softmax and log_softmax. See softmax.hpp.
#include "autograd/functions/softmax.hpp"

#include "autograd/autocast.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/softmax.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;
}  // namespace

// saved = {x, y}, attrs = {dim} (wrapped): the layout rules rely on (autograd/node.hpp). Backward
// only needs y.
Tensor softmax(const Tensor& x_in, int64_t dim) {
  const Tensor x = autocast_to_float(x_in);  // float32 under autocast
  Tensor y = ops::softmax(x, dim);
  if (!autograd::should_record({x})) return y;
  const int64_t d = wrap_dim(dim, x.dim(), "softmax");
  return autograd::record(
      y, OpKind::softmax, "softmax", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        return {ops::softmax_backward(n.saved[1], g, static_cast<int64_t>(n.attrs[0]))};
      },
      {x, y}, {static_cast<double>(d)});
}

Tensor log_softmax(const Tensor& x_in, int64_t dim) {
  const Tensor x = autocast_to_float(x_in);  // float32 under autocast
  Tensor y = ops::log_softmax(x, dim);
  if (!autograd::should_record({x})) return y;
  const int64_t d = wrap_dim(dim, x.dim(), "log_softmax");
  return autograd::record(
      y, OpKind::log_softmax, "log_softmax", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        return {ops::log_softmax_backward(n.saved[1], g, static_cast<int64_t>(n.attrs[0]))};
      },
      {x, y}, {static_cast<double>(d)});
}

}  // namespace loupe
