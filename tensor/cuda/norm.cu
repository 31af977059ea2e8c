// CUDA batch norm, layer norm and RMS norm, forward and backward: the formulas of
// tensor/ops/norm.cpp, which checks the arguments before dispatching here. Statistics accumulate
// in float64 whatever x's dtype, as on the CPU (these kernels are memory-bound: the float64 adds
// cost nothing measurable on data-centre GPUs), and are returned as float64 device tensors for
// the backward pass. The elementwise passes run in x's dtype with the CPU fast kernels' fma
// shapes (tensor/cpu/fast_elementwise.cpp), so float32 results agree with the CPU to rounding.
// Batch norm also takes bfloat16 x (and gradient) with parameters and running statistics of any
// floating dtype (float32 under autocast), like cuDNN's: bf16 loads widen to float64 for the sums,
// the elementwise passes compute in float and store bf16 (y, dx), the running statistics update
// in their own dtype and the parameter gradients come out in the weight's dtype.
//
// Batch norm, x (N, C, S) contiguous; channel c holds the M = N * S elements x[n, c, 0:S]:
//   1. partial sums: a grid of (C, chunks) blocks; block (c, p) sums its chunk of channel c's M
//      elements (walked as (n, s) pairs, one division per thread) and writes one partial per
//      sum. Chunks are sized from M and C only, so results do not depend on the GPU.
//   2. finalise: a thread per channel adds its partials in order and computes the statistics
//      (forward: mean and biased variance from sums shifted by the channel's first element, no
//      cancellation; the running statistics updated in place), then per-channel coefficients.
//   3. apply: a grid-stride elementwise pass (out = x * scale[c] + shift[c], or the dx formula).
// Layer / RMS norm, x (R, K) contiguous: a warp per row for K <= 1024 (8 rows per block), a block
// of 256 threads per longer row; mean, squared deviations and the output in three passes over the
// row (the second and third hit the cache). The weight / bias gradients are column sums over the
// rows: (column, row-chunk) partials, then a thread per column adds its chunks in order.
// Tests: tests/cuda/test_cuda_norm.cpp, tests/cuda/test_cuda.cpp (op table: norm entries)
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/copy.hpp"

namespace loupe::cuda {

namespace {

constexpr int kRowWarpLimit = 1024;  // rows up to this length get a warp each

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The type the elementwise passes compute in: float for bfloat16 elements, T itself otherwise.
template <typename T>
using Wide = std::conditional_t<std::is_same_v<T, bf16>, float, T>;

// Sum of v over the threads of one row (blockDim.x threads, a multiple of 32; all of them get the
// result). `shared` holds blockDim.y * 32 doubles; used only when a row spans several warps.
__device__ double row_sum(double v, double* shared) {
#pragma unroll
  for (int delta = kWarp / 2; delta > 0; delta /= 2) v += __shfl_xor_sync(0xffffffffu, v, delta);
  if (blockDim.x > kWarp) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    __syncthreads();  // an earlier call's readers are done with `shared`
    if (lane == 0) shared[threadIdx.y * kWarp + warp] = v;
    __syncthreads();
    v = lane < static_cast<int>(blockDim.x / kWarp) ? shared[threadIdx.y * kWarp + lane] : 0.0;
#pragma unroll
    for (int delta = kWarp / 2; delta > 0; delta /= 2) v += __shfl_xor_sync(0xffffffffu, v, delta);
  }
  return v;
}

// A per-channel vector (C elements, any stride) of float32 or float64, read and written as
// double; p == nullptr stands for an absent parameter.
struct Param {
  void* p = nullptr;
  int64_t stride = 1;
  bool f64 = false;
  __device__ double get(int64_t i, double fill) const {
    if (p == nullptr) return fill;
    if (f64) return static_cast<const double*>(p)[i * stride];
    return static_cast<double>(static_cast<const float*>(p)[i * stride]);
  }
  __device__ void set(int64_t i, double v) const {
    if (f64) {
      static_cast<double*>(p)[i * stride] = v;
    } else {
      static_cast<float*>(p)[i * stride] = static_cast<float>(v);
    }
  }
};

// The kernel's view of a 1-D floating tensor. Other dtypes (float16, bfloat16) go through a
// float64 copy kept in `holder`; write_back() copies it into the original after an update.
struct ParamHolder {
  Tensor original, holder;
  Param view;
  void write_back() const {
    if (holder.defined()) ops::copy_(original, holder);
  }
};

ParamHolder param_view(const Tensor& t) {
  ParamHolder h;
  if (!t.defined()) return h;
  h.original = t;
  if ((t.dtype() == DType::f32 || t.dtype() == DType::f64) && t.dim() == 1) {
    h.view = {t.raw_data(), t.stride(0), t.dtype() == DType::f64};
  } else {
    h.holder = ops::clone(ops::to_dtype(t, DType::f64));
    h.view = {h.holder.raw_data(), 1, true};
  }
  return h;
}

// --- batch norm ---

struct ChannelShape {
  int64_t n = 0, c = 0, s = 1;
  __host__ __device__ int64_t m() const { return n * s; }
};

// Chunks per channel for the partial sums: about 1024 blocks in all, each chunk >= 2048
// elements. Depends only on the shape, so the summation order is fixed.
int64_t chunks_for(const ChannelShape& l) {
  if (l.m() == 0) return 0;
  const int64_t chunks = std::clamp<int64_t>(ceil_div(1024, l.c), 1, ceil_div(l.m(), 2048));
  return std::min<int64_t>(ceil_div(l.m(), ceil_div(l.m(), chunks)), 65535);
}

// Block (c, p) sums f(i) over elements [p * len, (p + 1) * len) of channel c into
// partial[(c * chunks + p) * 2 + {0, 1}]. Element i of the channel is (n, s) = (i / S, i % S),
// at (n * C + c) * S + s.
template <typename T, bool Backward>
__global__ void channel_partials(const T* x, const T* g, const double* mean, ChannelShape l, int64_t len,
                                 double* partial) {
  __shared__ double shared[kWarp];
  const int64_t c = blockIdx.x, p = blockIdx.y, chunks = gridDim.y;
  const int64_t begin = p * len, end = l.m() < begin + len ? l.m() : begin + len;
  // Forward: sums of (x - pivot) and its square, pivot = the channel's first element.
  // Backward: sums of g and g * (x - mean).
  const double centre = Backward ? mean[c] : convert<double>(x[c * l.s]);
  double s1 = 0.0, s2 = 0.0;
  int64_t i = begin + threadIdx.x;
  int64_t n = i / l.s, s = i % l.s;
  const int64_t step_n = blockDim.x / l.s, step_s = blockDim.x % l.s;
  for (; i < end; i += blockDim.x) {
    const int64_t at = (n * l.c + c) * l.s + s;
    const double d = convert<double>(x[at]) - centre;
    if constexpr (Backward) {
      const double gv = convert<double>(g[at]);
      s1 += gv;
      s2 += gv * d;
    } else {
      s1 += d;
      s2 += d * d;
    }
    n += step_n;
    s += step_s;
    if (s >= l.s) {
      s -= l.s;
      ++n;
    }
  }
  s1 = row_sum(s1, shared);
  s2 = row_sum(s2, shared);
  if (threadIdx.x == 0) {
    partial[(c * chunks + p) * 2] = s1;
    partial[(c * chunks + p) * 2 + 1] = s2;
  }
}

struct BnForwardArgs {
  ChannelShape l;
  int64_t chunks = 0;
  bool training = false;
  double momentum = 0, eps = 0;
  Param running_mean, running_var, weight, bias;
};

// A thread per channel: statistics, running-statistic update, y = x * scale + shift coefficients
// (in Wide<T>).
template <typename T>
__global__ void bn_forward_finalize(const T* x, const double* partial, BnForwardArgs a, double* mean_out,
                                    double* rstd_out, Wide<T>* scale_out, Wide<T>* shift_out) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < a.l.c;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double mean = 0.0, var = 0.0;
    const double m = static_cast<double>(a.l.m());
    if (a.training) {
      if (a.l.m() > 0) {
        double s1 = 0.0, s2 = 0.0;
        for (int64_t p = 0; p < a.chunks; ++p) {
          s1 += partial[(c * a.chunks + p) * 2];
          s2 += partial[(c * a.chunks + p) * 2 + 1];
        }
        mean = convert<double>(x[c * a.l.s]) + s1 / m;
        var = (s2 - s1 * (s1 / m)) / m;
        if (var < 0.0) var = 0.0;  // rounding; NaN stays NaN, as on the CPU
        if (a.running_mean.p != nullptr) {
          // The running variance tracks the unbiased estimate, as in PyTorch.
          const double unbiased = var * m / (m - 1.0);
          a.running_mean.set(c, (1.0 - a.momentum) * a.running_mean.get(c, 0.0) + a.momentum * mean);
          a.running_var.set(c, (1.0 - a.momentum) * a.running_var.get(c, 0.0) + a.momentum * unbiased);
        }
      }
    } else {
      mean = a.running_mean.get(c, 0.0);
      var = a.running_var.get(c, 0.0);
    }
    const double rstd = 1.0 / sqrt(var + a.eps);
    const double scale = a.weight.get(c, 1.0) * rstd;
    const double shift = a.bias.get(c, 0.0) - mean * scale;
    mean_out[c] = mean;
    rstd_out[c] = rstd;
    scale_out[c] = static_cast<Wide<T>>(scale);
    shift_out[c] = static_cast<Wide<T>>(shift);
  }
}

// out = x * scale[c] + shift[c] (then max(out, 0) when relu); c = (i / S) % C. Computed in
// W = Wide<T>, stored in T.
template <typename T, typename Index>
__global__ void bn_apply(const T* x, T* out, Index total, Index c_count, Index s, const Wide<T>* scale,
                         const Wide<T>* shift, bool relu) {
  using W = Wide<T>;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index c = (i / s) % c_count;
    W v = fma(convert<W>(x[i]), scale[c], shift[c]);
    if (relu) v = v > W(0) ? v : W(0);  // NaN -> 0, like the CPU's relu
    out[i] = convert<T>(v);
  }
}

struct BnBackwardArgs {
  ChannelShape l;
  int64_t chunks = 0;  // 0: no sums were needed
  bool training = false;
  Param weight;
};

// A thread per channel: the parameter gradients (written through Param views, in their own dtype;
// p == nullptr when not needed) and the coefficients of dx = k ((g - a) - (x - mu) c) in Wide<T>.
template <typename T>
__global__ void bn_backward_finalize(const double* partial, const double* mean, const double* rstd, BnBackwardArgs a,
                                     Param grad_weight, Param grad_bias, Wide<T>* coef) {
  using W = Wide<T>;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < a.l.c;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double sg = 0.0, sgx = 0.0;
    for (int64_t p = 0; p < a.chunks; ++p) {
      sg += partial[(c * a.chunks + p) * 2];
      sgx += partial[(c * a.chunks + p) * 2 + 1];
    }
    sgx *= rstd[c];  // sum(g * xhat)
    if (grad_weight.p != nullptr) grad_weight.set(c, sgx);
    if (grad_bias.p != nullptr) grad_bias.set(c, sg);
    if (coef != nullptr) {
      // In training the batch statistics depend on x: remove the mean gradient and its projection
      // on xhat. In inference they are constants and only the scale remains.
      const double m = static_cast<double>(a.l.m());
      const double ac = a.training ? sg / m : 0.0;
      const double bc = a.training ? sgx / m : 0.0;
      coef[c * 4] = static_cast<W>(a.weight.get(c, 1.0) * rstd[c]);
      coef[c * 4 + 1] = static_cast<W>(ac);
      coef[c * 4 + 2] = static_cast<W>(mean[c]);
      coef[c * 4 + 3] = static_cast<W>(rstd[c] * bc);
    }
  }
}

template <typename T, typename Index>
__global__ void bn_backward_dx(const T* g, const T* x, T* dx, Index total, Index c_count, Index s,
                               const Wide<T>* coef) {
  using W = Wide<T>;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const W* k = coef + ((i / s) % c_count) * 4;
    dx[i] = convert<T>(k[0] * ((convert<W>(g[i]) - k[1]) - (convert<W>(x[i]) - k[2]) * k[3]));
  }
}

// Launches an elementwise kernel over `total` elements with 32-bit indices when they fit (below
// 2^31, so that the grid-stride step can never wrap an unsigned index).
template <typename Launch32, typename Launch64>
void launch_indexed(int64_t total, Launch32&& launch32, Launch64&& launch64) {
  if (total <= std::numeric_limits<int32_t>::max()) {
    launch32();
  } else {
    launch64();
  }
}

ChannelShape channel_shape(const Tensor& x) {
  ChannelShape l;
  l.n = x.size(0);
  l.c = x.size(1);
  for (int64_t d = 2; d < x.dim(); ++d) l.s *= x.size(d);
  return l;
}

// --- layer / rms norm ---

// Row statistics and the normalised output. Rows of K elements; blockDim.x threads per row,
// blockDim.y rows per block. w, b: K elements in T or nullptr.
template <typename T, bool Center>
__global__ void row_norm_forward_kernel(const T* x, T* out, const T* w, const T* b, int64_t rows, int64_t k,
                                        double eps, double* mean_out, double* rstd_out) {
  __shared__ double shared[kThreads];
  const double kd = static_cast<double>(k);
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.y; base < rows;
       base += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    // Uniform over the threads that reduce together: a warp (blockDim.x == 32, no block syncs)
    // or the whole block (blockDim.y == 1).
    const int64_t row = base + threadIdx.y;
    if (row >= rows) continue;
    const T* px = x + row * k;
    T* po = out + row * k;
    double mu = 0.0;
    if constexpr (Center) {
      double sum = 0.0;
      for (int64_t j = threadIdx.x; j < k; j += blockDim.x) sum += static_cast<double>(px[j]);
      mu = row_sum(sum, shared) / kd;
    }
    double squares = 0.0;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
      const double d = static_cast<double>(px[j]) - mu;
      squares += d * d;
    }
    const double rs = 1.0 / sqrt(row_sum(squares, shared) / kd + eps);
    const T mu_t = static_cast<T>(mu), rs_t = static_cast<T>(rs);
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
      const T scale = w != nullptr ? rs_t * w[j] : rs_t;
      po[j] = b != nullptr ? fma(px[j] - mu_t, scale, b[j]) : (px[j] - mu_t) * scale;
    }
    if (threadIdx.x == 0) {
      if (mean_out != nullptr) mean_out[row] = mu;
      rstd_out[row] = rs;
    }
  }
}

// dx = rstd (wg - a - xhat b), wg = g w, a = sum(wg) / K (0 without centring), b = sum(wg xhat) / K.
template <typename T, bool Center>
__global__ void row_norm_backward_kernel(const T* g, const T* x, const double* w, const double* mean,
                                         const double* rstd, int64_t rows, int64_t k, T* dx) {
  __shared__ double shared[kThreads];
  const double kd = static_cast<double>(k);
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.y; base < rows;
       base += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t row = base + threadIdx.y;
    if (row >= rows) continue;
    const T* pg = g + row * k;
    const T* px = x + row * k;
    const double mu = Center ? mean[row] : 0.0, rs = rstd[row];
    double sum_wg = 0.0, sum_wg_xhat = 0.0;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
      const double wg = static_cast<double>(pg[j]) * (w != nullptr ? w[j] : 1.0);
      if constexpr (Center) sum_wg += wg;
      sum_wg_xhat += wg * ((static_cast<double>(px[j]) - mu) * rs);
    }
    const double a = Center ? row_sum(sum_wg, shared) / kd : 0.0;
    const double b = row_sum(sum_wg_xhat, shared) / kd;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
      const double wg = static_cast<double>(pg[j]) * (w != nullptr ? w[j] : 1.0);
      const double xhat = (static_cast<double>(px[j]) - mu) * rs;
      dx[row * k + j] = static_cast<T>(rs * (wg - a - xhat * b));
    }
  }
}

// Column partials of sum(g) and sum(g * xhat) over rows [p * len, (p + 1) * len):
// partial[(p * k + j) * 2 + {0, 1}]. A thread per column (neighbouring threads, neighbouring
// addresses); blockIdx.y = p.
template <typename T>
__global__ void column_partials(const T* g, const T* x, const double* mean, const double* rstd, int64_t rows,
                                int64_t k, int64_t len, double* partial) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= k) return;
  const int64_t p = blockIdx.y;
  const int64_t end = rows < (p + 1) * len ? rows : (p + 1) * len;
  double sg = 0.0, sgx = 0.0;
  for (int64_t r = p * len; r < end; ++r) {
    const double gv = static_cast<double>(g[r * k + j]);
    sg += gv;
    sgx += gv * ((static_cast<double>(x[r * k + j]) - (mean != nullptr ? mean[r] : 0.0)) * rstd[r]);
  }
  partial[(p * k + j) * 2] = sg;
  partial[(p * k + j) * 2 + 1] = sgx;
}

template <typename T>
__global__ void column_finalize(const double* partial, int64_t chunks, int64_t k, T* grad_weight, T* grad_bias) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < k;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double sg = 0.0, sgx = 0.0;
    for (int64_t p = 0; p < chunks; ++p) {
      sg += partial[(p * k + j) * 2];
      sgx += partial[(p * k + j) * 2 + 1];
    }
    if (grad_weight != nullptr) grad_weight[j] = static_cast<T>(sgx);
    if (grad_bias != nullptr) grad_bias[j] = static_cast<T>(sg);
  }
}

// Launch shape of the row kernels: a warp per row (8 rows per block) or a block per row.
struct RowLaunch {
  dim3 grid, block;
};
RowLaunch row_launch(int64_t rows, int64_t k) {
  if (k <= kRowWarpLimit) return {dim3(blocks_for(rows, kThreads / kWarp)), dim3(kWarp, kThreads / kWarp)};
  return {dim3(blocks_for(rows, 1)), dim3(kThreads, 1)};
}

// x's values in `dtype`, contiguous, on x's device (x itself when it already is).
Tensor dense(const Tensor& x, DType dtype) { return ops::contiguous(ops::to_dtype(x, dtype)); }

}  // namespace

ops::NormForward batch_norm_forward(const Tensor& x_in, const Tensor& running_mean, const Tensor& running_var,
                                    const Tensor& weight, const Tensor& bias, bool training, double momentum,
                                    double eps, bool fuse_relu) {
  const char* op = "batch_norm";
  check_same_device(op, x_in.device(), {&running_mean, &running_var, &weight, &bias});
  const Tensor x = ops::contiguous(x_in);
  const ChannelShape l = channel_shape(x);
  const int device = x.device().index;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  BnForwardArgs args;
  args.l = l;
  args.training = training;
  args.momentum = momentum;
  args.eps = eps;
  args.chunks = training ? chunks_for(l) : 0;
  const ParamHolder rm = param_view(running_mean), rv = param_view(running_var);
  const ParamHolder w = param_view(weight), b = param_view(bias);
  args.running_mean = rm.view;
  args.running_var = rv.view;
  args.weight = w.view;
  args.bias = b.view;

  ops::NormForward result;
  result.out = Tensor::empty(x.shape(), x.dtype(), x.device());
  result.mean = Tensor::empty({l.c}, DType::f64, x.device());
  result.rstd = Tensor::empty({l.c}, DType::f64, x.device());
  if (l.c == 0) return result;
  dispatch_floating_bf16(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using W = Wide<T>;
    const T* px = device_data<const T>(x);
    Workspace partial(static_cast<size_t>(l.c * args.chunks * 2) * sizeof(double), device);
    Workspace coef(static_cast<size_t>(l.c * 2) * sizeof(W), device);
    W* scale = static_cast<W*>(coef.data());
    W* shift = scale + l.c;
    if (args.chunks > 0) {
      const int64_t len = ceil_div(l.m(), args.chunks);
      channel_partials<T, false><<<dim3(static_cast<unsigned>(l.c), static_cast<unsigned>(args.chunks)), kThreads, 0,
                                   s>>>(px, nullptr, nullptr, l, len, static_cast<double*>(partial.data()));
      LOUPE_CUDA_CHECK_LAUNCH();
    }
    bn_forward_finalize<T><<<blocks_for(l.c), kThreads, 0, s>>>(px, static_cast<const double*>(partial.data()), args,
                                                                device_data<double>(result.mean),
                                                                device_data<double>(result.rstd), scale, shift);
    LOUPE_CUDA_CHECK_LAUNCH();
    const int64_t total = x.numel();
    if (total == 0) return;
    T* po = device_data<T>(result.out);
    launch_indexed(
        total,
        [&] {
          bn_apply<T, uint32_t><<<blocks_for(total), kThreads, 0, s>>>(
              px, po, static_cast<uint32_t>(total), static_cast<uint32_t>(l.c), static_cast<uint32_t>(l.s), scale,
              shift, fuse_relu);
        },
        [&] {
          bn_apply<T, int64_t><<<blocks_for(total), kThreads, 0, s>>>(px, po, total, l.c, l.s, scale, shift,
                                                                       fuse_relu);
        });
    LOUPE_CUDA_CHECK_LAUNCH();
  });
  if (training && l.m() > 0) {
    rm.write_back();
    rv.write_back();
  }
  return result;
}

ops::NormGrads batch_norm_backward(const Tensor& g_in, const Tensor& x_in, const Tensor& mean_in,
                                   const Tensor& rstd_in, const Tensor& weight, bool training, ops::NormNeeds needs) {
  const char* op = "batch_norm_backward";
  check_same_device(op, x_in.device(), {&g_in, &mean_in, &rstd_in, &weight});
  const Tensor x = ops::contiguous(x_in);
  const Tensor g = dense(g_in, x.dtype());
  const Tensor mean = dense(mean_in, DType::f64), rstd = dense(rstd_in, DType::f64);
  const ChannelShape l = channel_shape(x);
  const int device = x.device().index;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  const ParamHolder w = param_view(weight);
  BnBackwardArgs args;
  args.l = l;
  args.training = training;
  args.weight = w.view;
  // The sums are needed for the parameter gradients, and for dx in training.
  args.chunks = (needs[1] || needs[2] || (needs[0] && training)) ? chunks_for(l) : 0;

  // The parameter gradients: in x's dtype for float32/float64 x (as on the CPU); for bfloat16 x
  // in the weight's dtype (float32 when there is no weight), as cuDNN's mixed batch norm. Written
  // by the kernel in float32/float64; another dtype goes through a float64 tensor, converted last.
  const DType param_dtype =
      x.dtype() != DType::bf16 ? x.dtype() : (weight.defined() ? weight.dtype() : DType::f32);
  const bool param_direct = param_dtype == DType::f32 || param_dtype == DType::f64;
  const DType param_store = param_direct ? param_dtype : DType::f64;
  ops::NormGrads grads;
  if (needs[0]) grads.x = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (needs[1]) grads.weight = Tensor::empty({l.c}, param_store, x.device());
  if (needs[2]) grads.bias = Tensor::empty({l.c}, param_store, x.device());
  auto finish = [&]() {
    if (param_direct) return grads;
    if (needs[1]) grads.weight = ops::to_dtype(grads.weight, param_dtype);
    if (needs[2]) grads.bias = ops::to_dtype(grads.bias, param_dtype);
    return grads;
  };
  if (l.c == 0 || !(needs[0] || needs[1] || needs[2])) return finish();
  auto param_out = [&](const Tensor& t) {
    return t.defined() ? Param{t.raw_data(), 1, t.dtype() == DType::f64} : Param{};
  };
  const Param grad_weight = param_out(grads.weight), grad_bias = param_out(grads.bias);
  dispatch_floating_bf16(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using W = Wide<T>;
    const T* px = device_data<const T>(x);
    const T* pg = device_data<const T>(g);
    const double* pmean = device_data<const double>(mean);
    const double* prstd = device_data<const double>(rstd);
    Workspace partial(static_cast<size_t>(l.c * args.chunks * 2) * sizeof(double), device);
    Workspace coef(needs[0] ? static_cast<size_t>(l.c * 4) * sizeof(W) : 0, device);
    if (args.chunks > 0) {
      const int64_t len = ceil_div(l.m(), args.chunks);
      channel_partials<T, true><<<dim3(static_cast<unsigned>(l.c), static_cast<unsigned>(args.chunks)), kThreads, 0,
                                  s>>>(px, pg, pmean, l, len, static_cast<double*>(partial.data()));
      LOUPE_CUDA_CHECK_LAUNCH();
    }
    W* pcoef = static_cast<W*>(coef.data());
    bn_backward_finalize<T><<<blocks_for(l.c), kThreads, 0, s>>>(static_cast<const double*>(partial.data()), pmean,
                                                                 prstd, args, grad_weight, grad_bias, pcoef);
    LOUPE_CUDA_CHECK_LAUNCH();
    const int64_t total = x.numel();
    if (!needs[0] || total == 0) return;
    T* pdx = device_data<T>(grads.x);
    launch_indexed(
        total,
        [&] {
          bn_backward_dx<T, uint32_t><<<blocks_for(total), kThreads, 0, s>>>(
              pg, px, pdx, static_cast<uint32_t>(total), static_cast<uint32_t>(l.c), static_cast<uint32_t>(l.s), pcoef);
        },
        [&] {
          bn_backward_dx<T, int64_t><<<blocks_for(total), kThreads, 0, s>>>(pg, px, pdx, total, l.c, l.s, pcoef);
        });
    LOUPE_CUDA_CHECK_LAUNCH();
  });
  return finish();
}

ops::NormForward row_norm_forward(const Tensor& x_in, int64_t rows, int64_t k, const Tensor& weight,
                                  const Tensor& bias, double eps, bool center) {
  const char* op = center ? "layer_norm" : "rms_norm";
  check_same_device(op, x_in.device(), {&weight, &bias});
  const Tensor x = ops::contiguous(x_in);
  const Tensor w = weight.defined() ? dense(weight, x.dtype()) : Tensor();
  const Tensor b = bias.defined() ? dense(bias, x.dtype()) : Tensor();
  const int device = x.device().index;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  ops::NormForward result;
  result.out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (center) result.mean = Tensor::empty({rows}, DType::f64, x.device());
  result.rstd = Tensor::empty({rows}, DType::f64, x.device());
  if (rows == 0) return result;
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const RowLaunch launch = row_launch(rows, k);
    const T* pw = w.defined() ? device_data<const T>(w) : nullptr;
    const T* pb = b.defined() ? device_data<const T>(b) : nullptr;
    double* pmean = center ? device_data<double>(result.mean) : nullptr;
    if (center) {
      row_norm_forward_kernel<T, true><<<launch.grid, launch.block, 0, s>>>(
          device_data<const T>(x), device_data<T>(result.out), pw, pb, rows, k, eps, pmean,
          device_data<double>(result.rstd));
    } else {
      row_norm_forward_kernel<T, false><<<launch.grid, launch.block, 0, s>>>(
          device_data<const T>(x), device_data<T>(result.out), pw, pb, rows, k, eps, pmean,
          device_data<double>(result.rstd));
    }
    LOUPE_CUDA_CHECK_LAUNCH();
  });
  return result;
}

ops::NormGrads row_norm_backward(const Tensor& g_in, const Tensor& x_in, const Shape& normalized_shape, int64_t rows,
                                 int64_t k, const Tensor& mean_in, const Tensor& rstd_in, const Tensor& weight,
                                 ops::NormNeeds needs) {
  const bool center = mean_in.defined();
  const char* op = center ? "layer_norm_backward" : "rms_norm_backward";
  check_same_device(op, x_in.device(), {&g_in, &mean_in, &rstd_in, &weight});
  const Tensor x = ops::contiguous(x_in);
  const Tensor g = dense(g_in, x.dtype());
  const Tensor mean = center ? dense(mean_in, DType::f64) : Tensor();
  const Tensor rstd = dense(rstd_in, DType::f64);
  const Tensor w = weight.defined() ? dense(weight, DType::f64) : Tensor();
  const int device = x.device().index;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  ops::NormGrads grads;
  if (needs[0]) grads.x = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (needs[1]) grads.weight = Tensor::empty(normalized_shape, x.dtype(), x.device());
  if (needs[2]) grads.bias = Tensor::empty(normalized_shape, x.dtype(), x.device());
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = device_data<const T>(x);
    const T* pg = device_data<const T>(g);
    const double* pmean = center ? device_data<const double>(mean) : nullptr;
    const double* prstd = device_data<const double>(rstd);
    if (needs[0] && rows > 0) {
      const RowLaunch launch = row_launch(rows, k);
      const double* pw = w.defined() ? device_data<const double>(w) : nullptr;
      if (center) {
        row_norm_backward_kernel<T, true><<<launch.grid, launch.block, 0, s>>>(pg, px, pw, pmean, prstd, rows, k,
                                                                               device_data<T>(grads.x));
      } else {
        row_norm_backward_kernel<T, false><<<launch.grid, launch.block, 0, s>>>(pg, px, pw, pmean, prstd, rows, k,
                                                                                device_data<T>(grads.x));
      }
      LOUPE_CUDA_CHECK_LAUNCH();
    }
    if ((needs[1] || needs[2]) && k > 0) {
      // About 1024 blocks of (256 columns, >= 64 rows); the chunking depends only on the shape.
      const int64_t column_blocks = ceil_div(k, kThreads);
      int64_t chunks = std::clamp<int64_t>(ceil_div(1024, column_blocks), 1, std::max<int64_t>(1, ceil_div(rows, 64)));
      chunks = std::min<int64_t>(chunks, 65535);
      const int64_t len = std::max<int64_t>(1, ceil_div(rows, chunks));
      Workspace partial(static_cast<size_t>(chunks * k * 2) * sizeof(double), device);
      column_partials<T><<<dim3(static_cast<unsigned>(column_blocks), static_cast<unsigned>(chunks)), kThreads, 0, s>>>(
          pg, px, pmean, prstd, rows, k, len, static_cast<double*>(partial.data()));
      LOUPE_CUDA_CHECK_LAUNCH();
      column_finalize<T><<<blocks_for(k), kThreads, 0, s>>>(static_cast<const double*>(partial.data()), chunks, k,
                                                           needs[1] ? device_data<T>(grads.weight) : nullptr,
                                                           needs[2] ? device_data<T>(grads.bias) : nullptr);
      LOUPE_CUDA_CHECK_LAUNCH();
    }
  });
  return grads;
}

}  // namespace loupe::cuda
