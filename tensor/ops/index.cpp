// Indexing ops: gather, scatter_add, index_select, index_add, masked_fill, embedding, one_hot.
// See index.hpp.
//
// Every op validates all of its indices first (one pass over the index tensor), so the kernels
// never see an out-of-range index and an error leaves no partial result. Each parallel loop hands
// every output element to exactly one chunk and accumulates into it in index order, so results do
// not depend on the thread count.
#include "tensor/ops/index.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "tensor/cpu/elementwise.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/join.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/view.hpp"
#include "tensor/parallel.hpp"

namespace loupe::ops {

namespace {

constexpr int64_t kGrain = 16384;  // elements per parallel chunk

size_t u(int64_t i) { return static_cast<size_t>(i); }

void check_index_dtype(const Tensor& index, const char* op) {
  LOUPE_CHECK(index.dtype() == DType::i64, op, ": expected an int64 index tensor, got ", index.dtype());
}

// Every value of the contiguous int64 tensor `index` lies in [0, size), or an Error names the
// first one that does not (on a GPU: one pass on the device, one synchronisation).
void check_in_range(const Tensor& index, int64_t size, int64_t dim, const char* op) {
  if (index.device().is_cuda()) {
    const std::optional<int64_t> bad = cuda::first_out_of_range(index, 0, size);
    LOUPE_CHECK(!bad, op, ": index ", bad.value_or(0), " is out of bounds for dimension ", dim, " with size ", size);
    return;
  }
  const int64_t* idx = index.data<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i) {
    LOUPE_CHECK(idx[i] >= 0 && idx[i] < size, op, ": index ", idx[i], " is out of bounds for dimension ", dim,
                " with size ", size);
  }
}

// gather and scatter read a 0-d tensor as a 1-element vector (PyTorch's ensure_nonempty_dim).
Tensor at_least_1d(const Tensor& t) { return t.dim() == 0 ? reshape(t, {1}) : t; }

// Product of shape[begin, end).
int64_t span_numel(const Shape& shape, int64_t begin, int64_t end) {
  int64_t n = 1;
  for (int64_t d = begin; d < end; ++d) n *= shape[u(d)];
  return n;
}

// Row-major walk over `shape`, split across the thread pool: body(linear index, multi-index).
template <typename Body>
void for_each_coord(const Shape& shape, Body&& body) {
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  const size_t ndim = shape.size();
  parallel_for(0, total, kGrain, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> coord(ndim);
    int64_t rest = begin;
    for (size_t d = ndim; d-- > 0;) {
      coord[d] = rest % shape[d];
      rest /= shape[d];
    }
    for (int64_t i = begin; i < end; ++i) {
      body(i, coord);
      for (size_t d = ndim; d-- > 0;) {
        if (++coord[d] < shape[d]) break;
        coord[d] = 0;
      }
    }
  });
}

// The shape rules gather and scatter_add share (PyTorch's gather/scatter shape checks): index has
// as many dims as `other` and is no larger than it in every dim but `dim` (or in every dim, when
// `including_dim`).
void check_index_fits(const Tensor& index, const Tensor& other, int64_t dim, bool including_dim, const char* op,
                      const char* other_name) {
  LOUPE_CHECK(index.dim() == other.dim(), op, ": index ", shape_str(index.shape()), " must have as many dims as ",
              other_name, " ", shape_str(other.shape()));
  for (int64_t d = 0; d < index.dim(); ++d) {
    if (d == dim && !including_dim) continue;
    LOUPE_CHECK(index.shape()[u(d)] <= other.shape()[u(d)], op, ": index ", shape_str(index.shape()),
                " is larger than ", other_name, " ", shape_str(other.shape()), " at dimension ", d);
  }
}

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  check_same_device("gather", {x, index});
  check_index_dtype(index, "gather");
  const Tensor xs = at_least_1d(x);
  dim = wrap_dim(dim, xs.dim(), "gather");
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  if (index.numel() == 0) return out;  // PyTorch skips the shape checks for an empty index
  const Tensor idx = contiguous(at_least_1d(index));
  check_index_fits(idx, xs, dim, false, "gather", "x");
  check_in_range(idx, xs.shape()[u(dim)], dim, "gather");
  if (x.device().is_cuda()) return reshape(cuda::gather(xs, dim, idx), index.shape());
  dispatch_all(x.dtype(), "gather", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    const T* px = xs.data<T>();
    const int64_t* pi = idx.data<int64_t>();
    const Strides& xst = xs.strides();
    for_each_coord(idx.shape(), [&](int64_t i, const std::vector<int64_t>& c) {
      int64_t at = 0;
      for (size_t d = 0; d < c.size(); ++d) at += (d == u(dim) ? pi[i] : c[d]) * xst[d];
      o[i] = px[at];
    });
  });
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  check_same_device("scatter_add", {x, index, src});
  check_index_dtype(index, "scatter_add");
  LOUPE_CHECK(src.dtype() == x.dtype(), "scatter_add: src dtype ", src.dtype(), " must equal x dtype ", x.dtype());
  const Tensor xs = at_least_1d(x);
  dim = wrap_dim(dim, xs.dim(), "scatter_add");
  Tensor out = clone(xs);
  if (index.numel() == 0) return reshape(out, x.shape());
  const Tensor idx = contiguous(at_least_1d(index));
  const Tensor ss = at_least_1d(src);
  check_index_fits(idx, xs, dim, false, "scatter_add", "x");
  check_index_fits(idx, ss, dim, true, "scatter_add", "src");
  check_in_range(idx, xs.shape()[u(dim)], dim, "scatter_add");
  if (x.device().is_cuda()) {
    cuda::scatter_add_(out, dim, idx, ss);
    return reshape(out, x.shape());
  }

  // One "line" per position of index with its `dim` coordinate dropped. Lines write disjoint
  // parts of out (they differ in some other coordinate), so they run in parallel; within a line
  // the additions happen in index order.
  Shape lines = idx.shape();
  const int64_t length = lines[u(dim)];
  lines[u(dim)] = 1;
  dispatch_numeric(x.dtype(), "scatter_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    const T* ps = ss.data<T>();
    const int64_t* pi = idx.data<int64_t>();
    const Strides& ost = out.strides();
    const Strides& sst = ss.strides();
    const Strides& ist = idx.strides();
    for_each_coord(lines, [&](int64_t, const std::vector<int64_t>& c) {
      int64_t o_base = 0, s_base = 0, i_base = 0;
      for (size_t d = 0; d < c.size(); ++d) {
        o_base += c[d] * ost[d];
        s_base += c[d] * sst[d];
        i_base += c[d] * ist[d];
      }
      for (int64_t j = 0; j < length; ++j) {
        const int64_t target = pi[i_base + j * ist[u(dim)]];
        o[o_base + target * ost[u(dim)]] += ps[s_base + j * sst[u(dim)]];
      }
    });
  });
  return reshape(out, x.shape());
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_same_device("index_select", {x, index});
  check_index_dtype(index, "index_select");
  LOUPE_CHECK(index.dim() <= 1, "index_select: index must be 1-d (or 0-d), got shape ", shape_str(index.shape()));
  const Tensor idx = contiguous(index);
  const int64_t n = idx.numel();
  if (x.dim() == 0) {  // a scalar x takes exactly one index, 0, and stays a scalar
    wrap_dim(dim, 1, "index_select");
    LOUPE_CHECK(n == 1, "index_select: a 0-d x takes exactly one index, got ", n);
    check_in_range(idx, 1, 0, "index_select");
    return clone(x);
  }
  dim = wrap_dim(dim, x.dim(), "index_select");
  const int64_t size = x.shape()[u(dim)];
  check_in_range(idx, size, dim, "index_select");
  Shape shape = x.shape();
  shape[u(dim)] = n;
  if (x.device().is_cuda()) return cuda::index_select(x, dim, idx);
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  if (out.numel() == 0) return out;

  // x as (outer, size, inner) and out as (outer, n, inner): each out row is one copied x row.
  const Tensor xc = contiguous(x);
  const int64_t outer = span_numel(shape, 0, dim);
  const int64_t inner = span_numel(shape, dim + 1, x.dim());
  const int64_t* pi = idx.data<int64_t>();
  dispatch_all(x.dtype(), "index_select", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = xc.data<T>();
    T* o = out.data<T>();
    parallel_for(0, outer * n, std::max<int64_t>(1, kGrain / inner), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / n, i = r % n;
        std::copy_n(px + (b * size + pi[i]) * inner, inner, o + r * inner);
      }
    });
  });
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha) {
  check_same_device("index_add", {x, index, src});
  check_index_dtype(index, "index_add");
  LOUPE_CHECK(index.dim() <= 1, "index_add: index must be 1-d (or 0-d), got shape ", shape_str(index.shape()));
  LOUPE_CHECK(src.dtype() == x.dtype(), "index_add: src dtype ", src.dtype(), " must equal x dtype ", x.dtype());
  LOUPE_CHECK(is_floating(x.dtype()) || alpha == std::trunc(alpha),
              "index_add: alpha must be a whole number for an integer x, got ", alpha);
  const Tensor xs = at_least_1d(x);
  const Tensor ss = at_least_1d(src);
  dim = wrap_dim(dim, xs.dim(), "index_add");
  const Tensor idx = contiguous(index);
  const int64_t n = idx.numel();
  LOUPE_CHECK(ss.dim() == xs.dim(), "index_add: src ", shape_str(src.shape()), " must have as many dims as x ",
              shape_str(x.shape()));
  for (int64_t d = 0; d < xs.dim(); ++d) {
    const int64_t want = d == dim ? n : xs.shape()[u(d)];
    LOUPE_CHECK(ss.shape()[u(d)] == want, "index_add: src ", shape_str(src.shape()), " does not match x ",
                shape_str(x.shape()), " with ", n, " indices along dimension ", dim);
  }
  const int64_t size = xs.shape()[u(dim)];
  check_in_range(idx, size, dim, "index_add");
  Tensor out = clone(xs);
  if (ss.numel() == 0) return reshape(out, x.shape());
  if (x.device().is_cuda()) {
    cuda::index_add_(out, dim, idx, ss, alpha);
    return reshape(out, x.shape());
  }

  // out as (outer, size, inner), src as (outer, n, inner). Chunks split the (outer, inner)
  // positions, so every out element belongs to one chunk and sums its sources in index order.
  const Tensor sc = contiguous(ss);
  const int64_t outer = span_numel(xs.shape(), 0, dim);
  const int64_t inner = span_numel(xs.shape(), dim + 1, xs.dim());
  const int64_t* pi = idx.data<int64_t>();
  dispatch_numeric(x.dtype(), "index_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T a = static_cast<T>(alpha);
    const T* ps = sc.data<T>();
    T* o = out.data<T>();
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1));
    parallel_for(0, outer * inner, grain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end;) {
        const int64_t b = p / inner, k0 = p % inner;
        const int64_t k1 = std::min(inner, k0 + (end - p));  // stay inside this outer block
        for (int64_t i = 0; i < n; ++i) {
          T* orow = o + (b * size + pi[i]) * inner;
          const T* srow = ps + (b * n + i) * inner;
          for (int64_t k = k0; k < k1; ++k) orow[k] += a * srow[k];
        }
        p += k1 - k0;
      }
    });
  });
  return reshape(out, x.shape());
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_same_device("masked_fill", {x, mask});
  LOUPE_CHECK(mask.dtype() == DType::b8, "masked_fill: expected a bool mask, got ", mask.dtype());
  LOUPE_CHECK(is_floating(x.dtype()) || (std::isfinite(value) && std::abs(value) < 9.2e18),
              "masked_fill: value ", value, " does not fit x's dtype ", x.dtype());
  if (x.device().is_cuda()) return cuda::masked_fill(x, mask, value);
  const Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  dispatch_all(x.dtype(), "masked_fill", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = static_cast<T>(value);
    cpu::map_binary<T, T, bool>(out, x, mask, [v](T a, bool m) { return m ? v : a; });
  });
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  check_same_device("embedding", {weight, indices});
  LOUPE_CHECK(weight.dim() == 2, "embedding: weight must be 2-d (num_embeddings, dim), got shape ",
              shape_str(weight.shape()));
  check_index_dtype(indices, "embedding");
  const int64_t num_weights = weight.shape()[0];
  LOUPE_CHECK(padding_idx < num_weights, "embedding: padding_idx ", padding_idx, " must be below num_embeddings ",
              num_weights);
  const Tensor flat = contiguous(reshape(indices, {-1}));
  check_in_range(flat, num_weights, 0, "embedding");
  Shape shape = indices.shape();
  shape.push_back(weight.shape()[1]);
  return reshape(index_select(weight, 0, flat), shape);
}

Tensor embedding_backward(const Tensor& grad, const Tensor& indices, int64_t num_weights, int64_t padding_idx) {
  check_same_device("embedding_backward", {grad, indices});
  check_index_dtype(indices, "embedding_backward");
  LOUPE_CHECK(grad.dim() == indices.dim() + 1, "embedding_backward: grad ", shape_str(grad.shape()),
              " does not match indices ", shape_str(indices.shape()));
  const int64_t d = grad.shape().back();
  Tensor zero = Tensor::empty({num_weights, d}, grad.dtype(), grad.device());
  fill_(zero, 0.0);
  Tensor out = index_add(zero, 0, reshape(indices, {-1}), reshape(grad, {-1, d}));
  // The padding row gets no gradient: drop what its indices added.
  if (padding_idx >= 0 && padding_idx < num_weights) fill_(select(out, 0, padding_idx), 0.0);
  return out;
}

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  check_index_dtype(indices, "one_hot");
  LOUPE_CHECK(num_classes >= -1, "one_hot: num_classes must be -1 (infer) or non-negative, got ", num_classes);
  const Tensor idx = contiguous(indices);
  const int64_t n = idx.numel();
  const bool on_gpu = idx.device().is_cuda();
  if (n > 0) {
    int64_t lo = 0, hi = 0;
    if (on_gpu) {  // both extremes in one transfer (one synchronisation)
      const Tensor both = to_device(cat({reshape(amin(idx), {1}), reshape(amax(idx), {1})}), Device::cpu());
      lo = both.data<int64_t>()[0];
      hi = both.data<int64_t>()[1];
    } else {
      const int64_t* pi = idx.data<int64_t>();
      const auto [lo_at, hi_at] = std::minmax_element(pi, pi + n);
      lo = *lo_at;
      hi = *hi_at;
    }
    LOUPE_CHECK(lo >= 0, "one_hot: class values must be non-negative, got ", lo);
    if (num_classes == -1) num_classes = hi + 1;
    LOUPE_CHECK(hi < num_classes, "one_hot: class value ", hi, " must be smaller than num_classes ", num_classes);
  } else {
    LOUPE_CHECK(num_classes != -1,
                "one_hot: cannot infer the number of classes from an empty tensor; pass num_classes");
  }
  Shape shape = indices.shape();
  shape.push_back(num_classes);
  Tensor out = Tensor::empty(shape, DType::i64, indices.device());
  fill_(out, 0.0);
  if (on_gpu) {
    cuda::one_hot_(out, idx);
    return out;
  }
  const int64_t* pi = idx.data<int64_t>();
  int64_t* o = out.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) o[i * num_classes + pi[i]] = 1;
  return out;
}

}  // namespace loupe::ops
