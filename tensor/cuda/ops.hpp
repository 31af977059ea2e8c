// The CUDA versions of the raw ops, called by the one dispatch line at the top of each public op
// in tensor/ops/*.cpp (`if (x.device().is_cuda()) return cuda::softmax(x, dim);`). Same
// semantics, dtypes and errors as the CPU op of the same name; each is defined next to its
// kernels (elementwise.cu, reduce.cu, ...). No CUDA header here: tensor/ops/*.cpp include it in
// every build (tensor/cuda/unavailable.cpp stands in when the backend is not built).
// Tests: tests/cuda/test_cuda.cpp (every op-table entry, CPU vs GPU)
#pragma once

#include <optional>
#include <vector>

#include "tensor/ops/attention.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/conv.hpp"
#include "tensor/ops/loss.hpp"
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

// --- pooling, resampling, padding (pool.cu, resample.cu, pad.cu) ---
// These take arguments already checked, geometry already resolved and outputs already allocated
// by the ops in tensor/ops/pool.cpp, resample.cpp and join.cpp (so sizes, errors and the tables
// below come from the one code path both backends share), and fill the outputs.

// One 2-d pooling: `planes` (H, W) planes, contiguous, in and out.
struct Pool2dShape {
  int64_t planes = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  bool count_include_pad = true;
};
// values / indices: the pooled shape; dx: zero-filled by the caller (max pooling scatters).
void max_pool2d(const Tensor& x, const Pool2dShape& s, const Tensor& values, const Tensor& indices);
void max_pool2d_backward(const Tensor& grad, const Tensor& indices, const Pool2dShape& s, const Tensor& dx);
// The average pools' backward gathers: dx need not be initialised.
void avg_pool2d(const Tensor& x, const Pool2dShape& s, const Tensor& out);
void avg_pool2d_backward(const Tensor& grad, const Pool2dShape& s, const Tensor& dx);
void adaptive_avg_pool2d(const Tensor& x, const Pool2dShape& s, const Tensor& out);
void adaptive_avg_pool2d_backward(const Tensor& grad, const Pool2dShape& s, const Tensor& dx);

// The source taps of one resampled axis, computed on the host by tensor/ops/resample.cpp and
// copied to the device: index (int64) holds i0[out], i1[out], then first[in], last[in] (the
// outputs [first, last) that read input position i); weight (the data's dtype) holds w0[out],
// w1[out]. Nearest uses i0 only.
struct ResampleAxis {
  int64_t in = 0, out = 0;
  Tensor index, weight;
};
// x and grad contiguous (N, C, H, W); out and dx written whole.
void interpolate(const Tensor& x, const ResampleAxis& h, const ResampleAxis& w, bool nearest, const Tensor& out);
void interpolate_backward(const Tensor& grad, const ResampleAxis& h, const ResampleAxis& w, bool nearest,
                          const Tensor& dx);

// pad over `planes` planes of the padded trailing dims (both tensors contiguous). tables (int64,
// on the device) holds, for each padded dim d: at source_at[d], the input index each output
// index reads (-1: fill); at first_at[d], in_size[d] + 1 offsets into the list at outputs_at[d]
// of the output indices that read each input index, in increasing order.
constexpr int kMaxPadDims = 16;
struct PadShape {
  int dims = 0;
  int64_t planes = 0, plane_in = 0, plane_out = 0;
  int64_t in_size[kMaxPadDims] = {}, out_size[kMaxPadDims] = {};
  int64_t source_at[kMaxPadDims] = {}, first_at[kMaxPadDims] = {}, outputs_at[kMaxPadDims] = {};
};
void pad(const Tensor& x, const Tensor& tables, const PadShape& s, double value, const Tensor& out);
// dx written whole (each input element gathers the outputs that read it).
void pad_backward(const Tensor& grad, const Tensor& tables, const PadShape& s, const Tensor& dx);
// --- indexing (index.cu): called by tensor/ops/index.cpp after every device-independent check ---
// (dims wrapped, shapes and dtypes checked, index values checked through first_out_of_range).
// The first value, in row-major order, of the contiguous int64 `index` outside [lo, hi) and not
// equal to `ignore`; nullopt when there is none. One pass on the device, one synchronisation.
std::optional<int64_t> first_out_of_range(const Tensor& index, int64_t lo, int64_t hi,
                                          std::optional<int64_t> ignore = std::nullopt);
// x and a contiguous index with x's number of dims (at least 1); out has index's shape.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// out (contiguous) += src scattered along dim by the contiguous index (atomicAdd).
void scatter_add_(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
// x at least 1-d; index contiguous, 1-d or 0-d.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out (contiguous) += alpha * src slices added at index along dim (atomicAdd).
void index_add_(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, double alpha);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// Ones into out (contiguous int64, zero, index.shape + (classes)) at the classes index names.
void one_hot_(const Tensor& out, const Tensor& index);

// --- losses (loss.cu): called by tensor/ops/loss.cpp after every check (target values included) ---
// Class-index losses on the input seen as (n, c, d); from_logits: cross_entropy, else nll_loss.
Tensor class_loss(const Tensor& input, const Tensor& target, const CrossEntropyOptions& options, int64_t n,
                  int64_t c, int64_t d, bool from_logits);
Tensor class_loss_backward(const Tensor& grad, const Tensor& input, const Tensor& target,
                           const CrossEntropyOptions& options, int64_t n, int64_t c, int64_t d, bool from_logits);
// binary_cross_entropy_with_logits, unreduced, on contiguous operands of one shape and dtype
// (pos_weight expanded, or undefined); the backward writes the defined ones of dx and dy.
Tensor bce_with_logits(const Tensor& x, const Tensor& y, const Tensor& pos_weight);
void bce_with_logits_backward(const Tensor& g, const Tensor& x, const Tensor& y, const Tensor& pos_weight,
                              const Tensor& dx, const Tensor& dy);

// --- sorting (sort.cu): called by tensor/ops/sort.cpp after its checks ---
// The first k elements of every line along dim (wrapped), ascending or descending, ties by index:
// values and int64 indices, contiguous, shaped as x with k along dim.
ops::ValuesIndices sort(const Tensor& x, int64_t dim, int64_t k, bool descending);
// dx (contiguous, zero) += g at indices along dim (indices already checked).
void sort_backward_(const Tensor& dx, const Tensor& g, const Tensor& indices, int64_t dim);

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

// --- fused attention (attention.cu) ---
// mask: undefined, or expanded to (B, H, Tq, Tk) (bool, or additive in q's dtype). out, lse, dq, dk,
// dv: contiguous, written whole. Return false (doing nothing) for calls the kernels do not handle
// (head dims above 128, dtypes other than float32 / float64): the caller takes the reference path.
bool attention_forward(const ops::AttentionShape& s, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& mask, const Tensor& out, const Tensor& lse);
bool attention_backward(const ops::AttentionShape& s, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& g, const Tensor& out, const Tensor& lse, const Tensor& mask, const Tensor& dq,
                        const Tensor& dk, const Tensor& dv);

}  // namespace loupe::cuda
