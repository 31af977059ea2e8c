// CUDA sort / topk along one dim (values and int64 indices) and the scatter of their backward:
// the semantics of tensor/ops/sort.cpp. The sort dim is moved last (a transpose, made
// contiguous), so every line is one contiguous row of `len` elements; results are transposed
// back.
//
// The order: ascending with NaN after every number (descending: the reverse, NaN first), equal
// values by smaller original index. Ties broken by index make it a strict total order over the
// (value, index) pairs of a row, so any correct sorting network gives exactly the CPU's stable
// result.
//   - rows up to 4096 elements: one block per row, a bitonic sort of (value, index) pairs in
//     shared memory, padded to a power of two with slots that sort after everything
//     (4096 * (8 + 4) bytes = 48 KiB at most, the default shared-memory limit);
//   - longer rows: a bottom-up merge sort in global memory, one launch per pass (log2(len)
//     passes). In a pass every element finds its place in the merged run independently: its
//     position in its own run plus, by binary search, the number of elements of the partner run
//     that come before it. Simple and clearly correct rather than fast.
// topk is the sort of the whole row followed by its first k columns.
// sort_backward: one thread per gradient element, atomicAdd into a zero tensor (max/min backward
// reuses it, where indices of one line may repeat).
// Tests: tests/cuda/test_cuda.cpp (op table: sort entries), tests/cuda/test_cuda_index.cpp
#include <algorithm>
#include <type_traits>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::cuda {

namespace {

constexpr int kMaxBitonic = 4096;  // longest row sorted in shared memory

// Ascending order with NaN after every number (all NaNs equal), as the CPU's less_nan_last.
template <typename T>
__device__ bool less_nan_last(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    return !(a != a) && ((b != b) || a < b);
  } else {
    return a < b;
  }
}

// Whether (va, ia) comes before (vb, ib) in the output order.
template <typename T, typename I>
__device__ bool comes_before(T va, I ia, T vb, I ib, bool descending) {
  if (descending ? less_nan_last(vb, va) : less_nan_last(va, vb)) return true;
  if (descending ? less_nan_last(va, vb) : less_nan_last(vb, va)) return false;
  return ia < ib;
}

// Offset of the values after `padded` int indices in shared memory, 8-byte aligned.
__host__ __device__ constexpr size_t values_offset(int padded) {
  return (static_cast<size_t>(padded) * sizeof(int) + 7) / 8 * 8;
}

// One block per row (grid-stride over rows): bitonic sort of `padded` (power of two >= len)
// slots; slots at or past len are padding and sort last. Writes the first `keep` of each row.
template <typename T>
__global__ void bitonic_sort_rows(const T* in, T* values, int64_t* indices, int64_t rows, int len, int padded,
                                  int keep, bool descending) {
  extern __shared__ __align__(8) unsigned char shared[];
  int* si = reinterpret_cast<int*>(shared);
  T* sv = reinterpret_cast<T*>(shared + values_offset(padded));
  const auto before = [&](int a, int b) {  // slot a's pair comes before slot b's
    if (si[a] >= len) return false;
    if (si[b] >= len) return true;
    return comes_before(sv[a], si[a], sv[b], si[b], descending);
  };
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* src = in + row * len;
    for (int i = threadIdx.x; i < padded; i += blockDim.x) {
      sv[i] = i < len ? src[i] : T(0);
      si[i] = i;
    }
    __syncthreads();
    for (int k = 2; k <= padded; k <<= 1) {
      for (int j = k >> 1; j > 0; j >>= 1) {
        for (int i = threadIdx.x; i < padded; i += blockDim.x) {
          const int partner = i ^ j;
          if (partner <= i) continue;
          // Within blocks of k slots, alternately in order and in reverse order; the last stage
          // (k == padded) puts the whole row in order.
          const bool in_order = (i & k) == 0;
          if (in_order ? before(partner, i) : before(i, partner)) {
            const T v = sv[i];
            sv[i] = sv[partner];
            sv[partner] = v;
            const int x = si[i];
            si[i] = si[partner];
            si[partner] = x;
          }
        }
        __syncthreads();
      }
    }
    for (int i = threadIdx.x; i < keep; i += blockDim.x) {
      values[row * keep + i] = sv[i];
      indices[row * keep + i] = si[i];
    }
    __syncthreads();  // the next row reuses the shared memory
  }
}

__global__ void iota_rows(int64_t* indices, int64_t total, int64_t len) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    indices[e] = e % len;
  }
}

// One merge pass: runs of `width` sorted pairs, merged pairwise into runs of 2 * width.
template <typename T>
__global__ void merge_pass(const T* sv, const int64_t* si, T* dv, int64_t* di, int64_t total, int64_t len,
                           int64_t width, bool descending) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t row = e / len, i = e % len;
    const T* rv = sv + row * len;
    const int64_t* ri = si + row * len;
    const int64_t start = i / (2 * width) * (2 * width);
    const int64_t mid = start + width < len ? start + width : len;
    const int64_t end = start + 2 * width < len ? start + 2 * width : len;
    const T v = rv[i];
    const int64_t id = ri[i];
    // The other run, and the number of its elements that come before (v, id): the run is in
    // order, so "comes before" holds for a prefix of it.
    int64_t lo = i < mid ? mid : start;
    int64_t hi = i < mid ? end : mid;
    const int64_t other = lo;
    while (lo < hi) {
      const int64_t m = lo + (hi - lo) / 2;
      if (comes_before(rv[m], ri[m], v, id, descending)) {
        lo = m + 1;
      } else {
        hi = m;
      }
    }
    const int64_t own = i < mid ? i - start : i - mid;
    const int64_t dst = row * len + start + own + (lo - other);
    dv[dst] = v;
    di[dst] = id;
  }
}

// dx (contiguous (outer, to_size, inner)) += g (contiguous (outer, from_size, inner)) scattered
// along the middle dim by indices.
template <typename T>
__global__ void sort_backward_kernel(const T* g, const int64_t* indices, T* dx, int64_t total, int64_t from_size,
                                     int64_t to_size, int64_t inner) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t i = e % inner, o = e / inner / from_size;
    atomicAdd(dx + (o * to_size + indices[e]) * inner + i, g[e]);
  }
}

int next_power_of_two(int64_t n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Sorts the rows of the contiguous (rows, len) tensor x; values and indices (rows, keep).
template <typename T>
void sort_rows(const Tensor& x, int64_t rows, int64_t len, int64_t keep, bool descending, const Tensor& values,
               const Tensor& indices) {
  const int device = x.device().index;
  cudaStream_t s = stream(device);
  if (len <= kMaxBitonic) {
    const int padded = next_power_of_two(len);
    const size_t shared = values_offset(padded) + static_cast<size_t>(padded) * sizeof(T);
    const int threads = std::clamp(padded / 2, kWarp, 512);
    const auto blocks = static_cast<unsigned>(std::min<int64_t>(rows, int64_t{1} << 16));
    bitonic_sort_rows<T><<<blocks, threads, shared, s>>>(device_data<const T>(x), device_data<T>(values),
                                                         device_data<int64_t>(indices), rows, static_cast<int>(len),
                                                         padded, static_cast<int>(keep), descending);
    LOUPE_CUDA_CHECK_LAUNCH();
    return;
  }
  const int64_t total = rows * len;
  Tensor va = ops::clone(x), vb = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor ia = Tensor::empty(x.shape(), DType::i64, x.device()), ib = Tensor::empty(x.shape(), DType::i64, x.device());
  iota_rows<<<blocks_for(total), kThreads, 0, s>>>(device_data<int64_t>(ia), total, len);
  LOUPE_CUDA_CHECK_LAUNCH();
  for (int64_t width = 1; width < len; width *= 2) {
    merge_pass<T><<<blocks_for(total), kThreads, 0, s>>>(device_data<const T>(va), device_data<const int64_t>(ia),
                                                         device_data<T>(vb), device_data<int64_t>(ib), total, len,
                                                         width, descending);
    LOUPE_CUDA_CHECK_LAUNCH();
    std::swap(va, vb);
    std::swap(ia, ib);
  }
  ops::copy_(values, ops::narrow(va, 1, 0, keep));
  ops::copy_(indices, ops::narrow(ia, 1, 0, keep));
}

}  // namespace

ops::ValuesIndices sort(const Tensor& x_in, int64_t dim, int64_t k, bool descending) {
  const char* op = "sort";
  const Tensor x0 = x_in.dim() == 0 ? ops::reshape(x_in, {1}) : x_in;
  const int64_t last = x0.dim() - 1;
  const Tensor x = ops::contiguous(ops::transpose(x0, dim, last));  // the sort dim last
  const int64_t len = x.shape().back();
  LOUPE_CHECK(k >= 0 && k <= len, op, ": k = ", k, " out of range for a line of ", len);
  const int64_t rows = len == 0 ? 0 : x.numel() / len;
  Shape shape = x.shape();
  shape.back() = k;
  Tensor values = Tensor::empty({rows, k}, x.dtype(), x.device());
  Tensor indices = Tensor::empty({rows, k}, DType::i64, x.device());
  if (rows > 0 && k > 0) {
    const int device = x.device().index;
    DeviceGuard guard(device);
    dispatch_all(x.dtype(), op, [&](auto tag) {
      using T = typename decltype(tag)::type;
      sort_rows<T>(ops::reshape(x, {rows, len}), rows, len, k, descending, values, indices);
    });
  }
  // Back to the input's layout: the sort dim in its place, contiguous, 0-d stays 0-d.
  const auto back = [&](const Tensor& t) {
    const Tensor out = ops::contiguous(ops::transpose(ops::reshape(t, shape), dim, last));
    return x_in.dim() == 0 ? ops::reshape(out, {}) : out;
  };
  return {back(values), back(indices)};
}

void sort_backward_(const Tensor& dx, const Tensor& g_in, const Tensor& indices_in, int64_t dim) {
  const char* op = "sort_backward";
  check_same_device(op, dx.device(), {&g_in, &indices_in});
  LOUPE_CHECK(dx.is_contiguous() && indices_in.dtype() == DType::i64 && g_in.shape() == indices_in.shape() &&
                  g_in.dtype() == dx.dtype() && g_in.dim() == dx.dim(),
              op, ": expected a contiguous destination and matching gradient and indices");
  const Tensor g = ops::contiguous(g_in);
  const Tensor indices = ops::contiguous(indices_in);
  const int64_t total = g.numel();
  if (total == 0) return;
  const Shape& shape = g.shape();
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(dim) + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t from_size = shape.empty() ? 1 : shape[static_cast<size_t>(dim)];
  const int64_t to_size = dx.shape().empty() ? 1 : dx.shape()[static_cast<size_t>(dim)];
  const int device = dx.device().index;
  DeviceGuard guard(device);
  dispatch_floating(dx.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    sort_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream(device)>>>(
        device_data<const T>(g), device_data<const int64_t>(indices), device_data<T>(dx), total, from_size, to_size,
        inner);
    LOUPE_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace loupe::cuda
