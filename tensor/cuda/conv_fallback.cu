// Our own CUDA convolution: im2col + cuBLAS GEMM per sample and group, the GPU twin of
// tensor/cpu/conv.cpp. conv.cpp uses it when loupe is built without cuDNN, when cuDNN declines a
// case, or when set_use_cudnn(false) asks for it (the tests compare the two).
//   forward:          col = im2col(x[n]);            y[n, g] = W[g] @ col[g]
//   backward input:   col[g] = W[g]^T @ dy[n, g];    dx[n] = col2im(col)
//   backward weight:  col = im2col(x[n]);            dW[g] += dy[n, g] @ col[g]^T
// col2im gathers (each input pixel sums the columns that read it), so no atomics and the result
// does not depend on scheduling. bfloat16 runs the same way (bf16 GEMMs accumulating in fp32).
// Tests: tests/cuda/test_cuda.cpp (conv cases with cuDNN switched off)
#include "tensor/cuda/common.cuh"
#include "tensor/cuda/internal.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::cuda {

namespace {

// col (C * kh * kw, out_h * out_w) from one sample x (C, H, W).
template <typename T>
__global__ void im2col(const T* x, T* col, ConvShape s, int64_t channels) {
  const int64_t plane = s.out_h * s.out_w;
  const int64_t n = channels * s.kernel_h * s.kernel_w * plane;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t p = i % plane, row = i / plane;
    const int64_t oh = p / s.out_w, ow = p % s.out_w;
    const int64_t kj = row % s.kernel_w, ki = (row / s.kernel_w) % s.kernel_h, c = row / (s.kernel_w * s.kernel_h);
    const int64_t h = oh * s.stride_h - s.pad_h + ki * s.dilation_h;
    const int64_t w = ow * s.stride_w - s.pad_w + kj * s.dilation_w;
    col[i] = (h >= 0 && h < s.height && w >= 0 && w < s.width) ? x[(c * s.height + h) * s.width + w] : convert<T>(0.0f);
  }
}

// dx (C, H, W) of one sample = the sum of every column entry that im2col read from each pixel.
template <typename T>
__global__ void col2im(const T* col, T* dx, ConvShape s, int64_t channels) {
  const int64_t plane = s.out_h * s.out_w;
  const int64_t n = channels * s.height * s.width;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t w = i % s.width, h = (i / s.width) % s.height, c = i / (s.width * s.height);
    using Acc = std::conditional_t<std::is_same_v<T, bf16>, float, T>;  // bfloat16 sums in float
    Acc total = Acc(0);
    for (int64_t ki = 0; ki < s.kernel_h; ++ki) {
      const int64_t th = h + s.pad_h - ki * s.dilation_h;  // = oh * stride_h when pixel h is read
      if (th < 0 || th % s.stride_h != 0 || th / s.stride_h >= s.out_h) continue;
      for (int64_t kj = 0; kj < s.kernel_w; ++kj) {
        const int64_t tw = w + s.pad_w - kj * s.dilation_w;
        if (tw < 0 || tw % s.stride_w != 0 || tw / s.stride_w >= s.out_w) continue;
        const int64_t row = (c * s.kernel_h + ki) * s.kernel_w + kj;
        total += convert<Acc>(col[row * plane + (th / s.stride_h) * s.out_w + tw / s.stride_w]);
      }
    }
    dx[i] = convert<T>(total);
  }
}

struct Sizes {
  int64_t cg, og, patch, plane, in_sample, out_sample;
};

Sizes sizes_of(const ConvShape& s) {
  const int64_t cg = s.in_channels / s.groups, og = s.out_channels / s.groups;
  const int64_t plane = s.out_h * s.out_w;
  return {cg, og, cg * s.kernel_h * s.kernel_w, plane, s.in_channels * s.height * s.width, s.out_channels * plane};
}

template <typename T>
void launch_im2col(const ConvShape& s, const T* x, T* col, int device) {
  const int64_t n = s.in_channels * s.kernel_h * s.kernel_w * s.out_h * s.out_w;
  im2col<T><<<blocks_for(n), kThreads, 0, stream(device)>>>(x, col, s, s.in_channels);
  LOUPE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void conv2d_forward_fallback(const ConvShape& s, const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const Tensor& out) {
  const int device = x.device().index;
  DeviceGuard guard(device);
  const Sizes z = sizes_of(s);
  dispatch_floating_bf16(x.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Workspace col(sizeof(T) * static_cast<size_t>(s.in_channels * s.kernel_h * s.kernel_w * z.plane), device);
    T* c = static_cast<T*>(col.data());
    for (int64_t n = 0; n < s.batch; ++n) {
      launch_im2col(s, device_data<const T>(x) + n * z.in_sample, c, device);
      // y[n, g] (og, plane) = W[g] (og, patch) @ col[g] (patch, plane), all groups in one batched call.
      gemm_strided_batched(x.dtype(), device, false, false, z.og, z.plane, z.patch, 1.0, device_data<const T>(weight),
                           z.patch, z.og * z.patch, c, z.plane, z.patch * z.plane, 0.0,
                           device_data<T>(out) + n * z.out_sample, z.plane, z.og * z.plane, s.groups);
    }
  });
  if (bias.defined()) add_(out, ops::view(bias, {s.out_channels, 1, 1}), 1.0);
}

void conv2d_backward_input_fallback(const ConvShape& s, const Tensor& grad_out, const Tensor& weight,
                                    const Tensor& grad_x) {
  const int device = grad_out.device().index;
  DeviceGuard guard(device);
  const Sizes z = sizes_of(s);
  dispatch_floating_bf16(grad_out.dtype(), "conv2d_backward_input", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Workspace col(sizeof(T) * static_cast<size_t>(s.in_channels * s.kernel_h * s.kernel_w * z.plane), device);
    T* c = static_cast<T*>(col.data());
    for (int64_t n = 0; n < s.batch; ++n) {
      // col[g] (patch, plane) = W[g]^T (patch, og) @ dy[n, g] (og, plane)
      gemm_strided_batched(grad_out.dtype(), device, true, false, z.patch, z.plane, z.og, 1.0,
                           device_data<const T>(weight), z.patch, z.og * z.patch,
                           device_data<const T>(grad_out) + n * z.out_sample, z.plane, z.og * z.plane, 0.0, c, z.plane,
                           z.patch * z.plane, s.groups);
      const int64_t count = s.in_channels * s.height * s.width;
      col2im<T><<<blocks_for(count), kThreads, 0, stream(device)>>>(c, device_data<T>(grad_x) + n * z.in_sample, s,
                                                                     s.in_channels);
      LOUPE_CUDA_CHECK_LAUNCH();
    }
  });
}

void conv2d_backward_weight_fallback(const ConvShape& s, const Tensor& grad_out, const Tensor& x,
                                     const Tensor& grad_w) {
  const int device = grad_out.device().index;
  DeviceGuard guard(device);
  const Sizes z = sizes_of(s);
  dispatch_floating_bf16(grad_out.dtype(), "conv2d_backward_weight", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Workspace col(sizeof(T) * static_cast<size_t>(s.in_channels * s.kernel_h * s.kernel_w * z.plane), device);
    T* c = static_cast<T*>(col.data());
    if (s.batch == 0) fill_(grad_w, 0.0);
    for (int64_t n = 0; n < s.batch; ++n) {
      launch_im2col(s, device_data<const T>(x) + n * z.in_sample, c, device);
      // dW[g] (og, patch) += dy[n, g] (og, plane) @ col[g]^T (plane, patch)
      gemm_strided_batched(grad_out.dtype(), device, false, true, z.og, z.patch, z.plane, 1.0,
                           device_data<const T>(grad_out) + n * z.out_sample, z.plane, z.og * z.plane, c, z.plane,
                           z.patch * z.plane, n == 0 ? 0.0 : 1.0, device_data<T>(grad_w), z.patch, z.og * z.patch,
                           s.groups);
    }
  });
}

}  // namespace loupe::cuda
