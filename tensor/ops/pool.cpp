// 2-d pooling: max (with indices), average and adaptive average, forward and backward.
// Every kernel works plane by plane: an (N, C, H, W) input is N * C independent (H, W) planes
// (a CHW input is C planes), so the planes are what parallel_for splits. Inputs are made
// contiguous first; the window arithmetic follows PyTorch's CPU kernels line for line so that
// output sizes, divisors and argmax indices agree with it exactly. Floating max pooling without
// dilation takes the kernel of tensor/cpu/fast_elementwise.hpp (same results, clipping hoisted out
// of the tap loops; LOUPE_REFERENCE_KERNELS=1 turns it off).
// CUDA tensors take the same checks, geometry and allocations, then tensor/cuda/pool.cu's kernels.
// Tests: tests/ops/op_table_pool.cpp, tests/cuda/test_cuda_pool.cpp
#include "tensor/ops/pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/parallel.hpp"
#include "tensor/ops/device.hpp"

namespace loupe::ops {

namespace {

// Roughly this many window reads per parallel chunk; smaller jobs run on the calling thread.
constexpr int64_t kPoolGrainWork = 32768;

int64_t plane_grain(int64_t work_per_plane) {
  return std::max<int64_t>(1, kPoolGrainWork / std::max<int64_t>(work_per_plane, 1));
}

// floor(a / b) for b > 0 (C++ division truncates toward zero; PyTorch's div_rtn rounds down).
int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// PyTorch's pooling_output_shape: floor (or ceil) of (in + 2 pad - dilation (k - 1) - 1) / stride,
// plus one; in ceil mode a last window that would start in the right padding is dropped.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation, bool ceil_mode) {
  int64_t out = floor_div(in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// The (N, C) or (C) leading dims of a 4-d or 3-d input, folded into a count of planes.
struct PoolGeometry {
  int64_t planes = 0;
  int64_t in_h = 0, in_w = 0;
  int64_t out_h = 0, out_w = 0;
  Shape out_shape;  // x's leading dims + (out_h, out_w)
};

void check_pool_input(const Shape& shape, const char* op) {
  const size_t nd = shape.size();
  LOUPE_CHECK(nd == 3 || nd == 4, op, ": expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got shape ",
              shape_str(shape));
  // Only the batch dim may be empty, as in PyTorch.
  LOUPE_CHECK(shape[nd - 1] != 0 && shape[nd - 2] != 0 && shape[nd - 3] != 0, op,
              ": expected non-zero sizes for the (C, H, W) dims, got shape ", shape_str(shape));
}

PoolGeometry make_geometry(const Shape& in_shape, int64_t out_h, int64_t out_w) {
  PoolGeometry g;
  const size_t nd = in_shape.size();
  g.in_h = in_shape[nd - 2];
  g.in_w = in_shape[nd - 1];
  g.planes = nd == 4 ? in_shape[0] * in_shape[1] : in_shape[0];
  g.out_h = out_h;
  g.out_w = out_w;
  g.out_shape = Shape(in_shape.begin(), in_shape.end() - 2);
  g.out_shape.push_back(out_h);
  g.out_shape.push_back(out_w);
  return g;
}

// Checks the parameters (PyTorch's pool2d_shape_check) and resolves stride 0 to the kernel.
Pool2dParams resolve_params(const Shape& in_shape, const Pool2dParams& params, const char* op) {
  check_pool_input(in_shape, op);
  Pool2dParams p = params;
  for (int i = 0; i < 2; ++i) {
    if (p.stride[i] == 0) p.stride[i] = p.kernel[i];
  }
  LOUPE_CHECK(p.kernel[0] > 0 && p.kernel[1] > 0, op, ": kernel size should be greater than zero, but got (",
              p.kernel[0], ", ", p.kernel[1], ")");
  LOUPE_CHECK(p.stride[0] > 0 && p.stride[1] > 0, op, ": stride should be greater than zero, but got (",
              p.stride[0], ", ", p.stride[1], ")");
  LOUPE_CHECK(p.dilation[0] > 0 && p.dilation[1] > 0, op, ": dilation should be greater than zero, but got (",
              p.dilation[0], ", ", p.dilation[1], ")");
  LOUPE_CHECK(p.padding[0] >= 0 && p.padding[1] >= 0, op, ": padding must be non-negative, but got (",
              p.padding[0], ", ", p.padding[1], ")");
  // A window may not lie entirely in the padding, so pad is at most half the kernel.
  LOUPE_CHECK(p.padding[0] <= p.kernel[0] / 2 && p.padding[1] <= p.kernel[1] / 2, op,
              ": pad should be at most half of kernel size, but got padding (", p.padding[0], ", ", p.padding[1],
              ") for kernel (", p.kernel[0], ", ", p.kernel[1], ")");
  return p;
}

PoolGeometry pool_geometry(const Shape& in_shape, const Pool2dParams& p, const char* op) {
  const size_t nd = in_shape.size();
  const int64_t in_h = in_shape[nd - 2], in_w = in_shape[nd - 1];
  const int64_t out_h = pooled_size(in_h, p.kernel[0], p.padding[0], p.stride[0], p.dilation[0], p.ceil_mode);
  const int64_t out_w = pooled_size(in_w, p.kernel[1], p.padding[1], p.stride[1], p.dilation[1], p.ceil_mode);
  LOUPE_CHECK(out_h >= 1 && out_w >= 1, op, ": input of shape ", shape_str(in_shape),
              " is too small: the output size would be (", out_h, ", ", out_w, ")");
  return make_geometry(in_shape, out_h, out_w);
}

// The average pools reject dilation rather than silently ignore it.
void check_no_dilation(const Pool2dParams& p, const char* op) {
  LOUPE_CHECK(p.dilation[0] == 1 && p.dilation[1] == 1, op, ": dilation is not supported, got (", p.dilation[0],
              ", ", p.dilation[1], ")");
}

// Sums of floats accumulate in double; integer average pooling truncates like PyTorch's.
template <typename T>
using PoolAcc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// The rows (or columns) an average window covers, and its divisor's factor along that axis.
struct AvgSpan {
  int64_t begin, end;  // clipped to the input
  int64_t padded;      // length counted with padding, clipped to the padded input
};

AvgSpan avg_span(int64_t o, int64_t in, int64_t k, int64_t s, int64_t pad) {
  int64_t b = o * s - pad;
  int64_t e = std::min(b + k, in + pad);
  const int64_t padded = e - b;
  b = std::max<int64_t>(b, 0);
  e = std::min(e, in);
  return {b, e, padded};
}

// The geometry handed to the CUDA kernels (tensor/cuda/pool.cu): sizes only, or sizes and window.
cuda::Pool2dShape cuda_shape(const PoolGeometry& geo) {
  cuda::Pool2dShape s;
  s.planes = geo.planes;
  s.in_h = geo.in_h;
  s.in_w = geo.in_w;
  s.out_h = geo.out_h;
  s.out_w = geo.out_w;
  return s;
}

cuda::Pool2dShape cuda_shape(const PoolGeometry& geo, const Pool2dParams& p) {
  cuda::Pool2dShape s = cuda_shape(geo);
  s.kernel_h = p.kernel[0];
  s.kernel_w = p.kernel[1];
  s.stride_h = p.stride[0];
  s.stride_w = p.stride[1];
  s.pad_h = p.padding[0];
  s.pad_w = p.padding[1];
  s.dilation_h = p.dilation[0];
  s.dilation_w = p.dilation[1];
  s.count_include_pad = p.count_include_pad;
  return s;
}

// Adaptive windows: rows floor(i in / out) to ceil((i + 1) in / out).
int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

}  // namespace

ValuesIndices max_pool2d_with_indices(const Tensor& x_in, const Pool2dParams& params) {
  const char* op = "max_pool2d";
  const Pool2dParams p = resolve_params(x_in.shape(), params, op);
  const PoolGeometry geo = pool_geometry(x_in.shape(), p, op);
  const Tensor x = contiguous(x_in);
  Tensor values = Tensor::empty(geo.out_shape, x.dtype(), x.device());
  Tensor indices = Tensor::empty(geo.out_shape, DType::i64, x.device());
  if (x.device().is_cuda()) {
    cuda::max_pool2d(x, cuda_shape(geo, p), values, indices);
    return {values, indices};
  }
  dispatch_numeric(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x.raw_data());
    T* out = static_cast<T*>(values.raw_data());
    int64_t* idx = static_cast<int64_t*>(indices.raw_data());
    const int64_t in_plane = geo.in_h * geo.in_w, out_plane = geo.out_h * geo.out_w;
    const int64_t kh = p.kernel[0], kw = p.kernel[1], sh = p.stride[0], sw = p.stride[1];
    const int64_t ph = p.padding[0], pw = p.padding[1], dh = p.dilation[0], dw = p.dilation[1];
    if constexpr (std::is_floating_point_v<T>) {
      if (cpu::fast::enabled() && dh == 1 && dw == 1) {
        const cpu::fast::PoolWindow window{geo.in_h, geo.in_w, geo.out_h, geo.out_w, kh, kw, sh, sw, ph, pw};
        parallel_for(0, geo.planes, plane_grain(out_plane * kh * kw), [&](int64_t begin, int64_t end) {
          for (int64_t plane = begin; plane < end; ++plane) {
            cpu::fast::max_pool2d_plane(in + plane * in_plane, window, out + plane * out_plane, idx + plane * out_plane);
          }
        });
        return;
      }
    }
    parallel_for(0, geo.planes, plane_grain(out_plane * kh * kw), [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const T* src = in + plane * in_plane;
        for (int64_t oh = 0; oh < geo.out_h; ++oh) {
          for (int64_t ow = 0; ow < geo.out_w; ++ow) {
            int64_t h0 = oh * sh - ph, w0 = ow * sw - pw;
            const int64_t h1 = std::min(h0 + (kh - 1) * dh + 1, geo.in_h);
            const int64_t w1 = std::min(w0 + (kw - 1) * dw + 1, geo.in_w);
            while (h0 < 0) h0 += dh;  // skip taps in the top/left padding
            while (w0 < 0) w0 += dw;
            // As PyTorch: the first in-bounds tap is the fallback index, ties keep the first
            // maximum, and any NaN wins (the last NaN seen).
            int64_t best = h0 * geo.in_w + w0;
            T best_value = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                                 : std::numeric_limits<T>::lowest();
            for (int64_t h = h0; h < h1; h += dh) {
              for (int64_t w = w0; w < w1; w += dw) {
                const int64_t at = h * geo.in_w + w;
                const T v = src[at];
                bool take = v > best_value;
                if constexpr (std::is_floating_point_v<T>) take = take || std::isnan(v);
                if (take) {
                  best_value = v;
                  best = at;
                }
              }
            }
            out[plane * out_plane + oh * geo.out_w + ow] = best_value;
            idx[plane * out_plane + oh * geo.out_w + ow] = best;
          }
        }
      }
    });
  });
  return {values, indices};
}

Tensor max_pool2d(const Tensor& x, const Pool2dParams& params) { return max_pool2d_with_indices(x, params).values; }

Tensor max_pool2d_backward(const Tensor& grad_in, const Tensor& indices_in, const Shape& input_shape) {
  const char* op = "max_pool2d_backward";
  check_same_device(op, {grad_in, indices_in});
  check_pool_input(input_shape, op);
  LOUPE_CHECK(indices_in.dtype() == DType::i64, op, ": indices must be int64, got ", indices_in.dtype());
  LOUPE_CHECK(grad_in.shape() == indices_in.shape(), op, ": grad of shape ", shape_str(grad_in.shape()),
              " does not match indices of shape ", shape_str(indices_in.shape()));
  const size_t nd = input_shape.size();
  LOUPE_CHECK(grad_in.dim() == static_cast<int64_t>(nd) &&
                  std::equal(input_shape.begin(), input_shape.end() - 2, grad_in.shape().begin()),
              op, ": grad of shape ", shape_str(grad_in.shape()), " does not fit input of shape ",
              shape_str(input_shape));
  const PoolGeometry geo = make_geometry(input_shape, grad_in.shape()[nd - 2], grad_in.shape()[nd - 1]);
  const Tensor grad = contiguous(grad_in);
  const Tensor indices = contiguous(indices_in);
  Tensor dx = Tensor::empty(input_shape, grad.dtype(), grad.device());
  fill_(dx, 0.0);
  if (grad.device().is_cuda()) {
    cuda::max_pool2d_backward(grad, indices, cuda_shape(geo), dx);
    return dx;
  }
  dispatch_floating(grad.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(grad.raw_data());
    const int64_t* idx = static_cast<const int64_t*>(indices.raw_data());
    T* out = static_cast<T*>(dx.raw_data());
    const int64_t in_plane = geo.in_h * geo.in_w, out_plane = geo.out_h * geo.out_w;
    // Each plane scatters only into itself, so planes are safe to split across threads.
    parallel_for(0, geo.planes, plane_grain(out_plane), [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        for (int64_t o = 0; o < out_plane; ++o) {
          const int64_t at = idx[plane * out_plane + o];
          // A window with no tap inside the input (possible with dilation and padding) holds the
          // constant -inf and an index outside the plane, like PyTorch: it sends no gradient.
          if (at < 0 || at >= in_plane) continue;
          out[plane * in_plane + at] += g[plane * out_plane + o];
        }
      }
    });
  });
  return dx;
}

Tensor avg_pool2d(const Tensor& x_in, const Pool2dParams& params) {
  const char* op = "avg_pool2d";
  check_no_dilation(params, op);
  const Pool2dParams p = resolve_params(x_in.shape(), params, op);
  const PoolGeometry geo = pool_geometry(x_in.shape(), p, op);
  const Tensor x = contiguous(x_in);
  Tensor out = Tensor::empty(geo.out_shape, x.dtype(), x.device());
  if (x.device().is_cuda()) {
    cuda::avg_pool2d(x, cuda_shape(geo, p), out);
    return out;
  }
  dispatch_numeric(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = PoolAcc<T>;
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    const int64_t in_plane = geo.in_h * geo.in_w, out_plane = geo.out_h * geo.out_w;
    parallel_for(0, geo.planes, plane_grain(out_plane * p.kernel[0] * p.kernel[1]), [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const T* src = in + plane * in_plane;
        for (int64_t oh = 0; oh < geo.out_h; ++oh) {
          const AvgSpan hs = avg_span(oh, geo.in_h, p.kernel[0], p.stride[0], p.padding[0]);
          for (int64_t ow = 0; ow < geo.out_w; ++ow) {
            const AvgSpan ws = avg_span(ow, geo.in_w, p.kernel[1], p.stride[1], p.padding[1]);
            T& dst = o[plane * out_plane + oh * geo.out_w + ow];
            if (hs.begin >= hs.end || ws.begin >= ws.end) {
              dst = T(0);
              continue;
            }
            Acc acc = 0;
            for (int64_t h = hs.begin; h < hs.end; ++h) {
              for (int64_t w = ws.begin; w < ws.end; ++w) acc += static_cast<Acc>(src[h * geo.in_w + w]);
            }
            // count_include_pad counts padded taps but never taps past the padded border (which
            // ceil_mode windows can reach).
            const int64_t divisor = p.count_include_pad ? hs.padded * ws.padded
                                                        : (hs.end - hs.begin) * (ws.end - ws.begin);
            dst = static_cast<T>(acc / static_cast<Acc>(divisor));
          }
        }
      }
    });
  });
  return out;
}

Tensor avg_pool2d_backward(const Tensor& grad_in, const Shape& input_shape, const Pool2dParams& params) {
  const char* op = "avg_pool2d_backward";
  check_no_dilation(params, op);
  const Pool2dParams p = resolve_params(input_shape, params, op);
  const PoolGeometry geo = pool_geometry(input_shape, p, op);
  LOUPE_CHECK(grad_in.shape() == geo.out_shape, op, ": grad of shape ", shape_str(grad_in.shape()),
              " does not match the pooled shape ", shape_str(geo.out_shape));
  const Tensor grad = contiguous(grad_in);
  Tensor dx = Tensor::empty(input_shape, grad.dtype(), grad.device());
  if (grad.device().is_cuda()) {
    cuda::avg_pool2d_backward(grad, cuda_shape(geo, p), dx);  // gathers: writes every element
    return dx;
  }
  fill_(dx, 0.0);
  dispatch_floating(grad.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(grad.raw_data());
    T* out = static_cast<T*>(dx.raw_data());
    const int64_t in_plane = geo.in_h * geo.in_w, out_plane = geo.out_h * geo.out_w;
    parallel_for(0, geo.planes, plane_grain(out_plane * p.kernel[0] * p.kernel[1]), [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        T* dst = out + plane * in_plane;
        for (int64_t oh = 0; oh < geo.out_h; ++oh) {
          const AvgSpan hs = avg_span(oh, geo.in_h, p.kernel[0], p.stride[0], p.padding[0]);
          for (int64_t ow = 0; ow < geo.out_w; ++ow) {
            const AvgSpan ws = avg_span(ow, geo.in_w, p.kernel[1], p.stride[1], p.padding[1]);
            if (hs.begin >= hs.end || ws.begin >= ws.end) continue;
            const int64_t divisor = p.count_include_pad ? hs.padded * ws.padded
                                                        : (hs.end - hs.begin) * (ws.end - ws.begin);
            const T share = g[plane * out_plane + oh * geo.out_w + ow] / static_cast<T>(divisor);
            for (int64_t h = hs.begin; h < hs.end; ++h) {
              for (int64_t w = ws.begin; w < ws.end; ++w) dst[h * geo.in_w + w] += share;
            }
          }
        }
      }
    });
  });
  return dx;
}

Tensor adaptive_avg_pool2d(const Tensor& x_in, std::array<int64_t, 2> output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_pool_input(x_in.shape(), op);
  LOUPE_CHECK(output_size[0] >= 0 && output_size[1] >= 0, op, ": output size must be non-negative, got (",
              output_size[0], ", ", output_size[1], ")");
  const PoolGeometry geo = make_geometry(x_in.shape(), output_size[0], output_size[1]);
  const Tensor x = contiguous(x_in);
  Tensor out = Tensor::empty(geo.out_shape, x.dtype(), x.device());
  if (x.device().is_cuda()) {
    cuda::adaptive_avg_pool2d(x, cuda_shape(geo), out);
    return out;
  }
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    const int64_t in_plane = geo.in_h * geo.in_w, out_plane = geo.out_h * geo.out_w;
    parallel_for(0, geo.planes, plane_grain(std::max(in_plane, out_plane)), [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const T* src = in + plane * in_plane;
        for (int64_t oh = 0; oh < geo.out_h; ++oh) {
          const int64_t h0 = adaptive_start(oh, geo.in_h, geo.out_h), h1 = adaptive_end(oh, geo.in_h, geo.out_h);
          for (int64_t ow = 0; ow < geo.out_w; ++ow) {
            const int64_t w0 = adaptive_start(ow, geo.in_w, geo.out_w), w1 = adaptive_end(ow, geo.in_w, geo.out_w);
            double acc = 0;
            for (int64_t h = h0; h < h1; ++h) {
              for (int64_t w = w0; w < w1; ++w) acc += static_cast<double>(src[h * geo.in_w + w]);
            }
            const auto count = static_cast<double>((h1 - h0) * (w1 - w0));
            o[plane * out_plane + oh * geo.out_w + ow] = static_cast<T>(acc / count);
          }
        }
      }
    });
  });
  return out;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& grad_in, const Shape& input_shape) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_pool_input(input_shape, op);
  const size_t nd = input_shape.size();
  LOUPE_CHECK(grad_in.dim() == static_cast<int64_t>(nd) &&
                  std::equal(input_shape.begin(), input_shape.end() - 2, grad_in.shape().begin()),
              op, ": grad of shape ", shape_str(grad_in.shape()), " does not fit input of shape ",
              shape_str(input_shape));
  const PoolGeometry geo = make_geometry(input_shape, grad_in.shape()[nd - 2], grad_in.shape()[nd - 1]);
  const Tensor grad = contiguous(grad_in);
  Tensor dx = Tensor::empty(input_shape, grad.dtype(), grad.device());
  if (grad.device().is_cuda()) {
    cuda::adaptive_avg_pool2d_backward(grad, cuda_shape(geo), dx);  // gathers
    return dx;
  }
  fill_(dx, 0.0);
  dispatch_floating(grad.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(grad.raw_data());
    T* out = static_cast<T*>(dx.raw_data());
    const int64_t in_plane = geo.in_h * geo.in_w, out_plane = geo.out_h * geo.out_w;
    parallel_for(0, geo.planes, plane_grain(std::max(in_plane, out_plane)), [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        T* dst = out + plane * in_plane;
        for (int64_t oh = 0; oh < geo.out_h; ++oh) {
          const int64_t h0 = adaptive_start(oh, geo.in_h, geo.out_h), h1 = adaptive_end(oh, geo.in_h, geo.out_h);
          for (int64_t ow = 0; ow < geo.out_w; ++ow) {
            const int64_t w0 = adaptive_start(ow, geo.in_w, geo.out_w), w1 = adaptive_end(ow, geo.in_w, geo.out_w);
            const T share = g[plane * out_plane + oh * geo.out_w + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
            for (int64_t h = h0; h < h1; ++h) {
              for (int64_t w = w0; w < w1; ++w) dst[h * geo.in_w + w] += share;
            }
          }
        }
      }
    });
  });
  return dx;
}

}  // namespace loupe::ops
