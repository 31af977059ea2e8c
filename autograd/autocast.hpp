// Mixed precision: a scope in which the differentiable matmul, linear and conv2d run in bfloat16
// on CUDA tensors while parameters stay float32, like torch.autocast("cuda", dtype=torch.bfloat16).
//
//   {
//     AutocastGuard autocast;                  // bf16, enabled; thread-local, nestable
//     Tensor loss = mse_loss(model(x), target);  // convs and linears in bf16, the loss in fp32
//     loss.backward();                           // parameters receive float32 gradients
//   }
//
// Policy (PyTorch's lists, reduced to loupe's ops), applied only to tensors on a CUDA device:
//   - lower precision: matmul, linear, conv2d cast their float32 inputs to bfloat16 through the
//     differentiable to_dtype and compute in bf16 (tensor cores, fp32 accumulation); output bf16.
//     The cast's backward turns the bf16 gradient back into float32, so the float32 parameters
//     are the master weights: the optimiser updates them in full precision.
//   - float32: ops that need fp32 range or precision (layer/rms norm, softmax, log_softmax,
//     the losses, sum/mean, logsumexp, norm, cumsum, exp, log, log1p, rsqrt, reciprocal, softplus,
//     pow) cast bfloat16 inputs to float32 first (autocast_to_float) and output float32.
//   - everything else (relu, add, mul, pooling, views, ...) runs in the dtype it is given;
//     bf16 with float32 promotes to float32. batch_norm (and batch_norm_relu) is one of these, as
//     in PyTorch: a bf16 input with float32 weight, bias and running statistics gives a bf16
//     output (statistics in float64, running statistics updated in float32) and float32
//     weight/bias gradients, so a ResNet's activations stay bf16 from conv to the loss.
// float64 tensors and CPU tensors are never cast.
// Tests: tests/autograd/test_autocast.cpp (scope), tests/cuda/test_cuda_amp.cpp (GPU)
#pragma once

#include "tensor/tensor.hpp"

namespace loupe {

class AutocastGuard {
 public:
  // dtype: the lower precision type; only bfloat16 has GPU kernels. enabled = false switches
  // autocast off inside an enclosing scope (e.g. for a part of the model that needs fp32).
  explicit AutocastGuard(DType dtype = DType::bf16, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool previous_enabled_;
  DType previous_dtype_;
};

namespace autocast {
bool is_enabled();  // this thread is inside an enabled AutocastGuard
DType dtype();      // the lower precision type of the innermost guard
}  // namespace autocast

// For the lower-precision ops: x cast (differentiably) to the autocast dtype when autocast is on,
// x is a float32 tensor on a CUDA device; otherwise x itself.
Tensor autocast_to_lower(const Tensor& x);

// For the float32 ops: x cast (differentiably) to float32 when autocast is on and x is a
// bfloat16/float16 tensor on a CUDA device; otherwise x itself.
Tensor autocast_to_float(const Tensor& x);

}  // namespace loupe
