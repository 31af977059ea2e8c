// copy_short: copies a few dozen elements with inline AVX2 moves.
//
// The GEMM's packing loops and the convolution's fused im2col packing copy one sliver row (16-64
// elements) at a time. std::copy (or a plain loop, which g++ turns back into a library call)
// makes each of those a call to memmove, whose call and size dispatch cost more than the copy
// itself (15 % of a convolution's forward pass was spent there), so this copies 32 bytes per
// AVX2 move inline. The library is built for x86-64-v3, so AVX2 is always there.
// Used by: tensor/cpu/gemm.cpp, tensor/cpu/fast_conv.cpp
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace loupe::cpu {

template <typename T>
inline void copy_short(const T* src, int64_t count, T* dst) {
  constexpr int64_t kPerMove = 32 / sizeof(T);
  int64_t j = 0;
  for (; j + kPerMove <= count; j += kPerMove) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + j)));
  }
  for (; j < count; ++j) dst[j] = src[j];
}

}  // namespace loupe::cpu
