// Random tensors from Philox. See random_ops.hpp.
//
// Every op sees one call's random numbers as a stream of 32-bit words: word w is word (w % 4) of
// the Philox block for counter (first + w / 4), where `first` is what the call reserved from the
// generator. Element i of an op that needs k words per element reads words [i*k, (i+1)*k), so
// element i's value depends only on (seed, first, i) and never on the thread count. Words per
// element and how they become numbers:
//
//   op                    k        conversion
//   uniform f32           1        u = (w >> 8) / 2^24                      (24 bits, [0, 1))
//   uniform f64           2        u = ((w0 << 32 | w1) >> 11) / 2^53       (53 bits, [0, 1))
//   normal f32 / f64      2 / 4    Box-Muller on two uniforms of the above kind:
//                                  z = sqrt(-2 ln(1 - u1)) * cos(2 pi u2)   (only the cosine
//                                  branch is used, so each element is independent of the others;
//                                  float32 runs it in float32 vector arithmetic, few-ulp ln and
//                                  cos, unless the reference kernels are forced)
//   bernoulli             1        1 if w / 2^32 < p else 0  (32 bits whatever the dtype, so the
//                                  same seed gives the same mask in f32 and f64)
//   randint               2        low + (w0 << 32 | w1) mod (high - low)   (bias < range / 2^64)
//   permutation           2        sort 0..n-1 by the 64-bit key (w0 << 32 | w1) of each index,
//                                  ties (probability ~ n^2 / 2^65) broken by the index
//
// A call reserves ceil(n * k / 4) blocks, so consecutive calls never share a counter.
// Tests: tests/tensor/test_random.cpp
#include "tensor/ops/random_ops.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/parallel.hpp"
#include "tensor/cuda/ops.hpp"

namespace loupe {

namespace {

// Elements per parallel chunk. Each element costs a fraction of a Philox block (~40 multiplies).
constexpr int64_t kRandomGrain = 16384;

// Reads one call's word stream, computing each Philox block once as consecutive words are read.
class WordStream {
 public:
  WordStream(uint64_t seed, uint64_t first) : seed_(seed), first_(first) {}

  uint32_t word(uint64_t w) {
    const uint64_t block = w / 4;
    if (!valid_ || block != block_) {
      words_ = philox4x32(seed_, first_ + block);
      block_ = block;
      valid_ = true;
    }
    return words_[w % 4];
  }
  uint64_t word64(uint64_t w) { return (static_cast<uint64_t>(word(w)) << 32) | word(w + 1); }

 private:
  uint64_t seed_;
  uint64_t first_;
  uint64_t block_ = 0;
  bool valid_ = false;
  std::array<uint32_t, 4> words_{};
};

// [0, 1) from the top 24 bits of one word (every value exactly representable as a float).
double unit24(uint32_t w) { return static_cast<double>(w >> 8) * 0x1.0p-24; }
// [0, 1) from the top 53 bits of a 64-bit value (every value exactly representable as a double).
double unit53(uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }

// A uniform in [0, 1) for element i of a stream with k words per element, at T's precision.
template <typename T>
double unit_uniform(WordStream& s, uint64_t w) {
  if constexpr (std::is_same_v<T, float>) {
    return unit24(s.word(w));
  } else {
    return unit53(s.word64(w));
  }
}

template <typename T>
constexpr uint64_t uniform_words() {
  return std::is_same_v<T, float> ? 1 : 2;
}

Generator& resolve(Generator* generator) { return generator ? *generator : default_generator(); }

void check_shape(const Shape& shape, const char* op) {
  for (int64_t size : shape) {
    LOUPE_CHECK(size >= 0, op, ": negative size in shape ", shape_str(shape));
  }
}

// Fills a new contiguous tensor: out[i] = value(stream, i), with `words` words per element.
template <typename T, typename F>
Tensor fill_random(const Shape& shape, DType dtype, uint64_t words, Generator& generator, F value) {
  Tensor out = Tensor::empty(shape, dtype);
  const int64_t n = out.numel();
  const uint64_t blocks = (static_cast<uint64_t>(n) * words + 3) / 4;
  const uint64_t seed = generator.seed();
  const uint64_t first = generator.reserve(blocks);
  T* o = out.data<T>();
  parallel_for(0, n, kRandomGrain, [&](int64_t begin, int64_t end) {
    WordStream stream(seed, first);
    for (int64_t i = begin; i < end; ++i) o[i] = value(stream, static_cast<uint64_t>(i) * words, i);
  });
  return out;
}

// normal() in float32 with the fast kernels: the same words and uniforms as the float64 formula
// below (u1 = 1 - unit24(w0), u2 = unit24(w1)), turned into normals by the vectorised
// cpu::fast::box_muller (float32 ln and cos of about 1 ulp, several times faster than the C
// library's float64 ones; the values differ from that formula by a few float32 ulp). The
// uniforms go through a small buffer, 256 elements at a time.
Tensor normal_f32_fast(const Shape& shape, double mean, double std, Generator& generator) {
  Tensor out = Tensor::empty(shape, DType::f32);
  const int64_t n = out.numel();
  const uint64_t seed = generator.seed();
  const uint64_t first = generator.reserve((static_cast<uint64_t>(n) * 2 + 3) / 4);
  float* o = out.data<float>();
  parallel_for(0, n, kRandomGrain, [&](int64_t begin, int64_t end) {
    WordStream stream(seed, first);
    constexpr int64_t kBuffer = 256;
    alignas(64) float u1[kBuffer], u2[kBuffer];
    for (int64_t i0 = begin; i0 < end; i0 += kBuffer) {
      const int64_t count = std::min(kBuffer, end - i0);
      for (int64_t j = 0; j < count; ++j) {
        const uint64_t w = static_cast<uint64_t>(i0 + j) * 2;
        u1[j] = static_cast<float>(1.0 - unit24(stream.word(w)));  // exact: 24-bit fractions
        u2[j] = static_cast<float>(unit24(stream.word(w + 1)));
      }
      cpu::fast::box_muller(u1, u2, count, static_cast<float>(mean), static_cast<float>(std), o + i0);
    }
  });
  return out;
}

}  // namespace

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* generator) {
  check_shape(shape, "uniform");
  LOUPE_CHECK(std::isfinite(low) && std::isfinite(high) && std::isfinite(high - low),
              "uniform: bounds must be finite, got low=", low, ", high=", high);
  LOUPE_CHECK(low <= high, "uniform: expected low <= high, got low=", low, ", high=", high);
  return dispatch_floating(dtype, "uniform", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return fill_random<T>(shape, dtype, uniform_words<T>(), resolve(generator),
                          [=](WordStream& s, uint64_t w, int64_t) {
                            T v = static_cast<T>(low + (high - low) * unit_uniform<T>(s, w));
                            // Rounding to T can land on `high`; the interval is half-open.
                            if (v >= static_cast<T>(high) && low < high) v = std::nextafter(static_cast<T>(high), static_cast<T>(low));
                            return v;
                          });
  });
}

Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator* generator) {
  check_shape(shape, "normal");
  LOUPE_CHECK(std::isfinite(mean) && std::isfinite(std), "normal: mean and std must be finite, got mean=",
              mean, ", std=", std);
  LOUPE_CHECK(std >= 0, "normal: expected std >= 0, got std=", std);
  return dispatch_floating(dtype, "normal", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float>) {
      if (cpu::fast::enabled()) return normal_f32_fast(shape, mean, std, resolve(generator));
    }
    constexpr uint64_t k = uniform_words<T>();
    return fill_random<T>(shape, dtype, 2 * k, resolve(generator), [=](WordStream& s, uint64_t w, int64_t) {
      const double u1 = 1.0 - unit_uniform<T>(s, w);  // in (0, 1]: log is finite
      const double u2 = unit_uniform<T>(s, w + k);
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
      return static_cast<T>(mean + std * z);
    });
  });
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator* generator) {
  check_shape(shape, "bernoulli");
  LOUPE_CHECK(p >= 0.0 && p <= 1.0, "bernoulli: expected 0 <= p <= 1, got p=", p);
  return dispatch_all(dtype, "bernoulli", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return fill_random<T>(shape, dtype, 1, resolve(generator), [=](WordStream& s, uint64_t w, int64_t) {
      return static_cast<T>(static_cast<double>(s.word(w)) * 0x1.0p-32 < p ? 1 : 0);
    });
  });
}

Tensor bernoulli(const Tensor& p, Generator* generator) {
  if (p.device().is_cuda()) return cuda::bernoulli(p, resolve(generator));
  LOUPE_CHECK(p.device().is_cpu(), "bernoulli: p is on ", p.device().str(), "; only CPU tensors are supported");
  return dispatch_floating(p.dtype(), "bernoulli", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const Tensor pc = ops::contiguous(p);
    const T* pp = pc.data<T>();
    for (int64_t i = 0; i < pc.numel(); ++i) {
      LOUPE_CHECK(pp[i] >= T(0) && pp[i] <= T(1), "bernoulli: expected every p in [0, 1], got ", pp[i],
                  " at flat index ", i, " of a tensor of shape ", shape_str(p.shape()));
    }
    return fill_random<T>(p.shape(), p.dtype(), 1, resolve(generator), [=](WordStream& s, uint64_t w, int64_t i) {
      return static_cast<T>(static_cast<double>(s.word(w)) * 0x1.0p-32 < static_cast<double>(pp[i]) ? 1 : 0);
    });
  });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* generator) {
  check_shape(shape, "randint");
  LOUPE_CHECK(low < high, "randint: expected low < high, got low=", low, ", high=", high);
  // high - low computed in unsigned arithmetic: it may not fit an int64 (e.g. low = INT64_MIN).
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  return fill_random<int64_t>(shape, DType::i64, 2, resolve(generator), [=](WordStream& s, uint64_t w, int64_t) {
    return static_cast<int64_t>(static_cast<uint64_t>(low) + s.word64(w) % range);
  });
}

Tensor permutation(int64_t n, Generator* generator) {
  LOUPE_CHECK(n >= 0, "permutation: expected n >= 0, got ", n);
  const Tensor keys = fill_random<int64_t>({n}, DType::i64, 2, resolve(generator),
                                           [](WordStream& s, uint64_t w, int64_t) {
                                             return static_cast<int64_t>(s.word64(w));
                                           });
  const int64_t* k = keys.data<int64_t>();
  std::vector<std::pair<uint64_t, int64_t>> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = {static_cast<uint64_t>(k[i]), i};
  std::sort(order.begin(), order.end());
  Tensor out = Tensor::empty({n}, DType::i64);
  int64_t* o = out.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) o[i] = order[static_cast<size_t>(i)].second;
  return out;
}

}  // namespace loupe
