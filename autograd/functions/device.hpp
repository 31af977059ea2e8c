// Differentiable device moves: to_device(x, device) copies x to another device, and its backward
// copies the gradient back to x's device. Forward: tensor/ops/device.hpp.
// Tests: tests/cuda/test_cuda.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe {

Tensor to_device(const Tensor& x, Device device);

}  // namespace loupe
