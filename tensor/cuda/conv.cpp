// conv2d and its backward kernels on the GPU (same semantics and errors as tensor/ops/conv.cpp).
//
// cuDNN does the work when loupe is built with it: for each (kind, input shape, weight shape,
// parameters, dtype, precision) the best algorithm cuDNN's heuristics offer -- or, in benchmark
// mode (set_cudnn_benchmark), the fastest one measured -- is looked up once and cached, and its
// workspace comes from the caching allocator. When cuDNN is absent, declines a
// case (no algorithm, or CUDNN_STATUS_NOT_SUPPORTED), or set_use_cudnn(false) was called, our
// own im2col + GEMM kernels (conv_fallback.cu) run instead.
// float32 convolutions compute in full fp32 (CUDNN_FMA_MATH) unless matmul precision allows TF32.
// bfloat16 convolutions (mixed precision) use CUDNN_DATA_BFLOAT16 tensors with float compute on
// tensor cores; the fallback does the same with cuBLAS (bf16 GEMM, fp32 accumulation).
// Tests: tests/cuda/test_cuda.cpp
#include <atomic>
#include <map>
#include <mutex>
#include <tuple>

#include "tensor/cuda/internal.hpp"
#include "tensor/ops/conv.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/cuda/runtime.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::cuda {

namespace {

std::atomic<bool> g_use_cudnn{true};
std::atomic<bool> g_cudnn_benchmark{false};

ConvShape conv_shape(const Shape& input, const Shape& weight, const Conv2dParams& p, const char* op) {
  return ops::conv2d_geometry(input, weight, p, op);
}

Shape output_shape(const ConvShape& s, bool batched) {
  if (batched) return {s.batch, s.out_channels, s.out_h, s.out_w};
  return {s.out_channels, s.out_h, s.out_w};
}

void check_tensor(const Tensor& t, const char* what, const Tensor& like, const char* op) {
  LOUPE_CHECK(t.defined(), op, ": ", what, " is undefined");
  LOUPE_CHECK(t.device() == like.device(), op, ": ", what, " is on ", t.device().str(), " but the input on ",
              like.device().str());
  LOUPE_CHECK(t.dtype() == like.dtype(), op, ": ", what, " has dtype ", t.dtype(), " but expected ", like.dtype());
}

// float16 is storage-only on the GPU: no convolution kernels.
void check_gpu_dtype(DType dtype, const char* op) {
  LOUPE_CHECK(dtype != DType::f16, op, ": dtype float16 is not implemented on the GPU (float32, float64 and ",
              "bfloat16 are)");
}

#ifdef LOUPE_WITH_CUDNN

enum class Kind { forward, backward_data, backward_filter };

// One cached choice: the algorithm (as an int of the kind's enum), its math type and workspace.
struct Choice {
  int algorithm = -1;  // -1: cuDNN offered nothing usable; use the fallback
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

using Key = std::tuple<int, int, std::array<int64_t, 16>, int, int>;  // kind, device, shape, dtype, precision

Key make_key(Kind kind, int device, const ConvShape& s, DType dtype) {
  return {static_cast<int>(kind), device,
          {s.batch, s.in_channels, s.height, s.width, s.out_channels, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w,
           s.pad_h, s.pad_w, s.dilation_h, s.dilation_w, s.groups, g_cudnn_benchmark ? 1 : 0, 0},
          static_cast<int>(dtype), static_cast<int>(matmul_precision())};
}

std::mutex g_cache_mutex;
std::map<Key, Choice>& algorithm_cache() {
  static std::map<Key, Choice> cache;
  return cache;
}

// The descriptors of one convolution (NCHW, unbatched inputs as N = 1), destroyed with it.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnDataType_t type;     // of the tensors
  cudnnDataType_t compute;  // of the convolution: bfloat16 tensors compute in float

  Descriptors(const ConvShape& s, DType dtype)
      : type(dtype == DType::f64    ? CUDNN_DATA_DOUBLE
             : dtype == DType::bf16 ? CUDNN_DATA_BFLOAT16
                                    : CUDNN_DATA_FLOAT),
        compute(dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT) {
    const auto i32 = [](int64_t v) { return static_cast<int>(v); };
    LOUPE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    LOUPE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    LOUPE_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    LOUPE_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    LOUPE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, type, i32(s.batch), i32(s.in_channels),
                                                 i32(s.height), i32(s.width)));
    LOUPE_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, type, i32(s.batch), i32(s.out_channels),
                                                 i32(s.out_h), i32(s.out_w)));
    LOUPE_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, type, CUDNN_TENSOR_NCHW, i32(s.out_channels),
                                                 i32(s.in_channels / s.groups), i32(s.kernel_h), i32(s.kernel_w)));
    LOUPE_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, i32(s.pad_h), i32(s.pad_w), i32(s.stride_h),
                                                      i32(s.stride_w), i32(s.dilation_h), i32(s.dilation_w),
                                                      CUDNN_CROSS_CORRELATION, compute));
    LOUPE_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, i32(s.groups)));
  }
  ~Descriptors() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

// float32 in "highest" precision runs with CUDNN_FMA_MATH whatever the heuristics suggest
// (CUDNN_DEFAULT_MATH would let Ampere and later GPUs use TF32 tensor cores); an algorithm that
// cannot run so answers CUDNN_STATUS_NOT_SUPPORTED and the fallback takes over.
bool strict_fp32(DType dtype) { return dtype == DType::f32 && matmul_precision() == MatmulPrecision::highest; }

template <typename Perf>
Choice first_usable(const Perf* perf, int count, DType dtype) {
  for (int i = 0; i < count; ++i) {
    if (perf[i].status == CUDNN_STATUS_SUCCESS) {
      return {static_cast<int>(perf[i].algo), strict_fp32(dtype) ? CUDNN_FMA_MATH : perf[i].mathType, perf[i].memory};
    }
  }
  return {};
}

Choice choose(Kind kind, int device, const ConvShape& s, DType dtype, const Descriptors& d) {
  const Key key = make_key(kind, device, s, dtype);
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    const auto it = algorithm_cache().find(key);
    if (it != algorithm_cache().end()) return it->second;
  }
  // In "highest" precision, ask for FMA math so the heuristics rank full-fp32 algorithms;
  // bfloat16 asks for tensor cores.
  LOUPE_CUDNN_CHECK(cudnnSetConvolutionMathType(
      d.conv, strict_fp32(dtype) ? CUDNN_FMA_MATH : dtype == DType::bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH));
  cudnnHandle_t handle = cudnn_handle(device);
  constexpr int kMax = 16;
  int count = 0;
  Choice choice;
  // Benchmark mode times every algorithm once on scratch buffers cuDNN allocates itself (the
  // Find calls); when that fails (say, out of memory beside our cache) the heuristics answer.
  const bool benchmark = g_cudnn_benchmark;
  if (kind == Kind::forward) {
    cudnnConvolutionFwdAlgoPerf_t perf[kMax];
    if (!benchmark ||
        cudnnFindConvolutionForwardAlgorithm(handle, d.x, d.w, d.conv, d.y, kMax, &count, perf) != CUDNN_STATUS_SUCCESS) {
      LOUPE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, d.x, d.w, d.conv, d.y, kMax, &count, perf));
    }
    choice = first_usable(perf, count, dtype);
  } else if (kind == Kind::backward_data) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[kMax];
    if (!benchmark || cudnnFindConvolutionBackwardDataAlgorithm(handle, d.w, d.y, d.conv, d.x, kMax, &count, perf) !=
                          CUDNN_STATUS_SUCCESS) {
      LOUPE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, d.w, d.y, d.conv, d.x, kMax, &count, perf));
    }
    choice = first_usable(perf, count, dtype);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[kMax];
    if (!benchmark || cudnnFindConvolutionBackwardFilterAlgorithm(handle, d.x, d.y, d.conv, d.w, kMax, &count, perf) !=
                          CUDNN_STATUS_SUCCESS) {
      LOUPE_CUDNN_CHECK(
          cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, d.x, d.y, d.conv, d.w, kMax, &count, perf));
    }
    choice = first_usable(perf, count, dtype);
  }
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  algorithm_cache()[key] = choice;
  return choice;
}

// Runs one convolution kind through cuDNN; false when cuDNN declines (the caller falls back).
// a, b: the two inputs of the kind (forward: x, w; backward data: w, dy; backward filter: x, dy).
bool run_cudnn(Kind kind, const ConvShape& s, const Tensor& a, const Tensor& b, const Tensor& out) {
  const int device = out.device().index;
  DeviceGuard guard(device);
  const DType dtype = out.dtype();
  const Descriptors d(s, dtype);
  const Choice choice = choose(kind, device, s, dtype, d);
  if (choice.algorithm < 0) return false;
  LOUPE_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, choice.math));
  Workspace workspace(choice.workspace, device);
  const double alpha_d = 1.0, beta_d = 0.0;
  const float alpha_f = 1.0f, beta_f = 0.0f;
  const void* alpha = dtype == DType::f64 ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* beta = dtype == DType::f64 ? static_cast<const void*>(&beta_d) : &beta_f;
  cudnnHandle_t handle = cudnn_handle(device);
  cudnnStatus_t status;
  if (kind == Kind::forward) {
    status = cudnnConvolutionForward(handle, alpha, d.x, a.raw_data(), d.w, b.raw_data(), d.conv,
                                     static_cast<cudnnConvolutionFwdAlgo_t>(choice.algorithm), workspace.data(),
                                     choice.workspace, beta, d.y, out.raw_data());
  } else if (kind == Kind::backward_data) {
    status = cudnnConvolutionBackwardData(handle, alpha, d.w, a.raw_data(), d.y, b.raw_data(), d.conv,
                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(choice.algorithm),
                                          workspace.data(), choice.workspace, beta, d.x, out.raw_data());
  } else {
    status = cudnnConvolutionBackwardFilter(handle, alpha, d.x, a.raw_data(), d.y, b.raw_data(), d.conv,
                                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(choice.algorithm),
                                            workspace.data(), choice.workspace, beta, d.w, out.raw_data());
  }
  if (status == CUDNN_STATUS_NOT_SUPPORTED) return false;
  LOUPE_CUDNN_CHECK(status);
  return true;
}

#endif  // LOUPE_WITH_CUDNN

bool cudnn_wanted() {
#ifdef LOUPE_WITH_CUDNN
  return g_use_cudnn;
#else
  return false;
#endif
}

}  // namespace

void set_use_cudnn(bool use) { g_use_cudnn = use; }
void set_cudnn_benchmark(bool benchmark) { g_cudnn_benchmark = benchmark; }
bool cudnn_benchmark() { return g_cudnn_benchmark; }
bool use_cudnn() { return cudnn_wanted(); }

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params) {
  LOUPE_CHECK(x.defined(), "conv2d: input is undefined");
  LOUPE_CHECK(is_floating(x.dtype()), "conv2d: expected a floating dtype (float32 or float64), got ", x.dtype());
  check_gpu_dtype(x.dtype(), "conv2d");
  check_tensor(weight, "weight", x, "conv2d");
  const ConvShape s = conv_shape(x.shape(), weight.shape(), params, "conv2d");
  if (bias.defined()) {
    check_tensor(bias, "bias", x, "conv2d");
    LOUPE_CHECK(bias.dim() == 1 && bias.size(0) == s.out_channels, "conv2d: bias must have shape (", s.out_channels,
                "), got ", shape_str(bias.shape()));
  }
  Tensor out = Tensor::empty(output_shape(s, x.dim() == 4), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  const Tensor xc = ops::contiguous(x), wc = ops::contiguous(weight);
#ifdef LOUPE_WITH_CUDNN
  if (cudnn_wanted() && run_cudnn(Kind::forward, s, xc, wc, out)) {
    if (bias.defined()) add_(out, ops::reshape(bias, {s.out_channels, 1, 1}), 1.0);
    return out;
  }
#endif
  conv2d_forward_fallback(s, xc, wc, bias, out);
  return out;
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dParams& params) {
  const char* op = "conv2d_backward_input";
  LOUPE_CHECK(grad_out.defined() && is_floating(grad_out.dtype()), op, ": expected a floating grad_out");
  check_gpu_dtype(grad_out.dtype(), op);
  check_tensor(weight, "weight", grad_out, op);
  const ConvShape s = conv_shape(input_shape, weight.shape(), params, op);
  const Shape expected = output_shape(s, input_shape.size() == 4);
  LOUPE_CHECK(grad_out.shape() == expected, op, ": grad_out has shape ", shape_str(grad_out.shape()),
              " but the convolution output has shape ", shape_str(expected));
  Tensor grad_x = Tensor::empty(input_shape, grad_out.dtype(), grad_out.device());
  if (grad_x.numel() == 0) return grad_x;
  const Tensor go = ops::contiguous(grad_out), wc = ops::contiguous(weight);
#ifdef LOUPE_WITH_CUDNN
  if (cudnn_wanted() && run_cudnn(Kind::backward_data, s, wc, go, grad_x)) return grad_x;
#endif
  conv2d_backward_input_fallback(s, go, wc, grad_x);
  return grad_x;
}

Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& params) {
  const char* op = "conv2d_backward_weight";
  LOUPE_CHECK(grad_out.defined() && is_floating(grad_out.dtype()), op, ": expected a floating grad_out");
  check_gpu_dtype(grad_out.dtype(), op);
  check_tensor(x, "input", grad_out, op);
  const ConvShape s = conv_shape(x.shape(), weight_shape, params, op);
  const Shape expected = output_shape(s, x.dim() == 4);
  LOUPE_CHECK(grad_out.shape() == expected, op, ": grad_out has shape ", shape_str(grad_out.shape()),
              " but the convolution output has shape ", shape_str(expected));
  Tensor grad_w = Tensor::empty(weight_shape, grad_out.dtype(), grad_out.device());
  if (grad_w.numel() == 0) return grad_w;
  const Tensor go = ops::contiguous(grad_out), xc = ops::contiguous(x);
#ifdef LOUPE_WITH_CUDNN
  if (cudnn_wanted() && s.batch > 0 && run_cudnn(Kind::backward_filter, s, xc, go, grad_w)) return grad_w;
#endif
  conv2d_backward_weight_fallback(s, go, xc, grad_w);
  return grad_w;
}

}  // namespace loupe::cuda
