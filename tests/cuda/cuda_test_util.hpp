// What every GPU test file shares: whether a GPU is here (cases skip with
// `* doctest::skip(kNoGpu)` when not), the device they run on, and moves either way that leave
// an undefined tensor (no gradient) undefined.
#pragma once

#include "tensor/cuda/backend.hpp"
#include "tensor/ops/device.hpp"

namespace loupe::test {

inline const bool kNoGpu = !cuda::is_available();
inline const Device kGpu = Device::cuda(0);

inline Tensor cpu(const Tensor& t) { return t.defined() ? ops::to_device(t, Device::cpu()) : t; }
inline Tensor gpu(const Tensor& t) { return t.defined() ? ops::to_device(t, kGpu) : t; }

}  // namespace loupe::test
