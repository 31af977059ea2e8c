// Philox random numbers on the GPU: the same counter layout and conversions as the CPU
// (tensor/ops/random_ops.cpp documents them), so for the same generator state a tensor drawn on
// cuda:N holds the CPU's numbers. Uniform and Bernoulli values are bit-identical (integer
// arithmetic and exact scalings); normal values go through log, sqrt and cos in double, where
// CUDA's and the host library's results may differ in the last bit.
//
// One thread per Philox block: a block's four words serve 4 / k consecutive elements (k words per
// element, k = 1, 2 or 4), so each block is computed once.
// Tests: tests/cuda/test_cuda.cpp (equality with the CPU)
#include <cmath>
#include <numbers>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/reduce.hpp"

namespace loupe::cuda {

namespace {

struct Words {
  uint32_t w[4];
};

// Philox4x32-10, exactly as tensor/random.cpp computes it.
__device__ Words philox(uint64_t key, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return {{c0, c1, c2, c3}};
}

__device__ double unit24(uint32_t w) { return static_cast<double>(w >> 8) * 0x1.0p-24; }
__device__ double unit53(uint32_t hi, uint32_t lo) {
  const uint64_t x = (static_cast<uint64_t>(hi) << 32) | lo;
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

// A uniform in [0, 1) at T's precision from the element's words (1 word for float, 2 for double).
template <typename T>
__device__ double unit_uniform(const uint32_t* w) {
  if constexpr (std::is_same_v<T, float>) {
    return unit24(w[0]);
  } else {
    return unit53(w[0], w[1]);
  }
}

template <typename T>
constexpr int uniform_words() {
  return std::is_same_v<T, float> ? 1 : 2;
}

template <typename T>
struct Uniform {
  double low, high;
  __device__ T operator()(const uint32_t* w, int64_t) const {
    T v = static_cast<T>(low + (high - low) * unit_uniform<T>(w));
    // Rounding to T can land on `high`; the interval is half-open.
    if (v >= static_cast<T>(high) && low < high) v = std::nextafter(static_cast<T>(high), static_cast<T>(low));
    return v;
  }
};

template <typename T>
struct Normal {
  double mean, std;
  __device__ T operator()(const uint32_t* w, int64_t) const {
    const double u1 = 1.0 - unit_uniform<T>(w);  // in (0, 1]: log is finite
    const double u2 = unit_uniform<T>(w + uniform_words<T>());
    const double z = sqrt(-2.0 * log(u1)) * cos(2.0 * std::numbers::pi * u2);
    return static_cast<T>(mean + std * z);
  }
};

template <typename T>
struct BernoulliScalar {
  double p;
  __device__ T operator()(const uint32_t* w, int64_t) const {
    return static_cast<T>(static_cast<double>(w[0]) * 0x1.0p-32 < p ? 1 : 0);
  }
};

template <typename T>
struct BernoulliTensor {
  const T* p;
  __device__ T operator()(const uint32_t* w, int64_t i) const {
    return static_cast<T>(static_cast<double>(w[0]) * 0x1.0p-32 < static_cast<double>(p[i]) ? 1 : 0);
  }
};

template <typename T, typename F>
__global__ void philox_fill(T* out, int64_t n, int k, uint64_t seed, uint64_t first, F f) {
  const int per_block = 4 / k;
  const int64_t blocks = (n * k + 3) / 4;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += stride) {
    const Words words = philox(seed, first + static_cast<uint64_t>(b));
    for (int j = 0; j < per_block; ++j) {
      const int64_t i = b * per_block + j;
      if (i < n) out[i] = f(words.w + j * k, i);
    }
  }
}

void check_shape(const Shape& shape, const char* op) {
  for (int64_t size : shape) LOUPE_CHECK(size >= 0, op, ": negative size in shape ", shape_str(shape));
}

// A new contiguous tensor on `device` with out[i] = f(words of element i), k words per element;
// reserves the same counter blocks as the CPU's fill_random.
template <typename T, typename F>
Tensor fill_random(const Shape& shape, DType dtype, int k, Generator& generator, Device device, F f) {
  check_device(device, "random");
  Tensor out = Tensor::empty(shape, dtype, device);
  const int64_t n = out.numel();
  const uint64_t blocks = (static_cast<uint64_t>(n) * static_cast<uint64_t>(k) + 3) / 4;
  const uint64_t seed = generator.seed();
  const uint64_t first = generator.reserve(blocks);
  if (n == 0) return out;
  DeviceGuard guard(device.index);
  philox_fill<T, F><<<blocks_for(static_cast<int64_t>(blocks)), kThreads, 0, stream(device.index)>>>(
      device_data<T>(out), n, k, seed, first, f);
  LOUPE_CUDA_CHECK_LAUNCH();
  return out;
}

}  // namespace

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator& generator, Device device) {
  check_shape(shape, "uniform");
  LOUPE_CHECK(std::isfinite(low) && std::isfinite(high) && std::isfinite(high - low),
              "uniform: bounds must be finite, got low=", low, ", high=", high);
  LOUPE_CHECK(low <= high, "uniform: expected low <= high, got low=", low, ", high=", high);
  return dispatch_floating(dtype, "uniform", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return fill_random<T>(shape, dtype, uniform_words<T>(), generator, device, Uniform<T>{low, high});
  });
}

Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator& generator, Device device) {
  check_shape(shape, "normal");
  LOUPE_CHECK(std::isfinite(mean) && std::isfinite(std), "normal: mean and std must be finite, got mean=", mean,
              ", std=", std);
  LOUPE_CHECK(std >= 0, "normal: expected std >= 0, got std=", std);
  return dispatch_floating(dtype, "normal", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return fill_random<T>(shape, dtype, 2 * uniform_words<T>(), generator, device, Normal<T>{mean, std});
  });
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator& generator, Device device) {
  check_shape(shape, "bernoulli");
  LOUPE_CHECK(p >= 0.0 && p <= 1.0, "bernoulli: expected 0 <= p <= 1, got p=", p);
  return dispatch_all(dtype, "bernoulli", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return fill_random<T>(shape, dtype, 1, generator, device, BernoulliScalar<T>{p});
  });
}

Tensor bernoulli(const Tensor& p_in, Generator& generator) {
  const Tensor p = ops::contiguous(p_in);
  return dispatch_floating(p.dtype(), "bernoulli", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // Every p must lie in [0, 1] (NaN fails too): one reduction on the GPU, one number back.
    const Tensor inside = ops::logical_and(ops::ge(p, ops::scalar_like(0.0, p)), ops::le(p, ops::scalar_like(1.0, p)));
    LOUPE_CHECK(ops::to_device(ops::all(inside, {}, false), Device::cpu()).item() != 0.0,
                "bernoulli: expected every p in [0, 1] in a tensor of shape ", shape_str(p.shape()));
    return fill_random<T>(p.shape(), p.dtype(), 1, generator, p.device(), BernoulliTensor<T>{device_data<const T>(p)});
  });
}

}  // namespace loupe::cuda
