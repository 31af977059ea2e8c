// CUDA pad (constant, reflect, replicate) and its backward. tensor/ops/join.cpp plans the pad once
// for both backends: for every padded dim, the input index each output index reads (-1: the
// constant fill), which it copies to the device together with the inverse (the outputs that read
// each input index, in increasing order). See cuda::PadShape in tensor/cuda/ops.hpp.
//   forward:   one thread per output element looks up its source in each padded dim.
//   backward:  one thread per input element gathers the gradients of every output that read it:
//              the product, over the padded dims, of the outputs reading its index there, walked
//              with the last dim fastest, which is the CPU scatter's order. Deterministic, no
//              atomics, the same sums as the CPU. (The autograd backward of constant padding is a
//              constant pad with negated pads, i.e. the forward kernel.)
// Tests: tests/cuda/test_cuda_pool.cpp, tests/cuda/test_cuda.cpp (op table: pad entries)
#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"

namespace loupe::cuda {

namespace {

template <typename T>
struct Pad {
  const T* x;
  T* out;
  const int64_t* tables;
  PadShape s;
  T value;

  __host__ __device__ void operator()(int64_t i) const {
    const int64_t plane = i / s.plane_out;
    int64_t rest = i % s.plane_out, at = 0, step = 1;
    for (int d = s.dims - 1; d >= 0; --d) {
      const int64_t from = tables[s.source_at[d] + rest % s.out_size[d]];
      rest /= s.out_size[d];
      if (from < 0) {
        out[i] = value;
        return;
      }
      at += from * step;
      step *= s.in_size[d];
    }
    out[i] = x[plane * s.plane_in + at];
  }
};

template <typename T>
struct PadBackward {
  const T* grad;
  T* dx;
  const int64_t* tables;
  PadShape s;

  __host__ __device__ void operator()(int64_t i) const {
    const int64_t plane = i / s.plane_in;
    int64_t rest = i % s.plane_in, total = 1;
    int64_t list[kMaxPadDims], count[kMaxPadDims];  // per dim: where its outputs start, how many
    for (int d = s.dims - 1; d >= 0; --d) {
      const int64_t* first = tables + s.first_at[d] + rest % s.in_size[d];
      rest /= s.in_size[d];
      list[d] = s.outputs_at[d] + first[0];
      count[d] = first[1] - first[0];
      total *= count[d];
    }
    const T* g = grad + plane * s.plane_out;
    T acc = T(0);
    for (int64_t k = 0; k < total; ++k) {  // k: a mixed-radix counter over the dims' lists
      int64_t left = k, at = 0, step = 1;
      for (int d = s.dims - 1; d >= 0; --d) {
        at += tables[list[d] + left % count[d]] * step;
        left /= count[d];
        step *= s.out_size[d];
      }
      acc += g[at];
    }
    dx[i] = acc;
  }
};

}  // namespace

void pad(const Tensor& x, const Tensor& tables, const PadShape& s, double value, const Tensor& out) {
  const int device = x.device().index;
  check_same_device("pad", x.device(), {&tables, &out});
  DeviceGuard guard(device);
  dispatch_all(x.dtype(), "pad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(out.numel(), device,
                    Pad<T>{device_data<const T>(x), device_data<T>(out), device_data<const int64_t>(tables), s,
                           static_cast<T>(value)});
  });
}

void pad_backward(const Tensor& grad, const Tensor& tables, const PadShape& s, const Tensor& dx) {
  const int device = grad.device().index;
  check_same_device("pad_backward", grad.device(), {&tables, &dx});
  DeviceGuard guard(device);
  dispatch_numeric(grad.dtype(), "pad_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_for_each(dx.numel(), device,
                    PadBackward<T>{device_data<const T>(grad), device_data<T>(dx),
                                   device_data<const int64_t>(tables), s});
  });
}

}  // namespace loupe::cuda
