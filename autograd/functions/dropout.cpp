// Differentiable dropout. See dropout.hpp.
#include "autograd/functions/dropout.hpp"

#include "autograd/record.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/random_ops.hpp"

namespace loupe {

using autograd::Node;
using autograd::OpKind;

Tensor dropout(const Tensor& x, double p, bool training, Generator* generator) {
  LOUPE_CHECK(p >= 0.0 && p <= 1.0, "dropout: expected 0 <= p <= 1, got p=", p);
  LOUPE_CHECK(is_floating(x.dtype()), "dropout: expected a floating tensor, got ", x.dtype());
  if (!training || p == 0.0) return x;

  // p == 1 drops everything; scale 0 (not 1/0) keeps 0 * inf = NaN out of the result.
  const double scale = p == 1.0 ? 0.0 : 1.0 / (1.0 - p);
  const Tensor mask = bernoulli(x.shape(), 1.0 - p, x.dtype(), generator, x.device());  // 1 = keep
  const Tensor out = ops::mul(ops::mul(x, mask), scale);
  if (!autograd::should_record({x})) return out;
  return autograd::record(
      out, OpKind::dropout, "dropout", {x},
      [](const Node& node, const Tensor& g) -> std::vector<Tensor> {
        return {ops::mul(ops::mul(g, node.saved[0]), node.attrs[1])};
      },
      {mask}, {p, scale});
}

}  // namespace loupe
