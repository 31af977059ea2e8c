// Synchronised batch norm: batch norm in training whose statistics are those of the global batch,
// i.e. of every rank's shard together, so that N ranks with shards of a batch compute what one
// process computes on the whole batch (PyTorch's SyncBatchNorm).
//
// Forward: each rank sums x and x^2 per channel over its (N_r, H, W) in float64 and counts its
// values; one all-reduce of (sum, sum of squares, count) gives the global mean and biased variance
// var = E[x^2] - mean^2; y = (x - mean) / sqrt(var + eps) * weight + bias. The running statistics
// are updated with the global mean and the unbiased variance (var * n / (n - 1)), like batch_norm.
// Backward: with xhat = (x - mean) / sqrt(var + eps) and g = dL/dy,
//   dL/dweight = sum(g * xhat), dL/dbias = sum(g)             over this rank's values (the
//                                                               gradient reducer sums the ranks)
//   dL/dx = weight / sqrt(var + eps) * (g - S_g / n - xhat * S_gx / n)
// where S_g = sum(g), S_gx = sum(g * xhat) over all ranks: a second all-reduce, in backward. The
// rank's loss is its share of the global loss (nn/training.cpp), so these sums are those of the
// global batch and dL/dx is the exact gradient of the global loss.
// x (N, C, H, W) or (N, C); weight, bias, running_mean, running_var (C) or undefined.
// Tests: tests/distributed/test_sync_batch_norm.cpp (gradcheck on one rank; 2 thread ranks vs
// batch_norm of the whole batch)
#pragma once

#include "distributed/communicator.hpp"

namespace loupe::distributed {

// The communicator must outlive the graph (backward calls it).
Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps, Communicator& comm);

}  // namespace loupe::distributed
