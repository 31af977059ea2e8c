// The strided loop every elementwise CPU kernel is built on.
//
// for_each_run walks N operands that share one (broadcast) shape, each with its own strides, and
// hands the body "runs": stretches along the innermost dim where each operand's pointer advances
// by a fixed stride. Dims that are contiguous with each other are merged first, so a contiguous
// tensor becomes one long run and the body's inner loop vectorises. The outer walk is split over
// the thread pool by element count.
//
//   for_each_run<2>(shape, {out_strides, in_strides}, [&](int64_t n, const Offsets<2>& at,
//                                                      const Offsets<2>& step) { ... });
//
// Offsets and strides are in elements.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "tensor/parallel.hpp"
#include "tensor/shape.hpp"

namespace loupe::cpu {

template <size_t N>
using Offsets = std::array<int64_t, N>;

// Elements per parallel chunk: below this, threads cost more than they save.
constexpr int64_t kElementwiseGrain = 32768;

namespace detail {

// Merges dim i into dim i+1 wherever every operand steps through them as one dim, and drops
// size-1 dims. Returns the reduced shape and strides (innermost last).
template <size_t N>
void coalesce(Shape& shape, std::array<Strides, N>& strides) {
  Shape out_shape;
  std::array<Strides, N> out_strides;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !out_shape.empty();
    for (size_t k = 0; merge && k < N; ++k) {
      merge = out_strides[k].back() == strides[k][d] * shape[d];
    }
    if (merge) {
      out_shape.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) out_strides[k].back() = strides[k][d];
    } else {
      out_shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) out_strides[k].push_back(strides[k][d]);
    }
  }
  if (out_shape.empty()) {  // a single element
    out_shape.push_back(1);
    for (size_t k = 0; k < N; ++k) out_strides[k].push_back(0);
  }
  shape = std::move(out_shape);
  strides = std::move(out_strides);
}

}  // namespace detail

template <size_t N, typename Body>
void for_each_run(Shape shape, std::array<Strides, N> strides, Body&& body,
                  int64_t grain = kElementwiseGrain) {
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  detail::coalesce(shape, strides);
  const size_t ndim = shape.size();
  const int64_t inner = shape[ndim - 1];
  Offsets<N> step;
  for (size_t k = 0; k < N; ++k) step[k] = strides[k][ndim - 1];

  parallel_for(0, total, grain, [&](int64_t begin, int64_t end) {
    // Position of linear index `begin` in the coalesced shape.
    std::vector<int64_t> index(ndim, 0);
    int64_t rest = begin;
    for (size_t d = ndim; d-- > 0;) {
      index[d] = rest % shape[d];
      rest /= shape[d];
    }
    Offsets<N> at{};
    for (size_t k = 0; k < N; ++k) {
      for (size_t d = 0; d < ndim; ++d) at[k] += index[d] * strides[k][d];
    }
    int64_t i = begin;
    while (i < end) {
      const int64_t n = std::min(inner - index[ndim - 1], end - i);
      body(n, at, step);
      i += n;
      // Advance the counter by n along the innermost dim, carrying into outer dims.
      index[ndim - 1] += n;
      for (size_t k = 0; k < N; ++k) at[k] += n * step[k];
      for (size_t d = ndim - 1; d > 0 && index[d] == shape[d]; --d) {
        index[d] = 0;
        ++index[d - 1];
        for (size_t k = 0; k < N; ++k) at[k] += strides[k][d - 1] - shape[d] * strides[k][d];
      }
    }
  });
}

// Shape-only convenience: visits every element's offsets one at a time. Use in reference kernels
// where clarity matters more than speed.
template <size_t N, typename Body>
void for_each_element(const Shape& shape, const std::array<Strides, N>& strides, Body&& body) {
  for_each_run<N>(shape, strides, [&](int64_t n, const Offsets<N>& at, const Offsets<N>& step) {
    Offsets<N> p = at;
    for (int64_t j = 0; j < n; ++j) {
      body(p);
      for (size_t k = 0; k < N; ++k) p[k] += step[k];
    }
  });
}

}  // namespace loupe::cpu
