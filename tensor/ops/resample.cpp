// 2-d nearest and bilinear interpolation, forward and backward. See resample.hpp.
// Each output row (and column) reads at most two input rows (columns): a per-axis table of source
// taps and weights is built once, then every (H, W) plane is resampled from the two tables. The
// coordinate arithmetic copies PyTorch's (UpSample.h), including which precision it runs in, so
// the selected taps agree with it exactly. CUDA tensors use the very same tables, copied to the
// device, with the kernels of tensor/cuda/resample.cu.
// Tests: tests/ops/op_table_resample.cpp, tests/cuda/test_cuda_pool.cpp
#include "tensor/ops/resample.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/cuda/ops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/parallel.hpp"
#include "tensor/ops/device.hpp"

namespace loupe::ops {

const char* interpolate_mode_name(InterpolateMode mode) {
  switch (mode) {
    case InterpolateMode::nearest: return "nearest";
    case InterpolateMode::bilinear: return "bilinear";
  }
  return "?";
}

namespace {

constexpr int64_t kResampleGrainWork = 32768;

// Source taps of one axis: output position o reads input positions i0[o] and i1[o] with weights
// w0[o] and w1[o] (nearest uses i0 only).
template <typename T>
struct AxisTaps {
  std::vector<int64_t> i0, i1;
  std::vector<T> w0, w1;
};

// Legacy 'nearest': out == in copies and out == 2 in halves the index exactly; otherwise the scale
// is a float and the index floor(o * scale), as PyTorch computes it.
template <typename T>
AxisTaps<T> nearest_taps(int64_t in, int64_t out, double scale_factor) {
  AxisTaps<T> taps;
  taps.i0.resize(static_cast<size_t>(out));
  const float scale = scale_factor > 0 ? static_cast<float>(1.0 / scale_factor)
                                       : static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t src = 0;
    if (out == in) {
      src = o;
    } else if (out == 2 * in) {
      src = o >> 1;
    } else {
      src = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * scale)), in - 1);
    }
    taps.i0[static_cast<size_t>(o)] = src;
  }
  return taps;
}

// Bilinear along one axis, in the tensor's own precision (PyTorch's opmath for float and double).
template <typename T>
AxisTaps<T> linear_taps(int64_t in, int64_t out, bool align_corners, double scale_factor) {
  AxisTaps<T> taps;
  const auto n = static_cast<size_t>(out);
  taps.i0.resize(n);
  taps.i1.resize(n);
  taps.w0.resize(n);
  taps.w1.resize(n);
  T scale;
  if (align_corners) {
    scale = out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
  } else {
    scale = scale_factor > 0 ? static_cast<T>(1.0 / scale_factor) : static_cast<T>(in) / static_cast<T>(out);
  }
  for (int64_t o = 0; o < out; ++o) {
    T src = align_corners ? scale * static_cast<T>(o) : scale * (static_cast<T>(o) + T(0.5)) - T(0.5);
    if (src < T(0)) src = T(0);  // the half-pixel shift reaches past the first pixel centre
    const auto i0 = static_cast<int64_t>(src);
    const T l1 = std::clamp(src - static_cast<T>(i0), T(0), T(1));
    const auto k = static_cast<size_t>(o);
    taps.i0[k] = i0;
    taps.i1[k] = i0 + (i0 < in - 1 ? 1 : 0);
    taps.w0[k] = T(1) - l1;
    taps.w1[k] = l1;
  }
  return taps;
}

template <typename T>
AxisTaps<T> axis_taps(InterpolateMode mode, int64_t in, int64_t out, bool align_corners, double scale_factor) {
  return mode == InterpolateMode::nearest ? nearest_taps<T>(in, out, scale_factor)
                                          : linear_taps<T>(in, out, align_corners, scale_factor);
}

// One axis's taps on `device` for the CUDA kernels (layout in tensor/cuda/ops.hpp): i0, i1 (i0
// again for nearest), then for each input position the range [first, last) of the outputs that
// read it; weights w0, w1 (1 and 0 for nearest, which the kernels do not read).
template <typename T>
cuda::ResampleAxis device_axis(const AxisTaps<T>& taps, InterpolateMode mode, int64_t in, int64_t out, DType dtype,
                               Device device) {
  const bool nearest = mode == InterpolateMode::nearest;
  const auto n_out = static_cast<size_t>(out), n_in = static_cast<size_t>(in);
  std::vector<int64_t> index(2 * n_out + 2 * n_in);
  int64_t* first = index.data() + 2 * n_out;
  int64_t* last = first + n_in;
  std::fill_n(first, n_in, out);
  std::fill_n(last, n_in, int64_t{0});
  for (size_t o = 0; o < n_out; ++o) {
    const int64_t i0 = taps.i0[o], i1 = nearest ? i0 : taps.i1[o];
    LOUPE_CHECK(i0 >= 0 && i0 < in && i1 >= 0 && i1 < in, "interpolate: internal error: tap (", i0, ", ", i1,
                ") outside an axis of size ", in);
    index[o] = i0;
    index[n_out + o] = i1;
    for (const int64_t i : {i0, i1}) {
      first[i] = std::min(first[i], static_cast<int64_t>(o));
      last[i] = std::max(last[i], static_cast<int64_t>(o) + 1);
    }
  }
  for (size_t i = 0; i < n_in; ++i) {
    if (first[i] >= last[i]) first[i] = last[i] = 0;  // no output reads input i
  }
  Tensor weight = Tensor::empty({2 * out}, dtype);
  T* w = weight.data<T>();
  for (size_t o = 0; o < n_out; ++o) {
    w[o] = nearest ? T(1) : taps.w0[o];
    w[n_out + o] = nearest ? T(0) : taps.w1[o];
  }
  cuda::ResampleAxis axis;
  axis.in = in;
  axis.out = out;
  axis.index = to_device(from_values(index, {static_cast<int64_t>(index.size())}), device);
  axis.weight = to_device(weight, device);
  return axis;
}

void check_interpolate(const Shape& in_shape, std::array<int64_t, 2> size, InterpolateMode mode, bool align_corners,
                       const char* op) {
  LOUPE_CHECK(in_shape.size() == 4, op, ": expected a 4-d (N, C, H, W) input, got shape ", shape_str(in_shape));
  LOUPE_CHECK(in_shape[1] > 0 && in_shape[2] > 0 && in_shape[3] > 0, op,
              ": expected non-zero sizes for the (C, H, W) dims, got shape ", shape_str(in_shape));
  LOUPE_CHECK(size[0] > 0 && size[1] > 0, op, ": output size must be greater than 0, got (", size[0], ", ", size[1],
              ") for input of shape ", shape_str(in_shape));
  LOUPE_CHECK(!align_corners || mode == InterpolateMode::bilinear, op,
              ": align_corners can only be set with the interpolating mode bilinear, not ",
              interpolate_mode_name(mode));
}

Tensor interpolate_impl(const Tensor& x_in, std::array<int64_t, 2> size, InterpolateMode mode, bool align_corners,
                        std::array<double, 2> scales) {
  const char* op = "interpolate";
  check_interpolate(x_in.shape(), size, mode, align_corners, op);
  const Tensor x = contiguous(x_in);
  const int64_t in_h = x.shape()[2], in_w = x.shape()[3];
  const int64_t out_h = size[0], out_w = size[1];
  Tensor out = Tensor::empty({x.shape()[0], x.shape()[1], out_h, out_w}, x.dtype(), x.device());
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const AxisTaps<T> th = axis_taps<T>(mode, in_h, out_h, align_corners, scales[0]);
    const AxisTaps<T> tw = axis_taps<T>(mode, in_w, out_w, align_corners, scales[1]);
    if (x.device().is_cuda()) {
      cuda::interpolate(x, device_axis(th, mode, in_h, out_h, x.dtype(), x.device()),
                        device_axis(tw, mode, in_w, out_w, x.dtype(), x.device()), mode == InterpolateMode::nearest,
                        out);
      return;
    }
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    const int64_t planes = x.shape()[0] * x.shape()[1];
    const int64_t in_plane = in_h * in_w, out_plane = out_h * out_w;
    const int64_t grain = std::max<int64_t>(1, kResampleGrainWork / std::max<int64_t>(out_plane * 4, 1));
    parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const T* src = in + plane * in_plane;
        T* dst = o + plane * out_plane;
        for (int64_t oh = 0; oh < out_h; ++oh) {
          const auto kh = static_cast<size_t>(oh);
          const T* row0 = src + th.i0[kh] * in_w;
          if (mode == InterpolateMode::nearest) {
            for (int64_t ow = 0; ow < out_w; ++ow) dst[oh * out_w + ow] = row0[tw.i0[static_cast<size_t>(ow)]];
            continue;
          }
          const T* row1 = src + th.i1[kh] * in_w;
          for (int64_t ow = 0; ow < out_w; ++ow) {
            const auto kw = static_cast<size_t>(ow);
            const int64_t c0 = tw.i0[kw], c1 = tw.i1[kw];
            dst[oh * out_w + ow] = th.w0[kh] * (tw.w0[kw] * row0[c0] + tw.w1[kw] * row0[c1]) +
                                   th.w1[kh] * (tw.w0[kw] * row1[c0] + tw.w1[kw] * row1[c1]);
          }
        }
      }
    });
  });
  return out;
}

}  // namespace

Tensor interpolate(const Tensor& x, std::array<int64_t, 2> size, InterpolateMode mode, bool align_corners) {
  return interpolate_impl(x, size, mode, align_corners, {0.0, 0.0});
}

Tensor interpolate(const Tensor& x, double scale_h, double scale_w, InterpolateMode mode, bool align_corners) {
  LOUPE_CHECK(std::isfinite(scale_h) && std::isfinite(scale_w) && scale_h > 0 && scale_w > 0,
              "interpolate: scale factors must be positive and finite, got (", scale_h, ", ", scale_w, ")");
  LOUPE_CHECK(x.dim() == 4, "interpolate: expected a 4-d (N, C, H, W) input, got shape ", shape_str(x.shape()));
  // The output size as PyTorch computes it: floor(in * scale) in double precision.
  const std::array<int64_t, 2> size{static_cast<int64_t>(std::floor(static_cast<double>(x.shape()[2]) * scale_h)),
                                    static_cast<int64_t>(std::floor(static_cast<double>(x.shape()[3]) * scale_w))};
  return interpolate_impl(x, size, mode, align_corners, {scale_h, scale_w});
}

Tensor interpolate_backward(const Tensor& grad_in, const Shape& input_shape, InterpolateMode mode, bool align_corners,
                            std::array<double, 2> scales) {
  const char* op = "interpolate_backward";
  LOUPE_CHECK(grad_in.dim() == 4, op, ": expected a 4-d grad, got shape ", shape_str(grad_in.shape()));
  const std::array<int64_t, 2> size{grad_in.shape()[2], grad_in.shape()[3]};
  check_interpolate(input_shape, size, mode, align_corners, op);
  LOUPE_CHECK(grad_in.shape()[0] == input_shape[0] && grad_in.shape()[1] == input_shape[1], op, ": grad of shape ",
              shape_str(grad_in.shape()), " does not fit input of shape ", shape_str(input_shape));
  const Tensor grad = contiguous(grad_in);
  const int64_t in_h = input_shape[2], in_w = input_shape[3];
  const int64_t out_h = size[0], out_w = size[1];
  Tensor dx = Tensor::empty(input_shape, grad.dtype(), grad.device());
  if (!grad.device().is_cuda()) fill_(dx, 0.0);  // the CUDA kernel gathers: it writes every element
  dispatch_floating(grad.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const AxisTaps<T> th = axis_taps<T>(mode, in_h, out_h, align_corners, scales[0]);
    const AxisTaps<T> tw = axis_taps<T>(mode, in_w, out_w, align_corners, scales[1]);
    if (grad.device().is_cuda()) {
      cuda::interpolate_backward(grad, device_axis(th, mode, in_h, out_h, grad.dtype(), grad.device()),
                                 device_axis(tw, mode, in_w, out_w, grad.dtype(), grad.device()),
                                 mode == InterpolateMode::nearest, dx);
      return;
    }
    const T* g = static_cast<const T*>(grad.raw_data());
    T* out = static_cast<T*>(dx.raw_data());
    const int64_t planes = input_shape[0] * input_shape[1];
    const int64_t in_plane = in_h * in_w, out_plane = out_h * out_w;
    const int64_t grain = std::max<int64_t>(1, kResampleGrainWork / std::max<int64_t>(out_plane * 4, 1));
    // Each plane scatters only into itself, so planes are safe to split across threads.
    parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const T* gp = g + plane * out_plane;
        T* dst = out + plane * in_plane;
        for (int64_t oh = 0; oh < out_h; ++oh) {
          const auto kh = static_cast<size_t>(oh);
          T* row0 = dst + th.i0[kh] * in_w;
          if (mode == InterpolateMode::nearest) {
            for (int64_t ow = 0; ow < out_w; ++ow) row0[tw.i0[static_cast<size_t>(ow)]] += gp[oh * out_w + ow];
            continue;
          }
          T* row1 = dst + th.i1[kh] * in_w;
          for (int64_t ow = 0; ow < out_w; ++ow) {
            const auto kw = static_cast<size_t>(ow);
            const T v = gp[oh * out_w + ow];
            const int64_t c0 = tw.i0[kw], c1 = tw.i1[kw];
            row0[c0] += th.w0[kh] * tw.w0[kw] * v;
            row0[c1] += th.w0[kh] * tw.w1[kw] * v;
            row1[c0] += th.w1[kh] * tw.w0[kw] * v;
            row1[c1] += th.w1[kh] * tw.w1[kw] * v;
          }
        }
      }
    });
  });
  return dx;
}

}  // namespace loupe::ops
