// What every kernel file of the CUDA backend shares: launch sizes, the POD view a kernel gets
// (sizes and strides of up to 8 dims, after merging dims that can be walked as one), and the
// device-pointer accessor. Included by the .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
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

// --- reduced-precision element types ---
// bfloat16 is a compute dtype on the GPU (mixed precision, autograd/autocast.hpp): kernels load
// it, compute in float and store it rounded to nearest even. float16 is only converted (copy_).
using bf16 = __nv_bfloat16;
using f16 = __half;

template <typename T>
inline constexpr bool is_reduced_float_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

// Explicit conversions between every element type the backend stores. Rounding to a narrower
// float is round-to-nearest-even (the __float2bfloat16_rn family); to an integer it truncates and
// to bool it tests != 0, as static_cast does on the CPU.
template <typename D, typename S>
__host__ __device__ inline D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<S, bf16>) {
    return convert<D>(__bfloat162float(v));
  } else if constexpr (std::is_same_v<S, f16>) {
    return convert<D>(__half2float(v));
  } else if constexpr (std::is_same_v<D, bf16>) {
    if constexpr (std::is_same_v<S, float>) return __float2bfloat16_rn(v);
    else if constexpr (std::is_same_v<S, double>) return __double2bfloat16(v);
    else if constexpr (std::is_same_v<S, bool>) return __float2bfloat16_rn(v ? 1.0f : 0.0f);
    else return __ll2bfloat16_rn(static_cast<long long>(v));
  } else if constexpr (std::is_same_v<D, f16>) {
    if constexpr (std::is_same_v<S, float>) return __float2half_rn(v);
    else if constexpr (std::is_same_v<S, double>) return __double2half(v);
    else if constexpr (std::is_same_v<S, bool>) return __float2half_rn(v ? 1.0f : 0.0f);
    else return __ll2half_rn(static_cast<long long>(v));
  } else {
    return static_cast<D>(v);
  }
}

// Wraps a functor written for float/double so that it takes and returns bfloat16: operands are
// widened to float, the result (unless bool, e.g. a comparison) rounded back to bfloat16.
template <typename F>
struct ViaFloat {
  F f;
  template <typename... A>
  __device__ auto operator()(A... v) const {
    const auto r = f(widen(v)...);
    if constexpr (std::is_same_v<std::remove_cv_t<decltype(r)>, bool>) {
      return r;
    } else {
      return __float2bfloat16_rn(static_cast<float>(r));
    }
  }
  template <typename A>
  __device__ static auto widen(A v) {
    if constexpr (std::is_same_v<A, bf16>) return __bfloat162float(v);
    else return v;
  }
};
template <typename F>
ViaFloat<F> via_float(F f) {
  return ViaFloat<F>{f};
}

// The floating dispatch of the GPU's compute kernels: float32, float64 and bfloat16.
template <typename F>
decltype(auto) dispatch_floating_bf16(DType dtype, const char* op, F&& body) {
  if (dtype == DType::bf16) return body(TypeTag<bf16>{});
  switch (dtype) {
    case DType::f32: return body(TypeTag<float>{});
    case DType::f64: return body(TypeTag<double>{});
    default: break;
  }
  throw Error(detail::make_message(op, ": expected a floating dtype (float32, float64 or bfloat16) on the GPU, got ",
                                   dtype));
}

// dispatch_numeric (f32, f64, i64) plus bfloat16.
template <typename F>
decltype(auto) dispatch_numeric_bf16(DType dtype, const char* op, F&& body) {
  if (dtype == DType::bf16) return body(TypeTag<bf16>{});
  return dispatch_numeric(dtype, op, std::forward<F>(body));
}

// dispatch_all (f32, f64, i64, bool) plus bfloat16.
template <typename F>
decltype(auto) dispatch_all_bf16(DType dtype, const char* op, F&& body) {
  if (dtype == DType::bf16) return body(TypeTag<bf16>{});
  return dispatch_all(dtype, op, std::forward<F>(body));
}

// Every dtype a GPU tensor can hold, float16 included (copies and fills only).
template <typename F>
decltype(auto) dispatch_storage(DType dtype, const char* op, F&& body) {
  if (dtype == DType::f16) return body(TypeTag<f16>{});
  return dispatch_all_bf16(dtype, op, std::forward<F>(body));
}

// f(i) for every i in [0, n) on the device's stream, as a grid-stride loop: the kernels that
// compute one element per index (pooling, resampling, padding) are __device__ functors run so.
template <typename F>
__global__ void for_each_index_kernel(int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

template <typename F>
void launch_for_each(int64_t n, int device, const F& f) {
  if (n == 0) return;
  for_each_index_kernel<F><<<blocks_for(n), kThreads, 0, stream(device)>>>(n, f);
  LOUPE_CUDA_CHECK_LAUNCH();
}

// Checks that every defined tensor is on `device` (a CUDA device).
inline void check_same_device(const char* op, Device device, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    LOUPE_CHECK(!t->defined() || t->device() == device, op, ": expected every tensor on ", device.str(),
                ", got one on ", t->device().str());
  }
}

}  // namespace loupe::cuda
