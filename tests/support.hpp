// Helpers shared by the test programs: deterministic sample tensors, non-contiguous copies,
// closeness checks that print what differs, and the plain f64 reference helpers (ref::) that op
// table entries build their independent references from.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"

namespace loupe::test {

// Uniform values in [lo, hi) from std::mt19937_64 (independent of the engine's own generator).
inline Tensor random_tensor(const Shape& shape, DType dtype = DType::f32, double lo = -1.0, double hi = 1.0,
                            uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> values(static_cast<size_t>(shape_numel(shape)));
  for (double& v : values) v = dist(rng);
  return from_values(values, shape, dtype);
}

// Random integers in [lo, hi) as int64.
inline Tensor random_indices(const Shape& shape, int64_t lo, int64_t hi, uint64_t seed = 11) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> dist(lo, hi - 1);
  std::vector<int64_t> values(static_cast<size_t>(shape_numel(shape)));
  for (int64_t& v : values) v = dist(rng);
  return from_values(values, shape, DType::i64);
}

// The same values in a non-contiguous layout: every dim is stored reversed-major and the last dim
// with a gap of one element, so kernels that assume contiguity read the wrong values.
inline Tensor noncontiguous_copy(const Tensor& t) {
  if (t.dim() == 0 || t.numel() == 0) return t;
  Shape big = t.shape();
  std::reverse(big.begin(), big.end());
  big.back() *= 2;  // gap in what becomes the first dim after the permutation
  Tensor storage = zeros(big, t.dtype());
  std::vector<int64_t> reverse_dims(static_cast<size_t>(t.dim()));
  for (size_t i = 0; i < reverse_dims.size(); ++i) reverse_dims[i] = t.dim() - 1 - static_cast<int64_t>(i);
  Tensor view = ops::slice(ops::permute(storage, reverse_dims), 0, 0, 2 * t.shape()[0], 2);
  ops::copy_(view, t);
  return view;
}

// All values as doubles in row-major order.
inline std::vector<double> values(const Tensor& t) { return to_vector<double>(t); }

// Largest |a - b| over two tensors of the same number of elements (compared as float64).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = values(a), y = values(b);
  REQUIRE(x.size() == y.size());
  double d = 0.0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(x[i] - y[i]));
  return d;
}

// Fails the current test (without stopping it) when any element differs by more than
// atol + rtol * |expected|; NaN matches NaN. The message names the context and first mismatch.
inline bool check_close(const Tensor& actual, const Tensor& expected, double atol, double rtol,
                        const std::string& context) {
  if (actual.shape() != expected.shape()) {
    FAIL_CHECK(context << ": shape " << shape_str(actual.shape()) << " vs expected " << shape_str(expected.shape()));
    return false;
  }
  const auto a = values(actual);
  const auto e = values(expected);
  for (size_t i = 0; i < a.size(); ++i) {
    const bool both_nan = std::isnan(a[i]) && std::isnan(e[i]);
    const bool same_inf = std::isinf(a[i]) && a[i] == e[i];
    if (!both_nan && !same_inf && !(std::abs(a[i] - e[i]) <= atol + rtol * std::abs(e[i]))) {
      FAIL_CHECK(context << ": element " << i << " of shape " << shape_str(actual.shape()) << ": " << a[i]
                         << " vs expected " << e[i] << " (atol " << atol << ", rtol " << rtol << ")");
      return false;
    }
  }
  return true;
}

// --- plain f64 reference helpers (independent of the engine's kernels) ---
namespace ref {

inline Tensor make(const std::vector<double>& v, const Shape& shape) { return from_values(v, shape, DType::f64); }

// Row-major multi-index of linear index i in shape.
inline std::vector<int64_t> unravel(int64_t i, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? i % shape[d] : 0;
    if (shape[d]) i /= shape[d];
  }
  return idx;
}

inline int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t i = 0;
  for (size_t d = 0; d < shape.size(); ++d) i = i * shape[d] + idx[d];
  return i;
}

// Value of `t` (row-major values v, shape s) at the index `idx` of a broadcast shape.
inline double at_broadcast(const std::vector<double>& v, const Shape& s, const std::vector<int64_t>& idx) {
  std::vector<int64_t> own(s.size());
  const size_t lead = idx.size() - s.size();
  for (size_t d = 0; d < s.size(); ++d) own[d] = s[d] == 1 ? 0 : idx[lead + d];
  return v[static_cast<size_t>(ravel(own, s))];
}

inline Shape broadcast(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    out[i] = x == 1 ? y : x;
  }
  return out;
}

inline Tensor map(const Tensor& x, const std::function<double(double)>& f) {
  auto v = values(x);
  for (double& e : v) e = f(e);
  return make(v, x.shape());
}

inline Tensor map2(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  const Shape shape = broadcast(a.shape(), b.shape());
  const auto va = values(a);
  const auto vb = values(b);
  std::vector<double> out(static_cast<size_t>(shape_numel(shape)));
  for (int64_t i = 0; i < shape_numel(shape); ++i) {
    const auto idx = unravel(i, shape);
    out[static_cast<size_t>(i)] = f(at_broadcast(va, a.shape(), idx), at_broadcast(vb, b.shape(), idx));
  }
  return make(out, shape);
}

}  // namespace ref

}  // namespace loupe::test
