// CUDA nearest and bilinear interpolation of (N, C, H, W) images, forward and backward. The source
// taps and weights of each axis are the tables tensor/ops/resample.cpp builds for its CPU loops,
// copied to the device (cuda::ResampleAxis), so both backends pick the same pixels with the same
// weights; the kernels only combine them in the CPU's order.
//   forward:   one thread per output element reads its (at most) 2 x 2 taps.
//   backward:  one thread per input element gathers: it walks the outputs [first, last) of each
//              axis that read it (a short range: taps move monotonically with the output) and adds,
//              in the CPU's scatter order, weight_h * weight_w * grad for every tap that is itself.
//              Deterministic, no atomics.
// Tests: tests/cuda/test_cuda_pool.cpp, tests/cuda/test_cuda.cpp (op table: interpolate entries)
#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"

namespace loupe::cuda {

namespace {

// One axis's tables as device pointers (layout in tensor/cuda/ops.hpp).
template <typename T>
struct Taps {
  int64_t in, out;
  const int64_t *i0, *i1, *first, *last;
  const T *w0, *w1;
};

template <typename T>
Taps<T> taps_of(const ResampleAxis& a) {
  const int64_t* index = device_data<const int64_t>(a.index);
  const T* weight = device_data<const T>(a.weight);
  return {a.in, a.out, index, index + a.out, index + 2 * a.out, index + 2 * a.out + a.in, weight, weight + a.out};
}

template <typename T>
struct Interpolate {
  const T* x;
  T* out;
  Taps<T> th, tw;
  bool nearest;

  __host__ __device__ void operator()(int64_t i) const {
    const int64_t ow = i % tw.out, oh = (i / tw.out) % th.out, plane = i / (tw.out * th.out);
    const T* src = x + plane * th.in * tw.in;
    const T* row0 = src + th.i0[oh] * tw.in;
    if (nearest) {
      out[i] = row0[tw.i0[ow]];
      return;
    }
    const T* row1 = src + th.i1[oh] * tw.in;
    const int64_t c0 = tw.i0[ow], c1 = tw.i1[ow];
    out[i] = th.w0[oh] * (tw.w0[ow] * row0[c0] + tw.w1[ow] * row0[c1]) +
             th.w1[oh] * (tw.w0[ow] * row1[c0] + tw.w1[ow] * row1[c1]);
  }
};

template <typename T>
struct InterpolateBackward {
  const T* grad;
  T* dx;
  Taps<T> th, tw;
  bool nearest;

  __host__ __device__ void operator()(int64_t i) const {
    const int64_t c = i % tw.in, r = (i / tw.in) % th.in, plane = i / (tw.in * th.in);
    const T* g = grad + plane * th.out * tw.out;
    const int taps = nearest ? 1 : 2;
    T acc = T(0);
    // The CPU adds, for each output (oh, ow) in order, the terms (row tap kh, column tap kw) in the
    // order (0, 0), (0, 1), (1, 0), (1, 1); the same order here, keeping those that land on (r, c).
    for (int64_t oh = th.first[r]; oh < th.last[r]; ++oh) {
      const bool h_hit[2] = {th.i0[oh] == r, !nearest && th.i1[oh] == r};
      if (!h_hit[0] && !h_hit[1]) continue;
      for (int64_t ow = tw.first[c]; ow < tw.last[c]; ++ow) {
        const bool w_hit[2] = {tw.i0[ow] == c, !nearest && tw.i1[ow] == c};
        const T v = g[oh * tw.out + ow];
        for (int kh = 0; kh < taps; ++kh) {
          if (!h_hit[kh]) continue;
          for (int kw = 0; kw < taps; ++kw) {
            if (!w_hit[kw]) continue;
            acc += nearest ? v : (kh == 0 ? th.w0[oh] : th.w1[oh]) * (kw == 0 ? tw.w0[ow] : tw.w1[ow]) * v;
          }
        }
      }
    }
    dx[i] = acc;
  }
};

}  // namespace

void interpolate(const Tensor& x, const ResampleAxis& h, const ResampleAxis& w, bool nearest, const Tensor& out) {
  const int device = x.device().index;
  check_same_device("interpolate", x.device(), {&out, &h.index, &h.weight, &w.index, &w.weight});
  DeviceGuard guard(device);
  dispatch_floating(x.dtype(), "interpolate", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(out.numel(), device,
                    Interpolate<T>{device_data<const T>(x), device_data<T>(out), taps_of<T>(h), taps_of<T>(w),
                                   nearest});
  });
}

void interpolate_backward(const Tensor& grad, const ResampleAxis& h, const ResampleAxis& w, bool nearest,
                          const Tensor& dx) {
  const int device = grad.device().index;
  check_same_device("interpolate_backward", grad.device(), {&dx, &h.index, &h.weight, &w.index, &w.weight});
  DeviceGuard guard(device);
  dispatch_floating(grad.dtype(), "interpolate_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(dx.numel(), device,
                    InterpolateBackward<T>{device_data<const T>(grad), device_data<T>(dx), taps_of<T>(h), taps_of<T>(w),
                                           nearest});
  });
}

}  // namespace loupe::cuda
