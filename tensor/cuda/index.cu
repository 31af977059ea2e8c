// CUDA kernels of the indexing ops (tensor/ops/index.cpp): gather, scatter_add, index_select,
// index_add, masked_fill and one_hot's scatter of ones; embedding and embedding_backward are
// compositions of index_select / index_add in tensor/ops/index.cpp and run here through them.
//
// tensor/ops/index.cpp does every device-independent check (dtypes, shapes, dims) before it
// dispatches here, and validates index values through first_out_of_range below: one grid-stride
// pass over the index tensor records the smallest position holding a bad value (atomicMin), and
// one synchronisation brings it to the host, so a bad index raises the CPU op's loupe::Error (the
// same first offending value) and never reaches a kernel as an illegal address.
//
// Kernels are one thread per element, grid-stride. The scatter-style ops (scatter_add, index_add,
// and through them gather's and index_select's backward, embedding_backward) add with atomicAdd
// (float, double and 64-bit integers all have one on sm_90); the order of additions into one
// element is unspecified, so floating sums may differ from the CPU's in the last bits.
// Tests: tests/cuda/test_cuda.cpp (op table: index entries), tests/cuda/test_cuda_index.cpp
#include <type_traits>

#include "tensor/cuda/elementwise.cuh"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::cuda {

namespace {

// gather and scatter_add take tensors of any number of dims: their coordinates are walked here
// without merging (index's shape, one stride per operand and dim).
constexpr int kMaxIndexDims = 16;

struct IndexGeometry {
  int ndim = 0;
  int dim = 0;                       // the indexed dim
  int64_t sizes[kMaxIndexDims] = {};  // index's shape
  int64_t a[kMaxIndexDims] = {};      // strides of the indexed operand (x for gather, out for scatter)
  int64_t b[kMaxIndexDims] = {};      // strides of the other operand (out for gather, src for scatter)
};

IndexGeometry index_geometry(const Tensor& index, int64_t dim, const Strides& a, const Strides& b, const char* op) {
  LOUPE_CHECK(index.dim() <= kMaxIndexDims, op, ": index of shape ", shape_str(index.shape()),
              " has more dims than the CUDA kernel handles (", kMaxIndexDims, ")");
  IndexGeometry g;
  g.ndim = static_cast<int>(index.dim());
  g.dim = static_cast<int>(dim);
  for (int d = 0; d < g.ndim; ++d) {
    g.sizes[d] = index.shape()[static_cast<size_t>(d)];
    g.a[d] = a[static_cast<size_t>(d)];
    g.b[d] = b[static_cast<size_t>(d)];
  }
  return g;
}

// Offsets of the element at linear position i of index (row-major): in the indexed operand with
// its `dim` coordinate replaced by `target`, and in the other operand as is.
__device__ void index_offsets(const IndexGeometry& g, int64_t i, const int64_t* index, int64_t& off_a,
                              int64_t& off_b) {
  const int64_t target = index[i];
  off_a = 0;
  off_b = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    const int64_t c = i % g.sizes[d];
    i /= g.sizes[d];
    off_a += (d == g.dim ? target : c) * g.a[d];
    off_b += c * g.b[d];
  }
}

template <typename T>
__device__ void atomic_add(T* at, T v) {
  if constexpr (std::is_same_v<T, int64_t>) {
    // Two's complement: an unsigned add gives the signed sum.
    atomicAdd(reinterpret_cast<unsigned long long*>(at), static_cast<unsigned long long>(v));
  } else {
    atomicAdd(at, v);
  }
}

__global__ void first_bad_kernel(const int64_t* index, int64_t n, int64_t lo, int64_t hi, bool has_ignore,
                                 int64_t ignore, unsigned long long* first) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t v = index[i];
    if ((v < lo || v >= hi) && !(has_ignore && v == ignore)) atomicMin(first, static_cast<unsigned long long>(i));
  }
}

// out (contiguous, index's shape) = x at the positions index names along g.dim (g.a: x's strides).
template <typename T>
__global__ void gather_kernel(IndexGeometry g, int64_t n, const T* x, const int64_t* index, T* out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off_x, off_out;
    index_offsets(g, i, index, off_x, off_out);
    out[off_out] = x[off_x];
  }
}

// out (g.a) at the positions index names += src (g.b) at index's positions.
template <typename T>
__global__ void scatter_add_kernel(IndexGeometry g, int64_t n, const T* src, const int64_t* index, T* out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off_out, off_src;
    index_offsets(g, i, index, off_out, off_src);
    atomic_add(out + off_out, src[off_src]);
  }
}

// x contiguous (outer, size, inner), out contiguous (outer, n, inner): out row (b, j) = x row
// (b, index[j]).
template <typename T>
__global__ void index_select_kernel(const T* x, const int64_t* index, T* out, int64_t total, int64_t n, int64_t size,
                                    int64_t inner) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t k = i % inner, r = i / inner;
    const int64_t b = r / n, j = r % n;
    out[i] = x[(b * size + index[j]) * inner + k];
  }
}

// out contiguous (outer, size, inner) += alpha * src contiguous (outer, n, inner) scattered by row.
template <typename T>
__global__ void index_add_kernel(const T* src, const int64_t* index, T* out, int64_t total, int64_t n, int64_t size,
                                 int64_t inner, T alpha) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t k = i % inner, r = i / inner;
    const int64_t b = r / n, j = r % n;
    atomic_add(out + (b * size + index[j]) * inner + k, static_cast<T>(alpha * src[i]));
  }
}

__global__ void one_hot_kernel(const int64_t* index, int64_t n, int64_t classes, int64_t* out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i * classes + index[i]] = 1;
  }
}

template <typename T>
struct FillWhere {
  T value;
  __device__ T operator()(T a, bool m) const { return m ? value : a; }
};

void check_index(const Tensor& index, const char* op) {
  LOUPE_CHECK(index.dtype() == DType::i64 && index.is_contiguous(), op,
              ": expected a contiguous int64 index tensor, got ", index.dtype());
}

}  // namespace

std::optional<int64_t> first_out_of_range(const Tensor& index, int64_t lo, int64_t hi, std::optional<int64_t> ignore) {
  check_index(index, "first_out_of_range");
  const int64_t n = index.numel();
  if (n == 0) return std::nullopt;
  const int device = index.device().index;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  Workspace scratch(sizeof(unsigned long long), device);
  auto* first = static_cast<unsigned long long*>(scratch.data());
  LOUPE_CUDA_CHECK(cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), s));  // "none": the largest value
  const int64_t* idx = device_data<const int64_t>(index);
  first_bad_kernel<<<blocks_for(n), kThreads, 0, s>>>(idx, n, lo, hi, ignore.has_value(), ignore.value_or(0), first);
  LOUPE_CUDA_CHECK_LAUNCH();
  unsigned long long position = 0;
  LOUPE_CUDA_CHECK(cudaMemcpyAsync(&position, first, sizeof(position), cudaMemcpyDeviceToHost, s));
  LOUPE_CUDA_CHECK(cudaStreamSynchronize(s));
  if (position == ~0ull) return std::nullopt;
  int64_t value = 0;  // the error path only: fetch the offending value
  LOUPE_CUDA_CHECK(cudaMemcpyAsync(&value, idx + position, sizeof(value), cudaMemcpyDeviceToHost, s));
  LOUPE_CUDA_CHECK(cudaStreamSynchronize(s));
  return value;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  check_index(index, "gather");
  check_same_device("gather", x.device(), {&index});
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  const int64_t n = index.numel();
  if (n == 0) return out;
  const IndexGeometry g = index_geometry(index, dim, x.strides(), out.strides(), "gather");
  const int device = x.device().index;
  DeviceGuard guard(device);
  dispatch_all(x.dtype(), "gather", [&](auto tag) {
    using T = typename decltype(tag)::type;
    gather_kernel<T><<<blocks_for(n), kThreads, 0, stream(device)>>>(g, n, device_data<const T>(x),
                                                                      device_data<const int64_t>(index),
                                                                      device_data<T>(out));
    LOUPE_CUDA_CHECK_LAUNCH();
  });
  return out;
}

void scatter_add_(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  check_index(index, "scatter_add");
  check_same_device("scatter_add", out.device(), {&index, &src});
  const int64_t n = index.numel();
  if (n == 0) return;
  const IndexGeometry g = index_geometry(index, dim, out.strides(), src.strides(), "scatter_add");
  const int device = out.device().index;
  DeviceGuard guard(device);
  dispatch_numeric(out.dtype(), "scatter_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    scatter_add_kernel<T><<<blocks_for(n), kThreads, 0, stream(device)>>>(g, n, device_data<const T>(src),
                                                                           device_data<const int64_t>(index),
                                                                           device_data<T>(out));
    LOUPE_CUDA_CHECK_LAUNCH();
  });
}

Tensor index_select(const Tensor& x_in, int64_t dim, const Tensor& index) {
  check_index(index, "index_select");
  check_same_device("index_select", x_in.device(), {&index});
  const Tensor x = ops::contiguous(x_in);
  const int64_t n = index.numel();
  Shape shape = x.shape();
  shape[static_cast<size_t>(dim)] = n;
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  const int64_t total = out.numel();
  if (total == 0) return out;
  const int64_t size = x.shape()[static_cast<size_t>(dim)];
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(dim) + 1; d < shape.size(); ++d) inner *= shape[d];
  const int device = x.device().index;
  DeviceGuard guard(device);
  dispatch_all(x.dtype(), "index_select", [&](auto tag) {
    using T = typename decltype(tag)::type;
    index_select_kernel<T><<<blocks_for(total), kThreads, 0, stream(device)>>>(
        device_data<const T>(x), device_data<const int64_t>(index), device_data<T>(out), total, n, size, inner);
    LOUPE_CUDA_CHECK_LAUNCH();
  });
  return out;
}

void index_add_(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src_in, double alpha) {
  check_index(index, "index_add");
  check_same_device("index_add", out.device(), {&index, &src_in});
  LOUPE_CHECK(out.is_contiguous(), "index_add: expected a contiguous destination");
  const Tensor src = ops::contiguous(src_in);
  const int64_t total = src.numel();
  if (total == 0) return;
  const int64_t n = index.numel();
  const int64_t size = out.shape()[static_cast<size_t>(dim)];
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(dim) + 1; d < out.shape().size(); ++d) inner *= out.shape()[d];
  const int device = out.device().index;
  DeviceGuard guard(device);
  dispatch_numeric(out.dtype(), "index_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    index_add_kernel<T><<<blocks_for(total), kThreads, 0, stream(device)>>>(
        device_data<const T>(src), device_data<const int64_t>(index), device_data<T>(out), total, n, size, inner,
        static_cast<T>(alpha));
    LOUPE_CUDA_CHECK_LAUNCH();
  });
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_same_device("masked_fill", x.device(), {&mask});
  const Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  dispatch_all(x.dtype(), "masked_fill", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map<T, T, bool>("masked_fill", out, FillWhere<T>{static_cast<T>(value)}, x, mask);
  });
  return out;
}

void one_hot_(const Tensor& out, const Tensor& index) {
  check_index(index, "one_hot");
  check_same_device("one_hot", out.device(), {&index});
  LOUPE_CHECK(out.dtype() == DType::i64 && out.is_contiguous(), "one_hot: expected a contiguous int64 output");
  const int64_t n = index.numel();
  if (n == 0 || out.numel() == 0) return;
  const int64_t classes = out.numel() / n;
  const int device = out.device().index;
  DeviceGuard guard(device);
  one_hot_kernel<<<blocks_for(n), kThreads, 0, stream(device)>>>(device_data<const int64_t>(index), n, classes,
                                                                  device_data<int64_t>(out));
  LOUPE_CUDA_CHECK_LAUNCH();
}

}  // namespace loupe::cuda
