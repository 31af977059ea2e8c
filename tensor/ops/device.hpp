// Moving tensors between devices (cpu, cuda:N), creating tensors directly on a device, and the
// check that an op's tensors share one device (every op dispatches to its CUDA kernels after its
// device-independent checks, so a CPU kernel never sees device memory).
// Raw forward only; the differentiable to_device is in autograd/functions/device.hpp.
// Tests: tests/cuda/test_cuda.cpp (the CPU side runs without a GPU too)
#pragma once

#include <vector>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace loupe::ops {

// A contiguous copy of x on `device` (same shape and dtype); x itself when it is already there.
Tensor to_device(const Tensor& x, Device device);

// Raises "<op>: expected every tensor on one device, got cpu and cuda:0" unless all defined
// tensors share a device.
void check_same_device(const char* op, const std::vector<Tensor>& tensors);

}  // namespace loupe::ops

namespace loupe {

// Creation on a given device (the overloads without a device create on the CPU).
Tensor full(const Shape& shape, double value, DType dtype, Device device);
Tensor zeros(const Shape& shape, DType dtype, Device device);
Tensor ones(const Shape& shape, DType dtype, Device device);

// Random tensors created on `device`: the same numbers, for the same generator state, as the CPU
// versions in tensor/ops/random_ops.hpp (the CUDA kernels follow the same Philox word layout).
Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* generator, Device device);
Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator* generator, Device device);
Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator* generator, Device device);

}  // namespace loupe
