// sort, topk and their backward scatter. See sort.hpp.
//
// Inputs are made contiguous and seen as (outer, size, inner) around the dim; every line is
// sorted on its own (in parallel) through an index permutation, so values and indices come out
// together.
#include "tensor/ops/sort.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <type_traits>
#include <vector>

#include "tensor/cpu/loops.hpp"
#include "tensor/cpu/reduce.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/parallel.hpp"
#include "tensor/ops/device.hpp"

namespace loupe::ops {

namespace {

// Ascending order with NaN after every number (all NaNs equal).
template <typename T>
bool less_nan_last(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    return !std::isnan(a) && (std::isnan(b) || a < b);
  } else {
    return a < b;
  }
}

// Writes the first `k` elements of every line of x, in the order asked for, to values/indices
// (both contiguous, of x's shape with `k` along dim). Ties go to the smaller index.
ValuesIndices sorted_lines(const Tensor& x_in, int64_t dim, int64_t k, bool descending, const char* op) {
  if (x_in.device().is_cuda()) return cuda::sort(x_in, dim, k, descending);
  const Tensor x = contiguous(x_in);
  Shape shape = x.shape();
  if (!shape.empty()) shape[static_cast<size_t>(dim)] = k;
  ValuesIndices out{Tensor::empty(shape, x.dtype(), x.device()), Tensor::empty(shape, DType::i64, x.device())};
  const cpu::Lines l = cpu::lines_around(x.shape(), dim);
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* values = out.values.data<T>();
    int64_t* indices = out.indices.data<int64_t>();
    const int64_t grain = std::max<int64_t>(1, cpu::kElementwiseGrain / std::max<int64_t>(l.size, 1));
    parallel_for(0, l.outer * l.inner, grain, [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> order(static_cast<size_t>(l.size));
      for (int64_t line = lo; line < hi; ++line) {
        const int64_t o = line / l.inner, i = line % l.inner;
        const T* v = in + o * l.size * l.inner + i;  // element j at v[j * inner]
        const auto before = [&](int64_t a, int64_t b) {
          const T va = v[a * l.inner], vb = v[b * l.inner];
          if (descending ? less_nan_last(vb, va) : less_nan_last(va, vb)) return true;
          if (descending ? less_nan_last(va, vb) : less_nan_last(vb, va)) return false;
          return a < b;
        };
        std::iota(order.begin(), order.end(), int64_t{0});
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        const int64_t out_base = o * k * l.inner + i;
        for (int64_t j = 0; j < k; ++j) {
          values[out_base + j * l.inner] = v[order[static_cast<size_t>(j)] * l.inner];
          indices[out_base + j * l.inner] = order[static_cast<size_t>(j)];
        }
      }
    });
  });
  return out;
}

}  // namespace

ValuesIndices sort(const Tensor& x, int64_t dim, bool descending, bool /*stable*/) {
  const int64_t d = wrap_dim(dim, x.dim(), "sort");
  return sorted_lines(x, d, x.dim() == 0 ? 1 : x.shape()[static_cast<size_t>(d)], descending, "sort");
}

ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool /*sorted*/) {
  const int64_t d = wrap_dim(dim, x.dim(), "topk");
  const int64_t size = x.dim() == 0 ? 1 : x.shape()[static_cast<size_t>(d)];
  LOUPE_CHECK(k >= 0 && k <= size, "topk: k = ", k, " out of range for dim ", d, " of size ", size,
              " (shape ", shape_str(x.shape()), ")");
  LOUPE_CHECK(x.dim() > 0 || k == 1, "topk: k must be 1 for a 0-d tensor, got ", k);
  return sorted_lines(x, d, k, /*descending=*/largest, "topk");
}

Tensor sort_backward(const Tensor& g_in, const Tensor& indices_in, int64_t dim_in, const Shape& input_shape) {
  check_same_device("sort_backward", {g_in, indices_in});
  const int64_t ndim = static_cast<int64_t>(input_shape.size());
  const int64_t dim = wrap_dim(dim_in, ndim, "sort_backward");
  LOUPE_CHECK(g_in.shape() == indices_in.shape(), "sort_backward: gradient shape ", shape_str(g_in.shape()),
              " and indices shape ", shape_str(indices_in.shape()), " differ");
  LOUPE_CHECK(indices_in.dtype() == DType::i64, "sort_backward: indices must be int64, got ", indices_in.dtype());
  LOUPE_CHECK(g_in.dim() == ndim, "sort_backward: gradient shape ", shape_str(g_in.shape()),
              " does not match input shape ", shape_str(input_shape));
  for (int64_t d = 0; d < ndim; ++d) {
    LOUPE_CHECK(d == dim || g_in.shape()[static_cast<size_t>(d)] == input_shape[static_cast<size_t>(d)],
                "sort_backward: gradient shape ", shape_str(g_in.shape()), " does not match input shape ",
                shape_str(input_shape), " outside dim ", dim);
  }
  const Tensor g = contiguous(g_in);
  const Tensor indices = contiguous(indices_in);
  const cpu::Lines from = cpu::lines_around(g.shape(), dim);
  const cpu::Lines to = cpu::lines_around(input_shape, dim);
  const auto out_of_range = [&](int64_t i) {
    return detail::make_message("sort_backward: index ", i, " out of range for dim ", dim, " of shape ",
                                shape_str(input_shape));
  };
  if (g.device().is_cuda()) {
    const std::optional<int64_t> bad = cuda::first_out_of_range(indices, 0, to.size);
    if (bad) throw Error(out_of_range(*bad));
    Tensor dx = zeros(input_shape, g.dtype(), g.device());
    cuda::sort_backward_(dx, g, indices, dim);
    return dx;
  }
  const int64_t* idx = indices.data<int64_t>();
  for (int64_t i = 0; i < indices.numel(); ++i) {
    if (idx[i] < 0 || idx[i] >= to.size) throw Error(out_of_range(idx[i]));
  }
  Tensor dx = zeros(input_shape, g.dtype());
  dispatch_floating(g.dtype(), "sort_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gp = g.data<T>();
    T* out = dx.data<T>();
    // Lines are disjoint in the output, so they can run in parallel; within a line indices may
    // repeat (max of a gathered tensor), hence +=.
    const int64_t grain = std::max<int64_t>(1, cpu::kElementwiseGrain / std::max<int64_t>(from.size, 1));
    parallel_for(0, from.outer * from.inner, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t line = lo; line < hi; ++line) {
        const int64_t o = line / from.inner, i = line % from.inner;
        const int64_t src = o * from.size * from.inner + i, dst = o * to.size * to.inner + i;
        for (int64_t j = 0; j < from.size; ++j) {
          out[dst + idx[src + j * from.inner] * to.inner] += gp[src + j * from.inner];
        }
      }
    });
  });
  return dx;
}

}  // namespace loupe::ops
