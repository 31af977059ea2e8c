// The elementwise kernels every map-like op is built from: out[i] = f(a[i], ...) for one, two or
// three operands broadcast to out's shape, any strides, any element types.
//
//   launch_map<Out, A>(op, out, a, f)           launch_map<Out, A, B>(op, out, a, b, f)
//   launch_map<Out, A, B, C>(op, out, a, b, c, f)
//
// Two kernels behind each: a dense one when every operand is one contiguous run (vectorised: each
// thread loads and stores 4 elements at once when the pointers are aligned), and a strided one
// that turns each linear index into per-operand offsets through a Geometry (tensor/cuda/common.cuh).
// `f` is a functor with a __device__ call operator.
#pragma once

#include <tuple>
#include <utility>

#include "tensor/cuda/common.cuh"

namespace loupe::cuda {

// Four elements loaded or stored as one (16 bytes for float, 2 x 16 for double).
template <typename T>
struct alignas(4 * sizeof(T)) Pack4 {
  T v[4];
};

template <typename T>
bool aligned_for_pack(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T)) == 0;
}

// Dense and aligned: thread t handles elements [4p, 4p + 4) of pack p; the tail is done singly.
template <typename Out, typename F, typename... In>
__global__ void map_dense_packed(int64_t n, F f, Out* out, const In*... in) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t packs = n / 4;
  for (int64_t p = first; p < packs; p += stride) {
    const auto loaded = std::make_tuple(reinterpret_cast<const Pack4<In>*>(in)[p]...);
    Pack4<Out> result;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      result.v[j] = std::apply([&](const auto&... packs_in) { return static_cast<Out>(f(packs_in.v[j]...)); }, loaded);
    }
    reinterpret_cast<Pack4<Out>*>(out)[p] = result;
  }
  for (int64_t i = packs * 4 + first; i < n; i += stride) out[i] = static_cast<Out>(f(in[i]...));
}

template <typename Out, typename F, typename... In>
__global__ void map_dense(int64_t n, F f, Out* out, const In*... in) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = static_cast<Out>(f(in[i]...));
  }
}

template <typename Out, typename F, typename... In, size_t... K>
__device__ void map_one(const int64_t (&off)[sizeof...(In) + 1], F& f, Out* out, std::index_sequence<K...>,
                        const In*... in) {
  out[off[0]] = static_cast<Out>(f(in[off[K + 1]]...));
}

template <typename Out, typename F, typename... In>
__global__ void map_strided(Geometry<sizeof...(In) + 1> g, int64_t n, F f, Out* out, const In*... in) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[sizeof...(In) + 1];
    g.offsets(i, off);
    map_one<Out>(off, f, out, std::index_sequence_for<In...>{}, in...);
  }
}

// out (any layout) = f(inputs...) with every input broadcast to out's shape; all on one device.
template <typename Out, typename... In, typename F>
void launch_map(const char* op, const Tensor& out, F f, const std::conditional_t<true, Tensor, In>&... inputs) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const int device = out.device().index;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  std::array<Strides, sizeof...(In) + 1> strides{
      out.strides(), broadcast_strides(inputs.shape(), inputs.strides(), out.shape())...};
  const Geometry<sizeof...(In) + 1> g = make_geometry<sizeof...(In) + 1>(out.shape(), strides, op);
  Out* o = device_data<Out>(out);
  if (is_dense(g)) {
    const bool packed = aligned_for_pack(o) && (aligned_for_pack(device_data<In>(inputs)) && ...);
    if (packed) {
      map_dense_packed<Out, F, In...><<<blocks_for(n / 4 + 1), kThreads, 0, s>>>(n, f, o, device_data<In>(inputs)...);
    } else {
      map_dense<Out, F, In...><<<blocks_for(n), kThreads, 0, s>>>(n, f, o, device_data<In>(inputs)...);
    }
  } else {
    map_strided<Out, F, In...><<<blocks_for(n), kThreads, 0, s>>>(g, n, f, o, device_data<In>(inputs)...);
  }
  LOUPE_CUDA_CHECK_LAUNCH();
}

}  // namespace loupe::cuda
