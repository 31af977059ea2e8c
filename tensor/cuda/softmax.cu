// CUDA softmax / log_softmax along one dim and their backward kernels (the formulas of
// tensor/ops/softmax.cpp). The input is made contiguous and seen as (outer, size, inner) around
// the dim:
//   - inner == 1 (the usual last-dim case): each line is a contiguous row; a warp per row for rows
//     up to 1024 elements, a whole block per longer row; max and sums by warp shuffles (and shared
//     memory across the warps of a block);
//   - inner > 1: one thread per line walks it serially; neighbouring threads read neighbouring
//     addresses, so the loads still coalesce.
// Accumulations run in double, as on the CPU.
// Tests: tests/cuda/test_cuda.cpp (op table: softmax entries)
#include <cmath>
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
      // Exponentials in the element type (float exp for float32, as PyTorch does: double exp
      // made this kernel compute-bound); the row sums still accumulate in double.
      using Acc = std::conditional_t<std::is_same_v<T, float>, float, double>;
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
