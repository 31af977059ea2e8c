// Copies with dtype conversion and broadcasting between tensors on one CUDA device, and fill_.
// Every storage dtype, float16 and bfloat16 included (rounded to nearest even).
// The cross-device copies (host <-> device, device <-> device) are in transfer.cpp.
// Tests: tests/cuda/test_cuda.cpp
#include "tensor/cuda/elementwise.cuh"
#include "tensor/cuda/ops.hpp"

namespace loupe::cuda {

namespace {

// Conversions to bfloat16/float16 round to nearest even (common.cuh's convert).
template <typename D>
struct Convert {
  template <typename S>
  __device__ D operator()(S v) const {
    return convert<D>(v);
  }
};

template <typename T>
__global__ void fill_kernel(Geometry<1> g, int64_t n, T* out, T value) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[1];
    g.offsets(i, off);
    out[off[0]] = value;
  }
}

}  // namespace

void copy_same_device(const Tensor& dst, const Tensor& src) {
  const Shape target = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  LOUPE_CHECK(target == dst.shape(), "copy_: source shape ", shape_str(src.shape()),
              " does not broadcast to destination shape ", shape_str(dst.shape()));
  dispatch_storage(dst.dtype(), "copy_", [&](auto dst_tag) {
    using D = typename decltype(dst_tag)::type;
    dispatch_storage(src.dtype(), "copy_", [&](auto src_tag) {
      using S = typename decltype(src_tag)::type;
      launch_map<D, S>("copy_", dst, Convert<D>{}, src);
    });
  });
}

void fill_(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int device = dst.device().index;
  DeviceGuard guard(device);
  const Geometry<1> g = make_geometry<1>(dst.shape(), {dst.strides()}, "fill_");
  dispatch_storage(dst.dtype(), "fill_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_kernel<T><<<blocks_for(n), kThreads, 0, stream(device)>>>(g, n, device_data<T>(dst), convert<T>(value));
    LOUPE_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace loupe::cuda
