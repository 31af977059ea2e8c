// Reductions and scans. See reduce.hpp.
//
// Every reduction walks x through cpu::ReductionPlan: one output element per kept position, its
// reduced elements visited serially in row-major order (so "first occurrence" is well defined and
// results do not depend on the thread count). Floating accumulations run in double.
// A floating sum of a contiguous tensor over its trailing dims (all dims included) takes the
// vectorised kernel of tensor/cpu/fast_elementwise.hpp, which sums fixed blocks in double and is
// also independent of the thread count (LOUPE_REFERENCE_KERNELS=1 turns it off).
#include "tensor/ops/reduce.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/cpu/reduce.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/view.hpp"
#include "tensor/parallel.hpp"

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

// The fast sum: x contiguous and floating, dims (sorted) the trailing dims or empty (all).
bool sum_fast(const Tensor& x, const Dims& dims, const Tensor& out) {
  if (!cpu::fast::enabled() || !is_floating(x.dtype()) || !x.is_contiguous()) return false;
  const int64_t nd = x.dim();
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] != nd - static_cast<int64_t>(dims.size()) + static_cast<int64_t>(i)) return false;
  }
  int64_t k = 1;
  if (dims.empty()) {
    k = x.numel();
  } else {
    for (int64_t d : dims) k *= x.shape()[static_cast<size_t>(d)];
  }
  const int64_t rows = out.numel();
  if (k == 0 || rows == 0) return false;  // the reference handles empty sums (zeros)
  dispatch_floating(x.dtype(), "sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::fast::sum_rows<T>(x.data<T>(), rows, k, out.data<T>());
  });
  return true;
}

}  // namespace

Tensor sum(const Tensor& x, const Dims& dims_in, bool keepdim) {
  const Dims dims = normalize_dims(dims_in, x.dim(), "sum");
  const DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, keepdim), out_dtype, x.device());
  if (sum_fast(x, dims, out)) return out;
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

// --- max / min / amax / amin / argmax / argmin ---

namespace {

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(v);
  } else {
    return false;
  }
}

// True when v should replace the running best: strictly better, or NaN (which PyTorch
// propagates: the max and the min of anything containing NaN is NaN, at the first NaN).
template <bool Largest, typename T>
bool beats(T v, T best) {
  if (is_nan(best)) return false;
  if (is_nan(v)) return true;
  if constexpr (Largest) {
    return v > best;
  } else {
    return v < best;
  }
}

// Max/min has no identity: every reduced dim must be non-empty.
void check_nonempty(const cpu::ReductionPlan& plan, const Tensor& x, const Dims& dims, const char* op) {
  LOUPE_CHECK(plan.reduced_count > 0, op, ": cannot reduce over a zero-size dim of shape ", shape_str(x.shape()),
              " (dims ", shape_str(dims), "): the reduction has no identity");
}

// The extreme value over `dims` and, when `indices` is defined, its position counted in row-major
// order over the reduced elements (for one dim, the index along that dim).
template <bool Largest>
void extreme_kernel(const Tensor& x, const Dims& dims, const Tensor& values, const Tensor& indices, const char* op) {
  const cpu::ReductionPlan plan(x, dims);
  check_nonempty(plan, x, dims, op);
  int64_t* idx = indices.defined() ? indices.data<int64_t>() : nullptr;
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x.raw_data());
    T* out = values.data<T>();
    plan.for_each_output([&](int64_t index, int64_t base) {
      T best{};
      int64_t best_at = -1, position = 0;
      plan.for_each_reduced_run(base, [&](int64_t n, int64_t at, int64_t step) {
        for (int64_t j = 0; j < n; ++j, ++position) {
          const T v = in[at + j * step];
          if (best_at < 0 || beats<Largest>(v, best)) {
            best = v;
            best_at = position;
          }
        }
      });
      out[index] = best;
      if (idx != nullptr) idx[index] = best_at;
    });
  });
}

// The one reduced dim of max/min/argmax/argmin (none for a 0-d tensor).
Dims single_dim(const Tensor& x, int64_t dim, const char* op) {
  const int64_t d = wrap_dim(dim, x.dim(), op);
  return x.dim() == 0 ? Dims{} : Dims{d};
}

template <bool Largest>
ValuesIndices extreme_along(const Tensor& x, int64_t dim, bool keepdim, const char* op) {
  const Dims dims = single_dim(x, dim, op);
  const Shape shape = reduced_shape(x.shape(), dims, keepdim);
  ValuesIndices out{Tensor::empty(shape, x.dtype(), x.device()), Tensor::empty(shape, DType::i64, x.device())};
  extreme_kernel<Largest>(x, dims, out.values, out.indices, op);
  return out;
}

template <bool Largest>
Tensor extreme_over(const Tensor& x, const Dims& dims_in, bool keepdim, const char* op) {
  const Dims dims = normalize_dims(dims_in, x.dim(), op);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, keepdim), x.dtype(), x.device());
  extreme_kernel<Largest>(x, dims, out, Tensor(), op);
  return out;
}

}  // namespace

ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) { return extreme_along<true>(x, dim, keepdim, "max"); }
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) { return extreme_along<false>(x, dim, keepdim, "min"); }
Tensor amax(const Tensor& x, const Dims& dims, bool keepdim) { return extreme_over<true>(x, dims, keepdim, "amax"); }
Tensor amin(const Tensor& x, const Dims& dims, bool keepdim) { return extreme_over<false>(x, dims, keepdim, "amin"); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_along<true>(x, dim, keepdim, "argmax").indices;
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_along<false>(x, dim, keepdim, "argmin").indices;
}

// --- var / std ---

namespace {

// Two passes per output (mean, then squared deviations), both in double: the textbook formula,
// free of the cancellation of E[x^2] - E[x]^2. Divides by max(0, N - correction), so N <= correction
// gives inf or NaN as in PyTorch.
Tensor variance(const Tensor& x, const Dims& dims_in, int64_t correction, bool keepdim, bool take_sqrt,
                const char* op) {
  const Dims dims = normalize_dims(dims_in, x.dim(), op);
  LOUPE_CHECK(correction >= 0, op, ": correction must be non-negative, got ", correction);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, keepdim), x.dtype(), x.device());
  const cpu::ReductionPlan plan(x, dims);
  const auto count = static_cast<double>(plan.reduced_count);
  const double divisor = std::max(0.0, count - static_cast<double>(correction));
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = out.data<T>();
    plan.for_each_output([&](int64_t index, int64_t base) {
      double total = 0.0;
      plan.for_each_reduced_run(base, [&](int64_t n, int64_t at, int64_t step) {
        for (int64_t j = 0; j < n; ++j) total += static_cast<double>(in[at + j * step]);
      });
      const double mean = total / count;
      double squares = 0.0;
      plan.for_each_reduced_run(base, [&](int64_t n, int64_t at, int64_t step) {
        for (int64_t j = 0; j < n; ++j) {
          const double d = static_cast<double>(in[at + j * step]) - mean;
          squares += d * d;
        }
      });
      const double v = squares / divisor;
      o[index] = static_cast<T>(take_sqrt ? std::sqrt(v) : v);
    });
  });
  return out;
}

}  // namespace

Tensor var(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  return variance(x, dims, correction, keepdim, /*take_sqrt=*/false, "var");
}

Tensor std(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  return variance(x, dims, correction, keepdim, /*take_sqrt=*/true, "std");
}

// --- norm ---

// The vector p-norm over dims (torch.linalg.vector_norm): (sum |x|^p)^(1/p), with the special
// cases p = inf (max |x|), -inf (min |x|), 0 (count of non-zeros), 1 and 2 computed directly.
Tensor norm(const Tensor& x, double p, const Dims& dims_in, bool keepdim) {
  const Dims dims = normalize_dims(dims_in, x.dim(), "norm");
  LOUPE_CHECK(!std::isnan(p), "norm: p must be a number, got NaN");
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, keepdim), x.dtype(), x.device());
  const cpu::ReductionPlan plan(x, dims);
  LOUPE_CHECK(plan.reduced_count > 0 || (p >= 0.0 && !std::isinf(p)), "norm: cannot compute the ", p,
              "-norm over a zero-size dim of shape ", shape_str(x.shape()), ": the reduction has no identity");
  dispatch_floating(x.dtype(), "norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = out.data<T>();
    const bool max_abs = std::isinf(p) && p > 0, min_abs = std::isinf(p) && p < 0;
    plan.for_each_output([&](int64_t index, int64_t base) {
      double acc = min_abs ? std::numeric_limits<double>::infinity() : 0.0;
      plan.for_each_reduced_run(base, [&](int64_t n, int64_t at, int64_t step) {
        for (int64_t j = 0; j < n; ++j) {
          const double a = std::abs(static_cast<double>(in[at + j * step]));
          if (max_abs) {
            if (std::isnan(a) || a > acc) acc = a;  // a NaN stays: nothing compares greater
          } else if (min_abs) {
            if (std::isnan(a) || a < acc) acc = a;
          } else if (p == 0.0) {
            acc += a != 0.0 ? 1.0 : 0.0;
          } else if (p == 1.0) {
            acc += a;
          } else if (p == 2.0) {
            acc += a * a;
          } else {
            acc += std::pow(a, p);
          }
        }
      });
      if (p == 2.0) {
        acc = std::sqrt(acc);
      } else if (p != 0.0 && p != 1.0 && !std::isinf(p)) {
        acc = std::pow(acc, 1.0 / p);
      }
      o[index] = static_cast<T>(acc);
    });
  });
  return out;
}

// --- logsumexp ---

// log(sum(exp(x))) = m + log(sum(exp(x - m))) with m the max, so no exp overflows. An infinite m
// is replaced by 0 (PyTorch's rule): all -inf gives -inf, any +inf gives +inf, without inf - inf.
// Integer inputs are computed in float32, as in PyTorch.
Tensor logsumexp(const Tensor& x_in, const Dims& dims_in, bool keepdim) {
  const Tensor x = is_floating(x_in.dtype()) ? x_in : to_dtype(x_in, DType::f32);
  const Dims dims = normalize_dims(dims_in, x.dim(), "logsumexp");
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, keepdim), x.dtype(), x.device());
  const cpu::ReductionPlan plan(x, dims);
  dispatch_floating(x.dtype(), "logsumexp", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = out.data<T>();
    plan.for_each_output([&](int64_t index, int64_t base) {
      double m = -std::numeric_limits<double>::infinity();
      plan.for_each_reduced_run(base, [&](int64_t n, int64_t at, int64_t step) {
        for (int64_t j = 0; j < n; ++j) m = std::max(m, static_cast<double>(in[at + j * step]));
      });
      if (std::isinf(m)) m = 0.0;
      double total = 0.0;
      plan.for_each_reduced_run(base, [&](int64_t n, int64_t at, int64_t step) {
        for (int64_t j = 0; j < n; ++j) total += std::exp(static_cast<double>(in[at + j * step]) - m);
      });
      o[index] = static_cast<T>(std::log(total) + m);
    });
  });
  return out;
}

// --- all / any ---

namespace {

// all: is every element non-zero (true over nothing); any: is some element non-zero.
template <bool All>
Tensor logical_reduction(const Tensor& x, const Dims& dims_in, bool keepdim, const char* op) {
  const Dims dims = normalize_dims(dims_in, x.dim(), op);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, keepdim), DType::b8, x.device());
  const cpu::ReductionPlan plan(x, dims);
  bool* o = out.data<bool>();
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x.raw_data());
    plan.for_each_output([&](int64_t index, int64_t base) {
      bool acc = All;
      plan.for_each_reduced_run(base, [&](int64_t n, int64_t at, int64_t step) {
        for (int64_t j = 0; j < n && acc == All; ++j) {
          if ((in[at + j * step] != T(0)) != All) acc = !All;
        }
      });
      o[index] = acc;
    });
  });
  return out;
}

}  // namespace

Tensor all(const Tensor& x, const Dims& dims, bool keepdim) {
  return logical_reduction</*All=*/true>(x, dims, keepdim, "all");
}

Tensor any(const Tensor& x, const Dims& dims, bool keepdim) {
  return logical_reduction</*All=*/false>(x, dims, keepdim, "any");
}

// --- cumsum ---

namespace {

// Running sums along dim, front to back (cumsum) or back to front (its backward).
Tensor scan_sum(const Tensor& x_in, int64_t dim_in, bool reverse, const char* op) {
  const int64_t dim = wrap_dim(dim_in, x_in.dim(), op);
  const Tensor x = contiguous(x_in);
  const DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  Tensor out = Tensor::empty(x.shape(), out_dtype, x.device());
  const cpu::Lines l = cpu::lines_around(x.shape(), dim);
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = SumAcc<T>;
    using Out = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;
    const T* in = x.data<T>();
    Out* o = out.data<Out>();
    const int64_t grain = std::max<int64_t>(1, cpu::kElementwiseGrain / std::max<int64_t>(l.size, 1));
    parallel_for(0, l.outer * l.inner, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t line = lo; line < hi; ++line) {
        const int64_t base = (line / l.inner) * l.size * l.inner + line % l.inner;
        Acc acc = 0;
        for (int64_t k = 0; k < l.size; ++k) {
          const int64_t at = base + (reverse ? l.size - 1 - k : k) * l.inner;
          acc += static_cast<Acc>(in[at]);
          o[at] = static_cast<Out>(acc);
        }
      }
    });
  });
  return out;
}

}  // namespace

Tensor cumsum(const Tensor& x, int64_t dim) { return scan_sum(x, dim, /*reverse=*/false, "cumsum"); }
Tensor reverse_cumsum(const Tensor& x, int64_t dim) {
  return scan_sum(x, dim, /*reverse=*/true, "reverse_cumsum");
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
