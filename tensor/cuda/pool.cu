// CUDA 2-d pooling: max (values and argmax indices), average and adaptive average, forward and
// backward, the GPU twins of the plane loops in tensor/ops/pool.cpp (which checks the arguments,
// resolves the geometry into a Pool2dShape, makes the input contiguous and allocates the outputs).
//   forward:   one thread per output element walks its window in the CPU's order with the CPU's
//              rules (first in-bounds tap as fallback index, ties keep the first maximum, NaN
//              wins; sums in double, integer averages truncate), so values and indices are equal.
//   backward:  average pools gather: one thread per input element sums, in the CPU's output
//              order, the shares of the windows covering it (deterministic, no atomics, the same
//              sums as the CPU's scatter). Max pooling scatters with atomicAdd: its backward gets
//              only the saved indices, not the window geometry, so an input element cannot find
//              the windows that picked it (with overlapping windows the order of the few adds
//              into one element, hence the last bits of float sums, may vary from run to run).
// bfloat16 (mixed precision): every kernel loads bf16, computes in float (W = Wide<T>: max
// comparisons, backward sums; the forward average sums in double as for float32) and stores bf16,
// so bf16 max pooling picks the same values and indices as float32 pooling of the same values.
// The max-pool backward adds bf16 gradients with the native bf16 atomicAdd (sm_90) straight into
// the bf16 dx: no float32 scratch (that would cost a zero fill, a second buffer twice dx's size and
// a conversion pass), at the price of one bf16 rounding per add, which only matters where windows
// overlap (a 3x3 stride-2 pool sends at most 4 gradients to one element).
// Tests: tests/cuda/test_cuda_pool.cpp, tests/cuda/test_cuda.cpp (op table: pool entries)
#include <limits>
#include <type_traits>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"

namespace loupe::cuda {

namespace {

__host__ __device__ inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// The type a kernel computes in: float for bfloat16 elements, T itself otherwise.
template <typename T>
using Wide = std::conditional_t<std::is_same_v<T, bf16>, float, T>;

// --- max pooling ---

template <typename T>
struct MaxPool {
  const T* x;
  T* values;
  int64_t* indices;
  Pool2dShape s;

  __device__ void operator()(int64_t i) const {
    using W = Wide<T>;
    const int64_t ow = i % s.out_w, oh = (i / s.out_w) % s.out_h, plane = i / (s.out_w * s.out_h);
    const T* src = x + plane * s.in_h * s.in_w;
    int64_t h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
    const int64_t h1 = min64(h0 + (s.kernel_h - 1) * s.dilation_h + 1, s.in_h);
    const int64_t w1 = min64(w0 + (s.kernel_w - 1) * s.dilation_w + 1, s.in_w);
    while (h0 < 0) h0 += s.dilation_h;  // skip taps in the top/left padding
    while (w0 < 0) w0 += s.dilation_w;
    int64_t best = h0 * s.in_w + w0;
    W best_value = std::numeric_limits<W>::has_infinity ? -std::numeric_limits<W>::infinity()
                                                        : std::numeric_limits<W>::lowest();
    for (int64_t h = h0; h < h1; h += s.dilation_h) {
      for (int64_t w = w0; w < w1; w += s.dilation_w) {
        const int64_t at = h * s.in_w + w;
        const W v = convert<W>(src[at]);
        bool take = v > best_value;
        if constexpr (std::is_floating_point_v<W>) take = take || v != v;
        if (take) {
          best_value = v;
          best = at;
        }
      }
    }
    values[i] = convert<T>(best_value);  // exact: best_value is one of the bf16 inputs (or -inf)
    indices[i] = best;
  }
};

template <typename T>
struct MaxPoolBackward {
  const T* grad;
  const int64_t* indices;
  T* dx;
  int64_t in_plane, out_plane;

  __device__ void operator()(int64_t i) const {
    const int64_t at = indices[i];
    // A window with no tap inside the input holds an index outside the plane: no gradient (as on
    // the CPU). Any other bad index is skipped the same way, so it never reaches memory.
    if (at < 0 || at >= in_plane) return;
    atomicAdd(dx + (i / out_plane) * in_plane + at, grad[i]);
  }
};

// --- average pooling ---

// The rows (or columns) an average window covers, clipped to the input, and its length counted
// with padding (clipped to the padded input): avg_span of tensor/ops/pool.cpp.
struct Span {
  int64_t begin, end, padded;
};

__host__ __device__ inline Span avg_span(int64_t o, int64_t in, int64_t k, int64_t s, int64_t pad) {
  int64_t b = o * s - pad;
  int64_t e = min64(b + k, in + pad);
  const int64_t padded = e - b;
  b = max64(b, 0);
  e = min64(e, in);
  return {b, e, padded};
}

__host__ __device__ inline int64_t avg_divisor(const Span& hs, const Span& ws, bool count_include_pad) {
  return count_include_pad ? hs.padded * ws.padded : (hs.end - hs.begin) * (ws.end - ws.begin);
}

// The first window (of size k, stride s, padding pad) covering position p: the least o with
// o s - pad + k > p. The last one is (p + pad) / s (then clipped to the output).
__host__ __device__ inline int64_t first_window(int64_t p, int64_t k, int64_t s, int64_t pad) {
  const int64_t a = p + pad - k + 1;
  return a <= 0 ? 0 : (a + s - 1) / s;
}

template <typename T>
struct AvgPool {
  const T* x;
  T* out;
  Pool2dShape s;

  __device__ void operator()(int64_t i) const {
    using W = Wide<T>;
    using Acc = std::conditional_t<std::is_floating_point_v<W>, double, int64_t>;
    const int64_t ow = i % s.out_w, oh = (i / s.out_w) % s.out_h, plane = i / (s.out_w * s.out_h);
    const T* src = x + plane * s.in_h * s.in_w;
    const Span hs = avg_span(oh, s.in_h, s.kernel_h, s.stride_h, s.pad_h);
    const Span ws = avg_span(ow, s.in_w, s.kernel_w, s.stride_w, s.pad_w);
    if (hs.begin >= hs.end || ws.begin >= ws.end) {
      out[i] = convert<T>(Acc(0));
      return;
    }
    Acc acc = 0;
    for (int64_t h = hs.begin; h < hs.end; ++h) {
      for (int64_t w = ws.begin; w < ws.end; ++w) acc += static_cast<Acc>(convert<W>(src[h * s.in_w + w]));
    }
    out[i] = convert<T>(acc / static_cast<Acc>(avg_divisor(hs, ws, s.count_include_pad)));
  }
};

// dx at input (plane, h, w): the sum, in output order, of g / divisor over the windows covering it.
template <typename T>
struct AvgPoolBackward {
  const T* grad;
  T* dx;
  Pool2dShape s;

  __device__ void operator()(int64_t i) const {
    using W = Wide<T>;
    const int64_t w = i % s.in_w, h = (i / s.in_w) % s.in_h, plane = i / (s.in_w * s.in_h);
    const T* g = grad + plane * s.out_h * s.out_w;
    const int64_t oh_end = min64(s.out_h, (h + s.pad_h) / s.stride_h + 1);
    const int64_t ow_begin = first_window(w, s.kernel_w, s.stride_w, s.pad_w);
    const int64_t ow_end = min64(s.out_w, (w + s.pad_w) / s.stride_w + 1);
    W acc = W(0);
    for (int64_t oh = first_window(h, s.kernel_h, s.stride_h, s.pad_h); oh < oh_end; ++oh) {
      const Span hs = avg_span(oh, s.in_h, s.kernel_h, s.stride_h, s.pad_h);
      for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
        const Span ws = avg_span(ow, s.in_w, s.kernel_w, s.stride_w, s.pad_w);
        acc += convert<W>(g[oh * s.out_w + ow]) / static_cast<W>(avg_divisor(hs, ws, s.count_include_pad));
      }
    }
    dx[i] = convert<T>(acc);
  }
};

// --- adaptive average pooling: windows floor(i in / out) to ceil((i + 1) in / out) ---

__host__ __device__ inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__host__ __device__ inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

template <typename T>
struct AdaptiveAvgPool {
  const T* x;
  T* out;
  Pool2dShape s;

  __device__ void operator()(int64_t i) const {
    const int64_t ow = i % s.out_w, oh = (i / s.out_w) % s.out_h, plane = i / (s.out_w * s.out_h);
    const T* src = x + plane * s.in_h * s.in_w;
    const int64_t h0 = adaptive_start(oh, s.in_h, s.out_h), h1 = adaptive_end(oh, s.in_h, s.out_h);
    const int64_t w0 = adaptive_start(ow, s.in_w, s.out_w), w1 = adaptive_end(ow, s.in_w, s.out_w);
    double acc = 0;
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t w = w0; w < w1; ++w) acc += convert<double>(src[h * s.in_w + w]);
    }
    out[i] = convert<T>(acc / static_cast<double>((h1 - h0) * (w1 - w0)));
  }
};

// Input position p lies in the adaptive windows [floor(p out / in), ceil((p + 1) out / in)) (the
// same formulas with in and out swapped); each is still checked against its own bounds.
template <typename T>
struct AdaptiveAvgPoolBackward {
  const T* grad;
  T* dx;
  Pool2dShape s;

  __device__ void operator()(int64_t i) const {
    using W = Wide<T>;
    const int64_t w = i % s.in_w, h = (i / s.in_w) % s.in_h, plane = i / (s.in_w * s.in_h);
    const T* g = grad + plane * s.out_h * s.out_w;
    const int64_t oh_end = min64(s.out_h, adaptive_end(h, s.out_h, s.in_h));
    const int64_t ow_begin = adaptive_start(w, s.out_w, s.in_w);
    const int64_t ow_end = min64(s.out_w, adaptive_end(w, s.out_w, s.in_w));
    W acc = W(0);
    for (int64_t oh = adaptive_start(h, s.out_h, s.in_h); oh < oh_end; ++oh) {
      const int64_t h0 = adaptive_start(oh, s.in_h, s.out_h), h1 = adaptive_end(oh, s.in_h, s.out_h);
      if (h < h0 || h >= h1) continue;
      for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
        const int64_t w0 = adaptive_start(ow, s.in_w, s.out_w), w1 = adaptive_end(ow, s.in_w, s.out_w);
        if (w < w0 || w >= w1) continue;
        acc += convert<W>(g[oh * s.out_w + ow]) / static_cast<W>((h1 - h0) * (w1 - w0));
      }
    }
    dx[i] = convert<T>(acc);
  }
};

}  // namespace

void max_pool2d(const Tensor& x, const Pool2dShape& s, const Tensor& values, const Tensor& indices) {
  const int device = x.device().index;
  DeviceGuard guard(device);
  dispatch_numeric_bf16(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(values.numel(), device,
                    MaxPool<T>{device_data<const T>(x), device_data<T>(values), device_data<int64_t>(indices), s});
  });
}

void max_pool2d_backward(const Tensor& grad, const Tensor& indices, const Pool2dShape& s, const Tensor& dx) {
  const int device = grad.device().index;
  DeviceGuard guard(device);
  dispatch_floating_bf16(grad.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(grad.numel(), device,
                    MaxPoolBackward<T>{device_data<const T>(grad), device_data<const int64_t>(indices),
                                       device_data<T>(dx), s.in_h * s.in_w, s.out_h * s.out_w});
  });
}

void avg_pool2d(const Tensor& x, const Pool2dShape& s, const Tensor& out) {
  const int device = x.device().index;
  DeviceGuard guard(device);
  dispatch_numeric_bf16(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(out.numel(), device, AvgPool<T>{device_data<const T>(x), device_data<T>(out), s});
  });
}

void avg_pool2d_backward(const Tensor& grad, const Pool2dShape& s, const Tensor& dx) {
  const int device = grad.device().index;
  DeviceGuard guard(device);
  dispatch_floating_bf16(grad.dtype(), "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(dx.numel(), device, AvgPoolBackward<T>{device_data<const T>(grad), device_data<T>(dx), s});
  });
}

void adaptive_avg_pool2d(const Tensor& x, const Pool2dShape& s, const Tensor& out) {
  const int device = x.device().index;
  DeviceGuard guard(device);
  dispatch_floating_bf16(x.dtype(), "adaptive_avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(out.numel(), device, AdaptiveAvgPool<T>{device_data<const T>(x), device_data<T>(out), s});
  });
}

void adaptive_avg_pool2d_backward(const Tensor& grad, const Pool2dShape& s, const Tensor& dx) {
  const int device = grad.device().index;
  DeviceGuard guard(device);
  dispatch_floating_bf16(grad.dtype(), "adaptive_avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(dx.numel(), device, AdaptiveAvgPoolBackward<T>{device_data<const T>(grad), device_data<T>(dx), s});
  });
}

}  // namespace loupe::cuda
