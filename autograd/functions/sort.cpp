// Differentiable sort and topk. See sort.hpp.
#include "autograd/functions/sort.hpp"

#include "autograd/record.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

// The node goes on the values only; saved = {indices}, attrs = {dim}. Backward scatters g back
// to the input positions the indices name.
ops::ValuesIndices record_values(ops::ValuesIndices out, const Tensor& x, int64_t dim, OpKind kind, const char* name) {
  if (!autograd::should_record({x})) return out;
  const int64_t d = wrap_dim(dim, x.dim(), name);
  out.values = autograd::record(
      out.values, kind, name, {x},
      [](const Node& n, const Tensor& g) -> Grads {
        return {ops::sort_backward(g, n.saved[0], static_cast<int64_t>(n.attrs[0]), n.inputs()[0].shape)};
      },
      {out.indices}, {static_cast<double>(d)});
  return out;
}
}  // namespace

ops::ValuesIndices sort(const Tensor& x, int64_t dim, bool descending, bool stable) {
  return record_values(ops::sort(x, dim, descending, stable), x, dim, OpKind::sort, "sort");
}

ops::ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
  return record_values(ops::topk(x, k, dim, largest, sorted), x, dim, OpKind::topk, "topk");
}

}  // namespace loupe
