// Reductions and scans. See reduce.hpp.
#include "tensor/ops/reduce.hpp"

#include <algorithm>
#include <cmath>

#include "tensor/cpu/reduce.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::ops {

Dims normalize_dims(const Dims& dims, int64_t ndim, const char* op) {
  Dims out;
  for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  LOUPE_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, ": a dim appears twice");
  if (ndim == 0) out.clear();  // dim 0 of a 0-d tensor is the tensor itself
  return out;
}

Shape reduced_shape(const Shape& shape, const Dims& dims, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < shape.size(); ++d) {
    const bool reduced = dims.empty() || std::find(dims.begin(), dims.end(), static_cast<int64_t>(d)) != dims.end();
    if (!reduced) {
      out.push_back(shape[d]);
    } else if (keepdim) {
      out.push_back(1);
    }
  }
  return out;
}

namespace {

// The accumulator type of a sum: double for floats (exact enough that results do not depend on
// summation order at float32 precision), int64 for integers and bools.
template <typename T>
using SumAcc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

}  // namespace

Tensor sum(const Tensor& x, const Dims& dims_in, bool keepdim) {
  const Dims dims = normalize_dims(dims_in, x.dim(), "sum");
  const DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, keepdim), out_dtype, x.device());
  const cpu::ReductionPlan plan(x, dims);
  dispatch_all(x.dtype(), "sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = SumAcc<T>;
    using Out = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;
    const T* in = static_cast<const T*>(x.raw_data());
    Out* o = static_cast<Out*>(out.raw_data());
    plan.for_each_output([&](int64_t index, int64_t base) {
      Acc acc = 0;
      plan.for_each_reduced_run(base, [&](int64_t n, int64_t at, int64_t step) {
        for (int64_t j = 0; j < n; ++j) acc += static_cast<Acc>(in[at + j * step]);
      });
      o[index] = static_cast<Out>(acc);
    });
  });
  return out;
}

Tensor mean(const Tensor& x, const Dims& dims_in, bool keepdim) {
  LOUPE_CHECK(is_floating(x.dtype()), "mean: expected a floating dtype, got ", x.dtype());
  const Dims dims = normalize_dims(dims_in, x.dim(), "mean");
  const Tensor total = sum(x, dims, keepdim);
  const int64_t count = x.numel() / std::max<int64_t>(total.numel(), 1);
  // An empty reduction gives NaN, as in PyTorch (0 / 0).
  return div(total, scalar_like(static_cast<double>(count), total));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  LOUPE_CHECK(x.shape().size() >= shape.size(), "sum_to: cannot reduce shape ", shape_str(x.shape()),
              " to ", shape_str(shape));
  const size_t lead = x.shape().size() - shape.size();
  Dims dims;
  for (size_t d = 0; d < x.shape().size(); ++d) {
    if (d < lead) {
      dims.push_back(static_cast<int64_t>(d));
    } else if (shape[d - lead] == 1 && x.shape()[d] != 1) {
      dims.push_back(static_cast<int64_t>(d));
    } else {
      LOUPE_CHECK(shape[d - lead] == x.shape()[d], "sum_to: cannot reduce shape ", shape_str(x.shape()),
                  " to ", shape_str(shape));
    }
  }
  if (dims.empty()) return reshape(x, shape);
  return reshape(sum(x, dims, /*keepdim=*/true), shape);
}

}  // namespace loupe::ops
