// Shape and strides (both in elements, never bytes) and the small pieces of arithmetic on them
// that every op needs: element counts, contiguous strides, broadcasting, negative-dim wrapping.
// Tests: tests/tensor/test_shape.cpp
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace loupe {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
Strides contiguous_strides(const Shape& shape);  // row-major
std::string shape_str(const Shape& shape);       // "(2, 3)"

// The broadcast of two shapes (numpy rules), or loupe::Error naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that read a tensor of `shape`/`strides` as if it had the (broadcast) shape `target`:
// missing leading dims and size-1 dims get stride 0.
Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target);

// Wraps a possibly negative dim into [0, ndim) or throws an Error naming the op.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

std::ostream& operator<<(std::ostream& out, const Shape& shape);

}  // namespace loupe
