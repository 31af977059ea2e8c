// The walk behind every reduction kernel: split x's dims into kept dims (one output element per
// position) and reduced dims (walked for each output), then hand each output its base offset.
//
//   ReductionPlan plan(x, dims);            // dims already wrapped, may be empty = all dims
//   plan.for_each_output([&](int64_t out_index, int64_t base) {
//     plan.for_each_reduced_run(base, [&](int64_t n, int64_t at, int64_t step) { ... });
//   });
//
// Outputs are processed in parallel; each output's walk is serial and in a fixed order, so the
// result does not depend on the thread count.
#pragma once

#include <limits>
#include <vector>

#include "tensor/cpu/loops.hpp"
#include "tensor/tensor.hpp"

namespace loupe::cpu {

struct ReductionPlan {
  ReductionPlan(const Tensor& x, const std::vector<int64_t>& dims) {
    std::vector<bool> reduce(x.shape().size(), dims.empty());
    for (int64_t d : dims) reduce[static_cast<size_t>(d)] = true;
    for (size_t d = 0; d < x.shape().size(); ++d) {
      (reduce[d] ? reduced_shape : kept_shape).push_back(x.shape()[d]);
      (reduce[d] ? reduced_strides : kept_strides).push_back(x.strides()[d]);
    }
    base_offset = x.offset();
    outputs = shape_numel(kept_shape);
    reduced_count = shape_numel(reduced_shape);
  }

  template <typename Body>
  void for_each_output(Body&& body, int64_t grain = 0) const {
    if (grain == 0) grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(reduced_count, 1));
    parallel_for(0, outputs, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) {
        int64_t rest = o, base = 0;
        for (size_t d = kept_shape.size(); d-- > 0;) {
          base += (rest % kept_shape[d]) * kept_strides[d];
          rest /= kept_shape[d];
        }
        body(o, base);
      }
    });
  }

  // Serial walk over the reduced elements of one output: body(n, at, step) per run.
  template <typename Body>
  void for_each_reduced_run(int64_t base, Body&& body) const {
    if (reduced_count == 0) return;
    for_each_run<1>(
        reduced_shape, {reduced_strides},
        [&](int64_t n, const Offsets<1>& at, const Offsets<1>& step) { body(n, base + at[0], step[0]); },
        std::numeric_limits<int64_t>::max());
  }

  Shape kept_shape, reduced_shape;
  Strides kept_strides, reduced_strides;
  int64_t base_offset = 0;  // x's own offset; pointers passed to kernels already include it
  int64_t outputs = 0;
  int64_t reduced_count = 0;
};

// A contiguous tensor seen as (outer, size, inner) around one dim: line (o, i) starts at
// o * size * inner + i and steps by inner (used by softmax, cumsum, sort).
struct Lines {
  int64_t outer = 1, size = 1, inner = 1;
};

inline Lines lines_around(const Shape& shape, int64_t dim) {
  Lines l;
  if (shape.empty()) return l;  // a 0-d tensor is one line of one element
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    const int64_t s = shape[static_cast<size_t>(d)];
    if (d < dim) l.outer *= s;
    if (d == dim) l.size = s;
    if (d > dim) l.inner *= s;
  }
  return l;
}

}  // namespace loupe::cpu
