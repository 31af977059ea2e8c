// The CUDA versions of the raw ops, called by the one dispatch line at the top of each public op
// in tensor/ops/*.cpp (`if (x.device().is_cuda()) return cuda::softmax(x, dim);`). Same
// semantics, dtypes and errors as the CPU op of the same name; each is defined next to its
// kernels (elementwise.cu, reduce.cu, ...). No CUDA header here: tensor/ops/*.cpp include it in
// every build (tensor/cuda/unavailable.cpp stands in when the backend is not built).
// Tests: tests/cuda/test_cuda.cpp (every op-table entry, CPU vs GPU)
#pragma once

#include <vector>

#include "tensor/ops/binary.hpp"
#include "tensor/ops/conv.hpp"
#include "tensor/ops/norm.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/unary.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace loupe::cuda {

// --- copies (transfer.cpp, elementwise.cu) ---
// dst = src converted and broadcast; either may be on the CPU or any CUDA device.
void copy_(const Tensor& dst, const Tensor& src);
void fill_(const Tensor& dst, double value);
// A contiguous copy of x on `device` (x itself when it is already there).
Tensor to_device(const Tensor& x, Device device);

// --- elementwise (elementwise.cu) ---
Tensor unary(ops::UnaryOp op, const Tensor& x, ops::UnaryParams params);
Tensor unary_backward(ops::UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g, ops::UnaryParams params);
Tensor binary(ops::BinaryOp op, const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
void add_(const Tensor& a, const Tensor& b, double alpha);

// --- reductions (reduce.cu, composite.cpp) ---
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
ops::ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim);
ops::ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim);
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim, bool take_sqrt);
Tensor norm(const Tensor& x, double p, const std::vector<int64_t>& dims, bool keepdim);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor all(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor any(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor cumsum(const Tensor& x, int64_t dim, bool reverse);

// --- softmax (softmax.cu) ---
Tensor softmax(const Tensor& x, int64_t dim, bool log);
Tensor softmax_backward(const Tensor& y, const Tensor& g, int64_t dim, bool log);

// --- matrix products (blas.cpp) ---
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// --- convolution (conv.cpp: cuDNN, falling back to conv_fallback.cu) ---
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params);
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dParams& params);
Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dParams& params);

// --- random numbers (random.cu): the CPU's Philox word layout, so the same numbers ---
Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator& generator, Device device);
Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator& generator, Device device);
Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator& generator, Device device);
Tensor bernoulli(const Tensor& p, Generator& generator);


// --- normalisation (norm.cu) ---
// Arguments checked by tensor/ops/norm.cpp first; mean and rstd are float64 device tensors.
// batch_norm updates running_mean / running_var in place (on their device) when training.
ops::NormForward batch_norm_forward(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                    const Tensor& weight, const Tensor& bias, bool training, double momentum,
                                    double eps, bool fuse_relu);
ops::NormGrads batch_norm_backward(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& weight, bool training, ops::NormNeeds needs);
// layer_norm (center) and rms_norm over rows of k elements; eps already resolved (> 0).
ops::NormForward row_norm_forward(const Tensor& x, int64_t rows, int64_t k, const Tensor& weight,
                                  const Tensor& bias, double eps, bool center);
// mean undefined = rms_norm.
ops::NormGrads row_norm_backward(const Tensor& g, const Tensor& x, const Shape& normalized_shape, int64_t rows,
                                 int64_t k, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                 ops::NormNeeds needs);

// --- optimiser updates (optim.cu): nn/optim/optimizer.cpp's formulas, in place ---
// One launch per (device, dtype) group over a device-side table of the parameters' chunks.
// params, grads and buffers line up; all contiguous, on CUDA devices, each grad and buffer
// on its parameter's device with its dtype. momentum_buffers[i] is undefined when momentum == 0;
// first[i]: the buffer is filled with the update itself (PyTorch's first step).
void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
              const std::vector<Tensor>& momentum_buffers, const std::vector<bool>& first, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov);
// step: the step count after this step (>= 1); decoupled = AdamW.
void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
               const std::vector<Tensor>& exp_avg_sq, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled, int64_t step);

}  // namespace loupe::cuda
