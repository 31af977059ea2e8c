// CUDA kernels of the class-index losses (cross_entropy, nll_loss) and of
// binary_cross_entropy_with_logits, forward and backward: the formulas of tensor/ops/loss.cpp,
// computed in float64 like the CPU. tensor/ops/loss.cpp checks every argument (target values
// included, through first_out_of_range) before it dispatches here.
//
// Class-index losses see the input as (N, C, D) (position p = (n, d), class k at offset
// (p / D) * C * D + p % D + k * D). One warp per position, fused: its 32 lanes stride over the C
// classes for the max, then the sum of exponentials (and the label-smoothing sum), combined by
// warp shuffles; the backward recomputes the log-sum-exp and writes the whole gradient row (zero
// for an ignored target). Per-position losses go to a float64 buffer; the reductions (sum, and
// mean = sum / sum of the target weights) are the existing CUDA sum and div, so nothing is read
// back to the host and there is no synchronisation.
// Binary cross-entropy: one thread per element on contiguous operands.
// Tests: tests/cuda/test_cuda.cpp (op table: loss entries), tests/cuda/test_cuda_index.cpp
#include <cmath>
#include <limits>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::cuda {

namespace {

constexpr int kRowsPerBlock = kThreads / kWarp;  // warps (positions in flight) per block

__device__ double warp_sum(double v) {
#pragma unroll
  for (int delta = kWarp / 2; delta > 0; delta /= 2) v += __shfl_xor_sync(0xffffffffu, v, delta);
  return v;
}

// std::max(a, b) as the CPU's log_sum_exp uses it: a NaN b never replaces a.
__device__ double cpu_max(double a, double b) { return a < b ? b : a; }

__device__ double warp_max(double v) {
#pragma unroll
  for (int delta = kWarp / 2; delta > 0; delta /= 2) v = cpu_max(v, __shfl_xor_sync(0xffffffffu, v, delta));
  return v;
}

// log(sum_k exp(row[k * stride])) over `classes`, max-subtracted (the CPU's log_sum_exp); every
// lane of the warp gets the result.
template <typename T>
__device__ double row_log_sum_exp(const T* row, int64_t classes, int64_t stride, int lane) {
  const double inf = std::numeric_limits<double>::infinity();
  double hi = -inf;
  for (int64_t k = lane; k < classes; k += kWarp) hi = cpu_max(hi, static_cast<double>(row[k * stride]));
  hi = warp_max(hi);
  if (hi == inf || hi == -inf) return hi;
  double total = 0.0;
  for (int64_t k = lane; k < classes; k += kWarp) total += exp(static_cast<double>(row[k * stride]) - hi);
  return hi + log(warp_sum(total));
}

// The loss of every position (0 where ignored), into loss (float64). Blocks of (32, kRowsPerBlock):
// warp threadIdx.y handles positions blockIdx.x * kRowsPerBlock + threadIdx.y, then a grid stride on.
// Every condition below is the same for the 32 lanes of a warp, so the shuffles see all of them.
template <typename T, bool FromLogits>
__global__ void class_loss_kernel(const T* x, const int64_t* target, const double* weight, int64_t positions,
                                  int64_t classes, int64_t inner, int64_t ignore, double eps, double* loss) {
  const int lane = static_cast<int>(threadIdx.x);
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; p < positions;
       p += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t t = target[p];
    if (t == ignore) {
      if (lane == 0) loss[p] = 0.0;
      continue;
    }
    const T* row = x + (p / inner) * classes * inner + p % inner;
    const double wt = weight != nullptr ? weight[t] : 1.0;
    double value = 0.0;
    if constexpr (!FromLogits) {
      value = -wt * static_cast<double>(row[t * inner]);
    } else {
      const double lse = row_log_sum_exp(row, classes, inner, lane);
      const double nll = -wt * (static_cast<double>(row[t * inner]) - lse);
      double smooth = 0.0;
      if (eps > 0.0) {
        for (int64_t k = lane; k < classes; k += kWarp) {
          smooth -= (weight != nullptr ? weight[k] : 1.0) * (static_cast<double>(row[k * inner]) - lse);
        }
        smooth = warp_sum(smooth);
      }
      value = (1.0 - eps) * nll + eps / static_cast<double>(classes) * smooth;
    }
    if (lane == 0) loss[p] = value;
  }
}

// weight[target] per position (0 where ignored): summed, the divisor of the mean.
__global__ void target_weight_kernel(const int64_t* target, const double* weight, int64_t positions, int64_t ignore,
                                     double* out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < positions; p += stride) {
    const int64_t t = target[p];
    out[p] = t == ignore ? 0.0 : (weight != nullptr ? weight[t] : 1.0);
  }
}

// How the gradient of a position's loss is found: grad[p] (none), grad[0] (sum), or
// grad[0] / total_weight[0] (mean).
struct Scale {
  const double* grad;
  const double* total_weight;  // mean only
  Reduction reduction;
  __device__ double at(int64_t p) const {
    if (reduction == Reduction::none) return grad[p];
    return reduction == Reduction::mean ? grad[0] / total_weight[0] : grad[0];
  }
};

// dx for every position's row (warps as in class_loss_kernel); weight_sum: sum of the class
// weights (weighted only).
template <typename T, bool FromLogits>
__global__ void class_loss_backward_kernel(const T* x, const int64_t* target, const double* weight,
                                           const double* weight_sum, Scale scale, int64_t positions, int64_t classes,
                                           int64_t inner, int64_t ignore, double eps, T* dx) {
  const int lane = static_cast<int>(threadIdx.x);
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; p < positions;
       p += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t t = target[p];
    const int64_t base = (p / inner) * classes * inner + p % inner;
    T* drow = dx + base;
    if (t == ignore) {
      for (int64_t k = lane; k < classes; k += kWarp) drow[k * inner] = T(0);
      continue;
    }
    const double s = scale.at(p);
    const double wt = weight != nullptr ? weight[t] : 1.0;
    if constexpr (!FromLogits) {
      for (int64_t k = lane; k < classes; k += kWarp) drow[k * inner] = k == t ? static_cast<T>(-wt * s) : T(0);
    } else {
      const T* row = x + base;
      const double lse = row_log_sum_exp(row, classes, inner, lane);
      const double total = weight != nullptr ? *weight_sum : static_cast<double>(classes);
      for (int64_t k = lane; k < classes; k += kWarp) {
        const double prob = exp(static_cast<double>(row[k * inner]) - lse);
        const double nll = wt * (prob - (k == t ? 1.0 : 0.0));
        const double smooth = total * prob - (weight != nullptr ? weight[k] : 1.0);
        drow[k * inner] = static_cast<T>(s * ((1.0 - eps) * nll + eps / static_cast<double>(classes) * smooth));
      }
    }
  }
}

// softplus(-x) = log(1 + exp(-x)) without overflow; std::max(-x, 0.0) spelled as the CPU's
// std::max evaluates it (NaN stays NaN).
__device__ double softplus_neg(double x) {
  const double neg = -x;
  return log1p(exp(-fabs(x))) + (neg < 0.0 ? 0.0 : neg);
}

template <typename T>
__global__ void bce_kernel(const T* x, const T* y, const T* pos_weight, T* out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double xi = x[i], yi = y[i];
    const double pw = pos_weight != nullptr ? static_cast<double>(pos_weight[i]) : 1.0;
    const double lw = 1.0 + (pw - 1.0) * yi;
    out[i] = static_cast<T>((1.0 - yi) * xi + lw * softplus_neg(xi));
  }
}

template <typename T>
__global__ void bce_backward_kernel(const T* g, const T* x, const T* y, const T* pos_weight, T* dx, T* dy, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double gi = g[i], xi = x[i], yi = y[i];
    const double pw = pos_weight != nullptr ? static_cast<double>(pos_weight[i]) : 1.0;
    if (dx != nullptr) {
      const double lw = 1.0 + (pw - 1.0) * yi;
      const double sigmoid_neg = 1.0 / (1.0 + exp(xi));  // sigmoid(-x)
      dx[i] = static_cast<T>(gi * ((1.0 - yi) - lw * sigmoid_neg));
    }
    if (dy != nullptr) dy[i] = static_cast<T>(gi * (-xi + (pw - 1.0) * softplus_neg(xi)));
  }
}

// The class weights as a contiguous float64 tensor on the device (undefined without weights).
Tensor weights_f64(const CrossEntropyOptions& o) {
  return o.weight.defined() ? ops::contiguous(ops::to_dtype(o.weight, DType::f64)) : Tensor();
}

const double* data_or_null(const Tensor& t) { return t.defined() ? device_data<const double>(t) : nullptr; }

// weight[target] per position, as a float64 tensor of `positions` elements.
Tensor target_weights(const Tensor& target, const Tensor& weight, int64_t positions, int64_t ignore) {
  Tensor out = Tensor::empty({positions}, DType::f64, target.device());
  if (positions == 0) return out;
  const int device = target.device().index;
  target_weight_kernel<<<blocks_for(positions), kThreads, 0, stream(device)>>>(
      device_data<const int64_t>(target), data_or_null(weight), positions, ignore, device_data<double>(out));
  LOUPE_CUDA_CHECK_LAUNCH();
  return out;
}

void check_class_args(const char* op, const Tensor& input, const Tensor& target, const CrossEntropyOptions& o,
                      int64_t n, int64_t c, int64_t d) {
  check_same_device(op, input.device(), {&target, &o.weight});
  LOUPE_CHECK(input.numel() == n * c * d && target.numel() == n * d && target.dtype() == DType::i64, op,
              ": input of shape ", shape_str(input.shape()), " and target of shape ", shape_str(target.shape()),
              " do not match the layout (", n, ", ", c, ", ", d, ")");
}

}  // namespace

Tensor class_loss(const Tensor& input, const Tensor& target_in, const CrossEntropyOptions& o, int64_t n, int64_t c,
                  int64_t d, bool from_logits) {
  const char* op = from_logits ? "cross_entropy" : "nll_loss";
  check_class_args(op, input, target_in, o, n, c, d);
  const int device = input.device().index;
  DeviceGuard guard(device);
  const Tensor x = ops::contiguous(input);
  const Tensor target = ops::contiguous(target_in);
  const Tensor weight = weights_f64(o);
  const int64_t positions = n * d;
  Tensor loss = Tensor::empty({positions}, DType::f64, input.device());
  if (positions > 0) {
    dispatch_floating(input.dtype(), op, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const dim3 block(kWarp, kRowsPerBlock);
      const unsigned blocks = blocks_for(positions, kRowsPerBlock);
      const auto launch = [&](auto kernel) {
        kernel<<<blocks, block, 0, stream(device)>>>(device_data<const T>(x), device_data<const int64_t>(target),
                                                     data_or_null(weight), positions, c, d, o.ignore_index,
                                                     o.label_smoothing, device_data<double>(loss));
        LOUPE_CUDA_CHECK_LAUNCH();
      };
      if (from_logits) {
        launch(class_loss_kernel<T, true>);
      } else {
        launch(class_loss_kernel<T, false>);
      }
    });
  }
  switch (o.reduction) {
    case Reduction::none: return ops::to_dtype(ops::reshape(loss, target_in.shape()), input.dtype());
    case Reduction::sum: return ops::to_dtype(ops::sum(loss), input.dtype());
    case Reduction::mean: break;
  }
  // An empty or all-ignored batch gives 0 / 0 = NaN, as on the CPU.
  const Tensor total_weight = ops::sum(target_weights(target, weight, positions, o.ignore_index));
  return ops::to_dtype(ops::div(ops::sum(loss), total_weight), input.dtype());
}

Tensor class_loss_backward(const Tensor& grad, const Tensor& input, const Tensor& target_in,
                           const CrossEntropyOptions& o, int64_t n, int64_t c, int64_t d, bool from_logits) {
  const char* op = from_logits ? "cross_entropy_backward" : "nll_loss_backward";
  check_class_args(op, input, target_in, o, n, c, d);
  check_same_device(op, input.device(), {&grad});
  const int64_t positions = n * d;
  LOUPE_CHECK(grad.numel() == (o.reduction == Reduction::none ? positions : 1), op, ": gradient of shape ",
              shape_str(grad.shape()), " does not match the loss of target shape ", shape_str(target_in.shape()));
  const int device = input.device().index;
  DeviceGuard guard(device);
  const Tensor x = ops::contiguous(input);
  const Tensor target = ops::contiguous(target_in);
  const Tensor weight = weights_f64(o);
  const Tensor g = ops::contiguous(ops::to_dtype(grad, DType::f64));
  const Tensor weight_sum = weight.defined() ? ops::sum(weight) : Tensor();
  const Tensor total_weight = o.reduction == Reduction::mean
                                  ? ops::sum(target_weights(target, weight, positions, o.ignore_index))
                                  : Tensor();
  Tensor dx = Tensor::empty(input.shape(), input.dtype(), input.device());
  if (dx.numel() == 0) return dx;
  if (positions == 0) return dx;
  const Scale scale{device_data<const double>(g), data_or_null(total_weight), o.reduction};
  dispatch_floating(input.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const dim3 block(kWarp, kRowsPerBlock);
    const unsigned blocks = blocks_for(positions, kRowsPerBlock);
    const auto launch = [&](auto kernel) {
      kernel<<<blocks, block, 0, stream(device)>>>(device_data<const T>(x), device_data<const int64_t>(target),
                                                   data_or_null(weight), data_or_null(weight_sum), scale, positions,
                                                   c, d, o.ignore_index, o.label_smoothing, device_data<T>(dx));
      LOUPE_CUDA_CHECK_LAUNCH();
    };
    if (from_logits) {
      launch(class_loss_backward_kernel<T, true>);
    } else {
      launch(class_loss_backward_kernel<T, false>);
    }
  });
  return dx;
}

Tensor bce_with_logits(const Tensor& x, const Tensor& y, const Tensor& pos_weight) {
  const char* op = "binary_cross_entropy_with_logits";
  check_same_device(op, x.device(), {&y, &pos_weight});
  LOUPE_CHECK(x.is_contiguous() && y.is_contiguous() && y.shape() == x.shape() && y.dtype() == x.dtype() &&
                  (!pos_weight.defined() || (pos_weight.is_contiguous() && pos_weight.shape() == x.shape() &&
                                             pos_weight.dtype() == x.dtype())),
              op, ": expected contiguous operands of one shape and dtype");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t n = x.numel();
  if (n == 0) return out;
  const int device = x.device().index;
  DeviceGuard guard(device);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    bce_kernel<T><<<blocks_for(n), kThreads, 0, stream(device)>>>(
        device_data<const T>(x), device_data<const T>(y),
        pos_weight.defined() ? device_data<const T>(pos_weight) : nullptr, device_data<T>(out), n);
    LOUPE_CUDA_CHECK_LAUNCH();
  });
  return out;
}

void bce_with_logits_backward(const Tensor& g, const Tensor& x, const Tensor& y, const Tensor& pos_weight,
                              const Tensor& dx, const Tensor& dy) {
  const char* op = "binary_cross_entropy_with_logits_backward";
  check_same_device(op, x.device(), {&g, &y, &pos_weight, &dx, &dy});
  for (const Tensor* t : {&g, &y, &pos_weight, &dx, &dy}) {
    LOUPE_CHECK(!t->defined() || (t->is_contiguous() && t->shape() == x.shape() && t->dtype() == x.dtype()), op,
                ": expected contiguous operands of one shape and dtype");
  }
  LOUPE_CHECK(x.is_contiguous() && g.defined() && y.defined(), op, ": expected contiguous operands");
  const int64_t n = x.numel();
  if (n == 0 || (!dx.defined() && !dy.defined())) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    bce_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream(device)>>>(
        device_data<const T>(g), device_data<const T>(x), device_data<const T>(y),
        pos_weight.defined() ? device_data<const T>(pos_weight) : nullptr,
        dx.defined() ? device_data<T>(dx) : nullptr, dy.defined() ? device_data<T>(dy) : nullptr, n);
    LOUPE_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace loupe::cuda
