// Normalisation layers (raw forward) and the backward kernels autograd/functions/norm.cpp uses.
//
//   batch_norm  x (N, C, *): one mean/variance per channel c, over N and every trailing dim.
//   layer_norm  x (..., *normalized_shape): one mean/variance per row of the trailing dims.
//   rms_norm    x (..., *normalized_shape): x / sqrt(mean(x^2) + eps) per row (no centring).
//
// The variance that normalises is always the biased (population) one. Statistics accumulate in
// float64 whatever x's dtype, and are kept as float64 tensors for backward.
// On CUDA devices batch norm also takes a bfloat16 x with float32 (or any floating) parameters and
// running statistics, as cuDNN does for mixed precision: y and dx are bfloat16, the running
// statistics update in their own dtype, and the parameter gradients are in the weight's dtype.
// The CPU rejects bfloat16 / float16 inputs.
// Tests: tests/ops/op_table_norm.cpp
#pragma once

#include <array>

#include "tensor/tensor.hpp"

namespace loupe::ops {

// PyTorch's F.batch_norm. training: normalise by the batch statistics and, when running_mean and
// running_var are defined, update them in place:
//   running_mean = (1 - momentum) * running_mean + momentum * batch_mean
//   running_var  = (1 - momentum) * running_var  + momentum * batch_var * M / (M - 1)
// (the unbiased variance, M = N * prod(*)). Inference: normalise by the running statistics.
// weight (gamma) and bias (beta) are optional (C) tensors; undefined means 1 and 0.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

// relu(batch_norm(...)) in one pass over the output (the conv -> BN -> ReLU pattern of ResNets).
Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

// relu(batch_norm(cat(parts, 1))) in inference (running statistics), in one pass: each output
// plane is read from its part directly, so the concatenation is never written (DenseNet's layers
// take the concatenation of all earlier feature maps: cat, normalise and ReLU were three passes
// over it). parts are (N, C_i, *) with the same N and *; the parameters have sum(C_i) channels.
// Same values as the three steps. On a GPU it runs them.
Tensor batch_norm_relu_of_concat(const std::vector<Tensor>& parts, const Tensor& running_mean,
                                 const Tensor& running_var, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

// weight and bias, when given, have exactly normalized_shape.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// eps < 0 means "the machine epsilon of x's dtype" (PyTorch's eps=None).
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(), double eps = -1.0);

// --- what the backward formulas need ---

// The output with the statistics it was normalised by: y = (x - mean) * rstd * weight + bias,
// rstd = 1 / sqrt(var + eps). mean and rstd are float64, one per group: (C) for batch norm
// (the running ones in inference), (rows) for layer norm. rms_norm's mean is undefined (zero).
struct NormForward {
  Tensor out;
  Tensor mean;
  Tensor rstd;
};
NormForward batch_norm_forward(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                               const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps,
                               bool fuse_relu = false);
NormForward layer_norm_forward(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                               const Tensor& bias, double eps);
NormForward rms_norm_forward(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, double eps);

// Gradients w.r.t. x, weight and bias (each in x's dtype, except that batch norm's parameter
// gradients for a bfloat16 x are in the weight's dtype, float32 without a weight); `needs` picks which are computed, the
// others stay undefined. With xhat = (x - mean) * rstd and the sums over one group of M elements:
//   batch norm, training:  dx = weight * rstd * (g - sum(g) / M - xhat * sum(g * xhat) / M)
//   batch norm, inference: dx = weight * rstd * g (the statistics are constants)
//   layer norm:            dx = rstd * (wg - sum(wg) / K - xhat * sum(wg * xhat) / K), wg = g * weight
//   rms norm:              the same without the sum(wg) / K term
//   dweight = sum(g * xhat), dbias = sum(g), over everything but the parameter's own index.
struct NormGrads {
  Tensor x;
  Tensor weight;
  Tensor bias;
};
using NormNeeds = std::array<bool, 3>;  // {x, weight, bias}
NormGrads batch_norm_backward(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                              const Tensor& weight, bool training, NormNeeds needs);
// mean undefined = rms norm.
NormGrads layer_norm_backward(const Tensor& g, const Tensor& x, const Shape& normalized_shape, const Tensor& mean,
                              const Tensor& rstd, const Tensor& weight, NormNeeds needs);

}  // namespace loupe::ops
