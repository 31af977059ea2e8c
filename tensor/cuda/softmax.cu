// CUDA softmax / log_softmax along one dim and their backward kernels (the formulas of
// tensor/ops/softmax.cpp). The input is made contiguous and seen as (outer, size, inner) around
// the dim:
//   - inner == 1 (the usual last-dim case), float32: each row is read from memory once. A thread
//     holds up to 32 of its row's elements in registers, in groups of 4 consecutive ones (float4
//     loads and stores when the row length is a multiple of 4 and the pointers are aligned); a
//     warp per row for rows up to 1024 elements, a block of 512 threads per row up to 16384.
//     Max and sum come from the registers (warp shuffles, shared memory across warps), in float,
//     then the row is written. Longer rows: one pass computes max and sum together (online
//     softmax: the running sum is rescaled when the max grows), a second reads the row again to
//     write it. The backward kernels read y and g once each the same way.
//   - inner == 1, float64: a warp (rows up to 1024) or a block per row, three passes over the row,
//     sums in double;
//   - inner > 1: one thread per line walks it serially; neighbouring threads read neighbouring
//     addresses, so the loads still coalesce. Accumulations in double.
// Edge values as on the CPU: a NaN anywhere, a +inf, or a row of -inf make the row NaN.
// Tests: tests/cuda/test_cuda.cpp (op table: softmax entries)
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/copy.hpp"

namespace loupe::cuda {

namespace {

struct Max {
  __device__ double operator()(double a, double b) const { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
};
struct Add {
  __device__ double operator()(double a, double b) const { return a + b; }
};

// Combines v over the threads of one row (blockDim.x threads; all of them end with the result).
// `shared` holds blockDim.y * 32 doubles; rows wider than a warp use it between warps.
template <typename F>
__device__ double row_reduce(double v, F f, double identity, double* shared) {
#pragma unroll
  for (int delta = kWarp / 2; delta > 0; delta /= 2) v = f(v, __shfl_xor_sync(0xffffffffu, v, delta));
  if (blockDim.x > kWarp) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    __syncthreads();  // an earlier call's readers are done with `shared`
    if (lane == 0) shared[threadIdx.y * kWarp + warp] = v;
    __syncthreads();
    v = lane < static_cast<int>(blockDim.x / kWarp) ? shared[threadIdx.y * kWarp + lane] : identity;
#pragma unroll
    for (int delta = kWarp / 2; delta > 0; delta /= 2) v = f(v, __shfl_xor_sync(0xffffffffu, v, delta));
  }
  return v;
}

// --- float32 rows, read once ---

constexpr int kWarpRowLimit = 1024;                                    // a warp per row up to here
constexpr int kLongRowThreads = 512;                                   // threads per longer row
constexpr int kMaxHeld = 32;                                           // elements held per thread
constexpr int64_t kHeldRowLimit = int64_t{kLongRowThreads} * kMaxHeld;  // longer: online kernels

struct MaxF {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct AddF {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// row_reduce in float; `shared` holds blockDim.y * 32 floats.
template <typename F>
__device__ float row_reduce_f(float v, F f, float identity, float* shared) {
#pragma unroll
  for (int delta = kWarp / 2; delta > 0; delta /= 2) v = f(v, __shfl_xor_sync(0xffffffffu, v, delta));
  if (blockDim.x > kWarp) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    __syncthreads();
    if (lane == 0) shared[threadIdx.y * kWarp + warp] = v;
    __syncthreads();
    v = lane < static_cast<int>(blockDim.x / kWarp) ? shared[threadIdx.y * kWarp + lane] : identity;
#pragma unroll
    for (int delta = kWarp / 2; delta > 0; delta /= 2) v = f(v, __shfl_xor_sync(0xffffffffu, v, delta));
  }
  return v;
}

// Thread t of the `threads` of a row holds groups q = 0, 1, ... of 4 consecutive elements, group q
// starting at element 4 * (t + threads * q): neighbouring threads, neighbouring 16-byte groups.
__device__ __forceinline__ int64_t group_at(int q, int t, int threads) {
  return 4 * (t + static_cast<int64_t>(threads) * q);
}

// The 4 elements at `at` (those past `size` read as `fill`). vec: size % 4 == 0 and the row
// 16-byte aligned, so a group is wholly in or out and one float4 load reads it.
__device__ __forceinline__ float4 load4(const float* row, int64_t at, int64_t size, bool vec, float fill) {
  if (vec) return at < size ? *reinterpret_cast<const float4*>(row + at) : make_float4(fill, fill, fill, fill);
  return make_float4(at < size ? row[at] : fill, at + 1 < size ? row[at + 1] : fill,
                     at + 2 < size ? row[at + 2] : fill, at + 3 < size ? row[at + 3] : fill);
}

__device__ __forceinline__ void store4(float* row, int64_t at, int64_t size, bool vec, float4 v) {
  if (vec) {
    if (at < size) *reinterpret_cast<float4*>(row + at) = v;
    return;
  }
  if (at < size) row[at] = v.x;
  if (at + 1 < size) row[at + 1] = v.y;
  if (at + 2 < size) row[at + 2] = v.z;
  if (at + 3 < size) row[at + 3] = v.w;
}

template <int kPer>
__device__ __forceinline__ void load_held(const float* row, int64_t size, bool vec, float (&v)[kPer]) {
#pragma unroll
  for (int q = 0; q < kPer / 4; ++q) {
    const float4 f = load4(row, group_at(q, threadIdx.x, blockDim.x), size, vec, 0.f);
    v[4 * q] = f.x;
    v[4 * q + 1] = f.y;
    v[4 * q + 2] = f.z;
    v[4 * q + 3] = f.w;
  }
}

template <int kPer>
__device__ __forceinline__ void store_held(float* row, int64_t size, bool vec, const float (&v)[kPer]) {
#pragma unroll
  for (int q = 0; q < kPer / 4; ++q) {
    store4(row, group_at(q, threadIdx.x, blockDim.x), size, vec,
           make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]));
  }
}

// Rows of up to kPer * blockDim.x elements, each held in registers: blockDim.x threads per row (a
// warp, or the whole block with blockDim.y == 1), blockDim.y rows per block.
template <int kPer, bool Log, bool Backward>
__global__ void __launch_bounds__(kLongRowThreads)
    softmax_rows_held(const float* a, const float* b, float* out, int64_t rows, int64_t size, bool vec) {
  __shared__ float shared[kLongRowThreads / kWarp * kWarp];
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.y; base < rows;
       base += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t row = base + threadIdx.y;
    // Uniform over the threads of a row: a warp (whose reductions never sync the block) or the block.
    if (row >= rows) continue;
    float v[kPer];
    load_held<kPer>(a + row * size, size, vec, v);
    bool held[kPer];
#pragma unroll
    for (int j = 0; j < kPer; ++j) held[j] = group_at(j / 4, threadIdx.x, blockDim.x) + j % 4 < size;
    if constexpr (!Backward) {
      float m = -inf;
#pragma unroll
      for (int j = 0; j < kPer; ++j) m = held[j] ? fmaxf(m, v[j]) : m;
      m = row_reduce_f(m, MaxF{}, -inf, shared);
      float total = 0.f;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const float shifted = v[j] - m;
        const float e = held[j] ? expf(shifted) : 0.f;
        total += e;
        v[j] = Log ? shifted : e;
      }
      total = row_reduce_f(total, AddF{}, 0.f, shared);
      const float log_total = logf(total), inv_total = 1.f / total;
#pragma unroll
      for (int j = 0; j < kPer; ++j) v[j] = Log ? v[j] - log_total : v[j] * inv_total;
    } else {
      // a = y, b = g. softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g).
      float g[kPer];
      load_held<kPer>(b + row * size, size, vec, g);
      float s = 0.f;
#pragma unroll
      for (int j = 0; j < kPer; ++j) s += held[j] ? (Log ? g[j] : g[j] * v[j]) : 0.f;
      s = row_reduce_f(s, AddF{}, 0.f, shared);
#pragma unroll
      for (int j = 0; j < kPer; ++j) v[j] = Log ? g[j] - expf(v[j]) * s : v[j] * (g[j] - s);
    }
    store_held<kPer>(out + row * size, size, vec, v);
  }
}

// Online softmax: (m, s) = (max so far, sum of exp(x - m) so far). -inf elements (and the -inf
// fill past the row's end) add nothing; a row of them keeps s = 0 and comes out NaN as on the CPU
// (x - m = -inf - -inf). NaN and +inf make s NaN, as they make the CPU's sum NaN.
__device__ __forceinline__ void online_add(float x, float& m, float& s) {
  if (x > m) {
    s *= expf(m - x);
    m = x;
  }
  if (x != -std::numeric_limits<float>::infinity()) s += expf(x - m);
}

// Symmetric in its two operands, so both partners of a butterfly shuffle get the same result.
__device__ __forceinline__ void online_merge(float& m, float& s, float m2, float s2) {
  const float mm = fmaxf(m, m2);
  s = (s == 0.f ? 0.f : s * expf(m - mm)) + (s2 == 0.f ? 0.f : s2 * expf(m2 - mm));
  m = mm;
}

// Rows longer than kHeldRowLimit: a block per row, two passes over it.
template <bool Log, bool Backward>
__global__ void __launch_bounds__(kLongRowThreads)
    softmax_rows_long(const float* a, const float* b, float* out, int64_t rows, int64_t size, bool vec) {
  __shared__ float shared[kWarp];
  __shared__ float shared_s[kWarp];
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t step = 4 * static_cast<int64_t>(blockDim.x);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* ra = a + row * size;
    const float* rb = b + row * size;
    float* ro = out + row * size;
    if constexpr (!Backward) {
      float m = -inf, s = 0.f;
      for (int64_t at = 4 * static_cast<int64_t>(threadIdx.x); at < size; at += step) {
        const float4 f = load4(ra, at, size, vec, -inf);
        online_add(f.x, m, s);
        online_add(f.y, m, s);
        online_add(f.z, m, s);
        online_add(f.w, m, s);
      }
#pragma unroll
      for (int delta = kWarp / 2; delta > 0; delta /= 2) {
        online_merge(m, s, __shfl_xor_sync(0xffffffffu, m, delta), __shfl_xor_sync(0xffffffffu, s, delta));
      }
      const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
      __syncthreads();  // the previous row's readers are done with the shared arrays
      if (lane == 0) {
        shared[warp] = m;
        shared_s[warp] = s;
      }
      __syncthreads();
      m = -inf;
      s = 0.f;
      for (int w = 0; w < static_cast<int>(blockDim.x / kWarp); ++w) online_merge(m, s, shared[w], shared_s[w]);
      const float log_total = logf(s), inv_total = 1.f / s;
      for (int64_t at = 4 * static_cast<int64_t>(threadIdx.x); at < size; at += step) {
        float4 f = load4(ra, at, size, vec, 0.f);
        if (Log) {
          f = make_float4(f.x - m - log_total, f.y - m - log_total, f.z - m - log_total, f.w - m - log_total);
        } else {
          f = make_float4(expf(f.x - m) * inv_total, expf(f.y - m) * inv_total, expf(f.z - m) * inv_total,
                          expf(f.w - m) * inv_total);
        }
        store4(ro, at, size, vec, f);
      }
    } else {
      float s = 0.f;
      for (int64_t at = 4 * static_cast<int64_t>(threadIdx.x); at < size; at += step) {
        const float4 g = load4(rb, at, size, vec, 0.f);
        if (Log) {
          s += (g.x + g.y) + (g.z + g.w);
        } else {
          const float4 y = load4(ra, at, size, vec, 0.f);
          s += (g.x * y.x + g.y * y.y) + (g.z * y.z + g.w * y.w);
        }
      }
      s = row_reduce_f(s, AddF{}, 0.f, shared);
      for (int64_t at = 4 * static_cast<int64_t>(threadIdx.x); at < size; at += step) {
        const float4 y = load4(ra, at, size, vec, 0.f), g = load4(rb, at, size, vec, 0.f);
        const float4 d = Log ? make_float4(g.x - expf(y.x) * s, g.y - expf(y.y) * s, g.z - expf(y.z) * s,
                                           g.w - expf(y.w) * s)
                             : make_float4(y.x * (g.x - s), y.y * (g.y - s), y.z * (g.z - s), y.w * (g.w - s));
        store4(ro, at, size, vec, d);
      }
    }
  }
}

// Picks the kernel for float32 rows (inner == 1).
template <bool Log, bool Backward>
void launch_float_rows(const float* a, const float* b, float* out, int64_t rows, int64_t size, cudaStream_t s) {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool vec = size % 4 == 0 && aligned(a) && aligned(b) && aligned(out);
  if (size > kHeldRowLimit) {
    softmax_rows_long<Log, Backward><<<blocks_for(rows, 1), kLongRowThreads, 0, s>>>(a, b, out, rows, size, vec);
    return;
  }
  const bool warp = size <= kWarpRowLimit;
  const int threads = warp ? kWarp : kLongRowThreads;
  const dim3 block = warp ? dim3(kWarp, kThreads / kWarp) : dim3(kLongRowThreads, 1);
  const unsigned grid = blocks_for(rows, static_cast<int>(block.y));
  const int64_t per_thread = (size + threads - 1) / threads;  // elements each thread holds, at most 32
  if (per_thread <= 4) {
    softmax_rows_held<4, Log, Backward><<<grid, block, 0, s>>>(a, b, out, rows, size, vec);
  } else if (per_thread <= 8) {
    softmax_rows_held<8, Log, Backward><<<grid, block, 0, s>>>(a, b, out, rows, size, vec);
  } else if (per_thread <= 16) {
    softmax_rows_held<16, Log, Backward><<<grid, block, 0, s>>>(a, b, out, rows, size, vec);
  } else {
    softmax_rows_held<kMaxHeld, Log, Backward><<<grid, block, 0, s>>>(a, b, out, rows, size, vec);
  }
}

// --- float64 (and any dtype along an inner dim): sums in double ---

// Mode: forward (x -> y) or backward ((y, g) -> dx); Log: log_softmax.
template <typename T, bool Log, bool Backward>
__global__ void softmax_rows(const T* a, const T* b, T* out, int64_t rows, int64_t size) {
  __shared__ double shared[kThreads];
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.y; base < rows;
       base += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;  // inactive threads still join the block-wide reductions
    const T* ra = a + (active ? row : 0) * size;
    const T* rb = b + (active ? row : 0) * size;
    T* ro = out + (active ? row : 0) * size;
    if constexpr (!Backward) {
      using Acc = double;  // float32 rows take softmax_rows_held / softmax_rows_long
      double m = -inf;
      for (int64_t k = threadIdx.x; active && k < size; k += blockDim.x) m = Max{}(m, static_cast<double>(ra[k]));
      m = row_reduce(m, Max{}, -inf, shared);
      const Acc m_acc = static_cast<Acc>(m);
      double total = 0.0;
      for (int64_t k = threadIdx.x; active && k < size; k += blockDim.x) total += exp(static_cast<Acc>(ra[k]) - m_acc);
      total = row_reduce(total, Add{}, 0.0, shared);
      const Acc log_total = static_cast<Acc>(log(total));
      const Acc inv_total = static_cast<Acc>(1.0 / total);
      for (int64_t k = threadIdx.x; active && k < size; k += blockDim.x) {
        const Acc shifted = static_cast<Acc>(ra[k]) - m_acc;
        ro[k] = static_cast<T>(Log ? shifted - log_total : exp(shifted) * inv_total);
      }
    } else {
      // a = y, b = g. softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g).
      double s = 0.0;
      for (int64_t k = threadIdx.x; active && k < size; k += blockDim.x) {
        s += Log ? static_cast<double>(rb[k]) : static_cast<double>(rb[k]) * static_cast<double>(ra[k]);
      }
      s = row_reduce(s, Add{}, 0.0, shared);
      for (int64_t k = threadIdx.x; active && k < size; k += blockDim.x) {
        const double y = ra[k], g = rb[k];
        ro[k] = static_cast<T>(Log ? g - exp(y) * s : y * (g - s));
      }
    }
  }
}

// inner > 1: thread per line (o, i); element k of the line at o * size * inner + k * inner + i.
template <typename T, bool Log, bool Backward>
__global__ void softmax_lines(const T* a, const T* b, T* out, int64_t outer, int64_t size, int64_t inner) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t line = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; line < outer * inner;
       line += stride) {
    const int64_t base = (line / inner) * size * inner + line % inner;
    if constexpr (!Backward) {
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < size; ++k) m = Max{}(m, static_cast<double>(a[base + k * inner]));
      double total = 0.0;
      for (int64_t k = 0; k < size; ++k) total += exp(static_cast<double>(a[base + k * inner]) - m);
      const double log_total = log(total);
      for (int64_t k = 0; k < size; ++k) {
        const double shifted = static_cast<double>(a[base + k * inner]) - m;
        out[base + k * inner] = static_cast<T>(Log ? shifted - log_total : exp(shifted) / total);
      }
    } else {
      double s = 0.0;
      for (int64_t k = 0; k < size; ++k) {
        const double y = a[base + k * inner], g = b[base + k * inner];
        s += Log ? g : g * y;
      }
      for (int64_t k = 0; k < size; ++k) {
        const double y = a[base + k * inner], g = b[base + k * inner];
        out[base + k * inner] = static_cast<T>(Log ? g - exp(y) * s : y * (g - s));
      }
    }
  }
}

template <bool Backward>
Tensor run(const Tensor& a_in, const Tensor& b_in, int64_t dim_in, bool log, const char* op) {
  const int64_t dim = wrap_dim(dim_in, a_in.dim(), op);
  const Tensor a = ops::contiguous(a_in);
  const Tensor b = Backward ? ops::contiguous(b_in) : a;
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  if (out.numel() == 0) return out;
  int64_t outer = 1, size = 1, inner = 1;
  for (int64_t d = 0; d < a.dim(); ++d) (d < dim ? outer : d == dim ? size : inner) *= a.size(d);
  const int device = a.device().index;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  dispatch_floating(a.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = device_data<const T>(a);
    const T* pb = device_data<const T>(b);
    T* po = device_data<T>(out);
    const auto launch = [&](auto kernel_log) {
      constexpr bool kLog = decltype(kernel_log)::value;
      if (inner > 1) {
        softmax_lines<T, kLog, Backward><<<blocks_for(outer * inner), kThreads, 0, s>>>(pa, pb, po, outer, size, inner);
      } else if constexpr (std::is_same_v<T, float>) {
        launch_float_rows<kLog, Backward>(pa, pb, po, outer, size, s);
      } else if (size <= 1024) {
        const dim3 block(kWarp, kThreads / kWarp);  // a warp per row, 8 rows per block
        softmax_rows<T, kLog, Backward><<<blocks_for(outer, kThreads / kWarp), block, 0, s>>>(pa, pb, po, outer, size);
      } else {
        const dim3 block(kThreads, 1);  // a block per row
        softmax_rows<T, kLog, Backward><<<blocks_for(outer, 1), block, 0, s>>>(pa, pb, po, outer, size);
      }
      LOUPE_CUDA_CHECK_LAUNCH();
    };
    if (log) {
      launch(std::true_type{});
    } else {
      launch(std::false_type{});
    }
  });
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim, bool log) {
  return run<false>(x, x, dim, log, log ? "log_softmax" : "softmax");
}

Tensor softmax_backward(const Tensor& y, const Tensor& g, int64_t dim, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  LOUPE_CHECK(y.shape() == g.shape(), op, ": output shape ", shape_str(y.shape()), " and gradient shape ",
              shape_str(g.shape()), " differ");
  LOUPE_CHECK(y.dtype() == g.dtype(), op, ": output dtype ", y.dtype(), " and gradient dtype ", g.dtype(), " differ");
  check_same_device(op, y.device(), {&g});
  return run<true>(y, g, dim, log, op);
}

}  // namespace loupe::cuda
