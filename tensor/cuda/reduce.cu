// CUDA reductions: sum and max/min (values, indices) over any set of dims; everything else in the
// family (mean, var, norm, logsumexp, all, any) is composed from these in composite.cpp.
//
// x is seen as a matrix: one row per output element (the kept dims), one column per reduced
// element. Two layouts need no copy:
//   - reduced dims innermost (x contiguous): rows are contiguous. One warp reduces one row (its 32
//     lanes stride along the row, then combine by warp shuffles). When there are few rows and they
//     are long, each row is cut into chunks reduced by different warps into a partial buffer, and
//     a second pass reduces the partials (multi-pass).
//   - reduced dims outermost (x contiguous, e.g. the bias gradient's sum over the batch): columns
//     are contiguous across threads, so one thread reduces one column, reads coalesced; long
//     columns are cut into chunks the same way.
// Any other layout is permuted (kept dims first) and copied to the first.
// Sums of floats accumulate in double, like the CPU, so f32 results agree to rounding; bfloat16
// sums (mixed precision's bias gradients) accumulate in float. Max/min
// keep the first index among equal values and propagate NaN (the first NaN), like the CPU; the
// combine step is order-independent, so results do not depend on the launch configuration.
// Tests: tests/cuda/test_cuda.cpp (op table: reduce entries)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::cuda {

namespace {

// --- the two reductions, as (identity, load, combine, finish) ---

// bfloat16 accumulates in float (its 8-bit mantissa loses nothing there) and rounds the result.
template <typename T>
struct SumOp {
  using Elem = T;
  using Acc = std::conditional_t<std::is_same_v<T, bf16>, float,
                                 std::conditional_t<std::is_floating_point_v<T>, double, int64_t>>;
  using Out = std::conditional_t<std::is_floating_point_v<T> || std::is_same_v<T, bf16>, T, int64_t>;
  static constexpr bool kIndices = false;
  __device__ Acc identity() const { return Acc(0); }
  __device__ Acc load(T v, int64_t) const { return convert<Acc>(v); }
  __device__ Acc combine(Acc a, Acc b) const { return a + b; }
  __device__ Out finish(Acc a) const { return convert<Out>(a); }
};

template <typename T>
struct Best {
  T value;
  int64_t index;  // -1: nothing seen yet
};

template <typename T, bool Largest>
struct ExtremeOp {
  using Elem = T;
  using Acc = Best<T>;
  using Out = T;
  static constexpr bool kIndices = true;
  __device__ Acc identity() const { return {T(0), -1}; }
  __device__ Acc load(T v, int64_t index) const { return {v, index}; }
  // The better of two candidates: NaN beats numbers, then the larger (smaller) value, then the
  // smaller index. Order-independent, so any reduction tree gives the CPU's answer.
  __device__ Acc combine(Acc a, Acc b) const {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    const bool a_nan = a.value != a.value, b_nan = b.value != b.value;
    if (a_nan || b_nan) {
      if (a_nan && b_nan) return a.index < b.index ? a : b;
      return a_nan ? a : b;
    }
    const bool b_better = Largest ? b.value > a.value : b.value < a.value;
    if (b_better) return b;
    if (a.value == b.value && b.index < a.index) return b;
    return a;
  }
  __device__ Out finish(Acc a) const { return a.value; }
};

// Warp shuffle of any small trivially copyable value, one 32-bit word at a time.
template <typename A>
__device__ A shuffle_down(A v, int delta) {
  constexpr int kWords = (sizeof(A) + 3) / 4;
  unsigned words[kWords] = {};
  memcpy(words, &v, sizeof(A));
#pragma unroll
  for (int w = 0; w < kWords; ++w) words[w] = __shfl_down_sync(0xffffffffu, words[w], delta);
  memcpy(&v, words, sizeof(A));
  return v;
}

template <typename Op, typename Acc>
__device__ Acc warp_combine(const Op& op, Acc acc) {
#pragma unroll
  for (int delta = kWarp / 2; delta > 0; delta /= 2) acc = op.combine(acc, shuffle_down(acc, delta));
  return acc;  // complete in lane 0
}

template <typename Op>
__device__ void write_result(const Op& op, typename Op::Acc acc, int64_t at, typename Op::Out* out, int64_t* indices) {
  out[at] = op.finish(acc);
  if constexpr (Op::kIndices) {
    if (indices != nullptr) indices[at] = acc.index;
  }
}

// Rows layout. Task t = (row, chunk) is reduced by one warp; In is the element type (first pass)
// or Op::Acc (the partials of a second pass, already loaded).
template <typename Op, typename In>
__global__ void reduce_rows(const In* in, int64_t rows, int64_t cols, int64_t chunks, int64_t chunk_len, Op op,
                            typename Op::Acc* partial, typename Op::Out* out, int64_t* indices) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
  for (int64_t task = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; task < rows * chunks;
       task += warps) {
    const int64_t row = task / chunks, chunk = task % chunks;
    const int64_t begin = chunk * chunk_len, end = cols < begin + chunk_len ? cols : begin + chunk_len;
    typename Op::Acc acc = op.identity();
    for (int64_t j = begin + lane; j < end; j += kWarp) {
      if constexpr (std::is_same_v<In, typename Op::Acc>) {
        acc = op.combine(acc, in[row * cols + j]);
      } else {
        acc = op.combine(acc, op.load(in[row * cols + j], j));
      }
    }
    acc = warp_combine(op, acc);
    if (lane == 0) {
      if (chunks == 1) {
        write_result(op, acc, row, out, indices);
      } else {
        partial[task] = acc;
      }
    }
  }
}

// Columns layout: x is (rows = reduced, cols = outputs) contiguous; thread (col, chunk) reduces
// rows [chunk * chunk_len, ...) of one column.
template <typename Op, typename In>
__global__ void reduce_columns(const In* in, int64_t rows, int64_t cols, int64_t chunks, int64_t chunk_len, Op op,
                               typename Op::Acc* partial, typename Op::Out* out, int64_t* indices) {
  const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t task = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; task < cols * chunks;
       task += threads) {
    const int64_t chunk = task / cols, col = task % cols;
    const int64_t begin = chunk * chunk_len, end = rows < begin + chunk_len ? rows : begin + chunk_len;
    typename Op::Acc acc = op.identity();
    for (int64_t i = begin; i < end; ++i) {
      if constexpr (std::is_same_v<In, typename Op::Acc>) {
        acc = op.combine(acc, in[i * cols + col]);
      } else {
        acc = op.combine(acc, op.load(in[i * cols + col], i));
      }
    }
    if (chunks == 1) {
      write_result(op, acc, col, out, indices);
    } else {
      partial[chunk * cols + col] = acc;  // (chunks, cols): itself a columns layout
    }
  }
}

// Enough parallel tasks to keep every SM busy.
constexpr int64_t kTargetTasks = 1 << 14;
constexpr int64_t kMinChunk = 2048;

int64_t chunk_count(int64_t outputs, int64_t length) {
  if (outputs >= kTargetTasks || length <= 2 * kMinChunk) return 1;
  return std::min((length + kMinChunk - 1) / kMinChunk, (kTargetTasks + outputs - 1) / outputs);
}

template <typename Op, typename T>
void run_rows(const Op& op, const T* in, int64_t rows, int64_t cols, typename Op::Out* out, int64_t* indices,
              int device) {
  using Acc = typename Op::Acc;
  cudaStream_t s = stream(device);
  const int64_t chunks = chunk_count(rows, cols);
  const int64_t chunk_len = (cols + chunks - 1) / chunks;
  const unsigned blocks = blocks_for(rows * chunks * kWarp);
  if (chunks == 1) {
    reduce_rows<Op, T><<<blocks, kThreads, 0, s>>>(in, rows, cols, 1, cols, op, nullptr, out, indices);
    LOUPE_CUDA_CHECK_LAUNCH();
    return;
  }
  Workspace partial(sizeof(Acc) * static_cast<size_t>(rows * chunks), device);
  Acc* p = static_cast<Acc*>(partial.data());
  reduce_rows<Op, T><<<blocks, kThreads, 0, s>>>(in, rows, cols, chunks, chunk_len, op, p, out, indices);
  LOUPE_CUDA_CHECK_LAUNCH();
  reduce_rows<Op, Acc><<<blocks_for(rows * kWarp), kThreads, 0, s>>>(p, rows, chunks, 1, chunks, op, nullptr, out,
                                                                     indices);
  LOUPE_CUDA_CHECK_LAUNCH();
}

template <typename Op, typename T>
void run_columns(const Op& op, const T* in, int64_t rows, int64_t cols, typename Op::Out* out, int64_t* indices,
                 int device) {
  using Acc = typename Op::Acc;
  cudaStream_t s = stream(device);
  const int64_t chunks = chunk_count(cols, rows);
  const int64_t chunk_len = (rows + chunks - 1) / chunks;
  if (chunks == 1) {
    reduce_columns<Op, T><<<blocks_for(cols), kThreads, 0, s>>>(in, rows, cols, 1, rows, op, nullptr, out, indices);
    LOUPE_CUDA_CHECK_LAUNCH();
    return;
  }
  Workspace partial(sizeof(Acc) * static_cast<size_t>(cols * chunks), device);
  Acc* p = static_cast<Acc*>(partial.data());
  reduce_columns<Op, T><<<blocks_for(cols * chunks), kThreads, 0, s>>>(in, rows, cols, chunks, chunk_len, op, p, out,
                                                                      indices);
  LOUPE_CUDA_CHECK_LAUNCH();
  reduce_columns<Op, Acc><<<blocks_for(cols), kThreads, 0, s>>>(p, chunks, cols, 1, chunks, op, nullptr, out, indices);
  LOUPE_CUDA_CHECK_LAUNCH();
}

// Reduces x over `dims` (normalised; empty = all) into out (and indices for max/min), both
// contiguous with one element per kept position in row-major order.
template <typename Op>
void reduce(const Op& op, const Tensor& x, const ops::Dims& dims, const Tensor& out, const Tensor& indices) {
  using T = typename Op::Elem;
  if (out.numel() == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  std::vector<bool> reduced(x.shape().size(), dims.empty());
  for (int64_t d : dims) reduced[static_cast<size_t>(d)] = true;
  std::vector<int64_t> kept_first, reduced_last;
  int64_t outputs = 1, length = 1;
  for (size_t d = 0; d < reduced.size(); ++d) {
    (reduced[d] ? reduced_last : kept_first).push_back(static_cast<int64_t>(d));
    (reduced[d] ? length : outputs) *= x.shape()[d];
  }
  typename Op::Out* o = device_data<typename Op::Out>(out);
  int64_t* idx = indices.defined() ? device_data<int64_t>(indices) : nullptr;
  // Reduced dims first in a contiguous x (ignoring size-1 dims): the columns layout.
  bool columns = x.is_contiguous() && !reduced_last.empty() && !kept_first.empty() && outputs >= 256;
  for (size_t d = 0, seen_kept = 0; d < reduced.size() && columns; ++d) {
    if (x.shape()[d] == 1) continue;
    if (!reduced[d]) seen_kept = 1;
    if (reduced[d] && seen_kept) columns = false;
  }
  if (columns) return run_columns(op, device_data<const T>(x), length, outputs, o, idx, device);
  std::vector<int64_t> order = kept_first;
  order.insert(order.end(), reduced_last.begin(), reduced_last.end());
  const Tensor rows = ops::contiguous(ops::permute(x, order));
  run_rows(op, device_data<const T>(rows), outputs, length, o, idx, device);
}

template <bool Largest>
void extreme(const Tensor& x, const ops::Dims& dims, const Tensor& values, const Tensor& indices, const char* op) {
  int64_t count = 1;
  for (size_t d = 0; d < x.shape().size(); ++d) {
    if (dims.empty() || std::find(dims.begin(), dims.end(), static_cast<int64_t>(d)) != dims.end()) {
      count *= x.shape()[d];
    }
  }
  LOUPE_CHECK(count > 0 || values.numel() == 0, op, ": cannot reduce over a zero-size dim of shape ",
              shape_str(x.shape()), " (dims ", shape_str(dims), "): the reduction has no identity");
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    reduce(ExtremeOp<T, Largest>{}, x, dims, values, indices);
  });
}

template <bool Largest>
ops::ValuesIndices extreme_along(const Tensor& x, int64_t dim, bool keepdim, const char* op) {
  const int64_t d = wrap_dim(dim, x.dim(), op);
  const ops::Dims dims = x.dim() == 0 ? ops::Dims{} : ops::Dims{d};
  const Shape shape = ops::reduced_shape(x.shape(), dims, keepdim);
  ops::ValuesIndices out{Tensor::empty(shape, x.dtype(), x.device()), Tensor::empty(shape, DType::i64, x.device())};
  extreme<Largest>(x, dims, out.values, out.indices, op);
  return out;
}

template <bool Largest>
Tensor extreme_over(const Tensor& x, const ops::Dims& dims_in, bool keepdim, const char* op) {
  const ops::Dims dims = ops::normalize_dims(dims_in, x.dim(), op);
  Tensor out = Tensor::empty(ops::reduced_shape(x.shape(), dims, keepdim), x.dtype(), x.device());
  extreme<Largest>(x, dims, out, Tensor(), op);
  return out;
}

// One thread per line of a contiguous (outer, size, inner) tensor: running sums along the line,
// front to back or back to front. Serial per line (fine for the line lengths of cumsum's uses).
template <typename T, typename Out>
__global__ void scan_lines(const T* in, Out* out, int64_t outer, int64_t size, int64_t inner, bool reverse) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t line = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; line < outer * inner;
       line += stride) {
    const int64_t base = (line / inner) * size * inner + line % inner;
    Acc acc = 0;
    for (int64_t k = 0; k < size; ++k) {
      const int64_t at = base + (reverse ? size - 1 - k : k) * inner;
      acc += static_cast<Acc>(in[at]);
      out[at] = static_cast<Out>(acc);
    }
  }
}

}  // namespace

Tensor cumsum(const Tensor& x_in, int64_t dim_in, bool reverse) {
  const char* op = reverse ? "reverse_cumsum" : "cumsum";
  const int64_t dim = wrap_dim(dim_in, x_in.dim(), op);
  const Tensor x = ops::contiguous(x_in);
  const DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  Tensor out = Tensor::empty(x.shape(), out_dtype, x.device());
  if (out.numel() == 0) return out;
  int64_t outer = 1, size = 1, inner = 1;
  for (int64_t d = 0; d < x.dim(); ++d) (d < dim ? outer : d == dim ? size : inner) *= x.size(d);
  const int device = x.device().index;
  DeviceGuard guard(device);
  dispatch_all(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Out = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;
    scan_lines<T, Out><<<blocks_for(outer * inner), kThreads, 0, stream(device)>>>(
        device_data<const T>(x), device_data<Out>(out), outer, size, inner, reverse);
    LOUPE_CUDA_CHECK_LAUNCH();
  });
  return out;
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const ops::Dims dims = ops::normalize_dims(dims_in, x.dim(), "sum");
  const DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  Tensor out = Tensor::empty(ops::reduced_shape(x.shape(), dims, keepdim), out_dtype, x.device());
  dispatch_all_bf16(x.dtype(), "sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    reduce(SumOp<T>{}, x, dims, out, Tensor());
  });
  return out;
}

ops::ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) { return extreme_along<true>(x, dim, keepdim, "max"); }
ops::ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_along<false>(x, dim, keepdim, "min");
}
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extreme_over<true>(x, dims, keepdim, "amax");
}
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extreme_over<false>(x, dims, keepdim, "amin");
}

}  // namespace loupe::cuda
