// What every kernel file of the CUDA backend shares: launch sizes, the POD view a kernel gets
// (sizes and strides of up to 8 dims, after merging dims that can be walked as one), and the
// device-pointer accessor. Included by the .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "tensor/cuda/internal.hpp"
#include "tensor/cuda/runtime.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/tensor.hpp"

namespace loupe::cuda {

constexpr int kMaxDims = 8;
constexpr int kThreads = 256;
constexpr int kWarp = 32;

// Blocks for a grid-stride loop over n items: enough to fill the GPU several times over, never
// more than needed (kernels loop, so any count is correct).
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t{1} << 16));
}

// The first element of t on its device. Pointer arithmetic only: the host never dereferences it.
template <typename T>
T* device_data(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// N operands walked together over one shape: the kernel's whole view of them.
template <int N>
struct Geometry {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  // Element offsets of linear (row-major) index i in each operand. The outermost dim needs no
  // division: whatever is left of i is its index.
  __device__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d > 0; --d) {
      const int64_t idx = i % sizes[d];
      i /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
    if (ndim > 0) {
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][0];
    }
  }
};

// The geometry of N operands (strides already broadcast to `shape`): size-1 dims are dropped and
// neighbouring dims merged wherever every operand steps through them as through one dim, so a
// contiguous tensor becomes one dim and a transposed matrix stays two.
template <int N>
Geometry<N> make_geometry(const Shape& shape, const std::array<Strides, N>& strides, const char* op) {
  std::vector<int64_t> sizes;
  std::array<std::vector<int64_t>, N> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !sizes.empty();
    for (int k = 0; k < N && merge; ++k) merge = st[k].back() == strides[k][d] * shape[d];
    if (merge) {
      sizes.back() *= shape[d];
      for (int k = 0; k < N; ++k) st[k].back() = strides[k][d];
    } else {
      sizes.push_back(shape[d]);
      for (int k = 0; k < N; ++k) st[k].push_back(strides[k][d]);
    }
  }
  LOUPE_CHECK(sizes.size() <= kMaxDims, op, ": tensors of shape ", shape_str(shape), " need ", sizes.size(),
              " dims after merging; the CUDA kernels handle at most ", kMaxDims);
  Geometry<N> g;
  g.ndim = static_cast<int>(sizes.size());
  for (int d = 0; d < g.ndim; ++d) {
    g.sizes[d] = sizes[static_cast<size_t>(d)];
    for (int k = 0; k < N; ++k) g.strides[k][d] = st[k][static_cast<size_t>(d)];
  }
  return g;
}

// True when the geometry is one dense run (every operand contiguous, none broadcast).
template <int N>
bool is_dense(const Geometry<N>& g) {
  if (g.ndim == 0) return true;
  if (g.ndim > 1) return false;
  for (int k = 0; k < N; ++k) {
    if (g.strides[k][0] != 1) return false;
  }
  return true;
}

// Checks that every defined tensor is on `device` (a CUDA device).
inline void check_same_device(const char* op, Device device, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    LOUPE_CHECK(!t->defined() || t->device() == device, op, ": expected every tensor on ", device.str(),
                ", got one on ", t->device().str());
  }
}

}  // namespace loupe::cuda
