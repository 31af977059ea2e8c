// DeepLIFT's fused rescale rules. See deeplift_rules.hpp.
#include "tensor/cpu/deeplift_rules.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/parallel.hpp"

namespace loupe::cpu::deeplift {

namespace {

// The eight-lane (AVX2) body shared by the fused rules for float32: where |dx| < eps the fallback,
// else numerator / dx, dividing by 1 in the fallback lanes as the composed rule does (so no lane
// forms inf or NaN it does not need). IEEE sub, mul and div round the same in a lane as in a
// scalar, so the vector loops give the scalar loops' bits. (The compiler does not vectorise the
// scalar loops itself: it will not turn their selects around a division into blends.)
inline __m256 rescale_or_fallback(__m256 numerator, __m256 dx, __m256 fallback, __m256 small) {
  return _mm256_blendv_ps(_mm256_div_ps(numerator, _mm256_blendv_ps(dx, _mm256_set1_ps(1.0f), small)), fallback, small);
}
inline __m256 is_small(__m256 dx, float eps) {
  return _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), dx), _mm256_set1_ps(eps), _CMP_LT_OQ);  // NaN: false
}

// relu_rescale's loop for float32, eight elements at a time from begin; returns where it stopped.
int64_t relu_rescale_avx2(const float* x, const float* y, const float* g, int64_t half, float eps, float* out,
                          int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const int64_t j = i + half;
    const __m256 xi = _mm256_loadu_ps(x + i), xj = _mm256_loadu_ps(x + j);
    const __m256 gi = _mm256_loadu_ps(g + i), gj = _mm256_loadu_ps(g + j);
    const __m256 dx = _mm256_sub_ps(xi, xj), dy = _mm256_sub_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(y + j));
    const __m256 small = is_small(dx, eps);
    // g 1[x > 0]: g where x > 0, else +0.
    const __m256 ordinary_i = _mm256_and_ps(gi, _mm256_cmp_ps(xi, _mm256_setzero_ps(), _CMP_GT_OQ));
    const __m256 ordinary_j = _mm256_and_ps(gj, _mm256_cmp_ps(xj, _mm256_setzero_ps(), _CMP_GT_OQ));
    _mm256_storeu_ps(out + i, rescale_or_fallback(_mm256_mul_ps(gi, dy), dx, ordinary_i, small));
    _mm256_storeu_ps(out + j, rescale_or_fallback(_mm256_mul_ps(gj, dy), dx, ordinary_j, small));
  }
  return i;
}

}  // namespace

template <typename T>
void relu_rescale(const T* x, const T* y, const T* g, int64_t half, T eps, T* out) {
  fast::for_chunks(half, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    if constexpr (std::is_same_v<T, float>) i = relu_rescale_avx2(x, y, g, half, eps, out, begin, end);
    for (; i < end; ++i) {
      const int64_t j = i + half;
      const T dx = x[i] - x[j], dy = y[i] - y[j];
      const bool small = std::abs(dx) < eps;
      out[i] = small ? (x[i] > 0 ? g[i] : T(0)) : (g[i] * dy) / dx;
      out[j] = small ? (x[j] > 0 ? g[j] : T(0)) : (g[j] * dy) / dx;
    }
  });
}

namespace {

// v rounded to T where it stands. The composed rule rounds each product in its own mul pass; in
// one loop the compiler may contract `acc += a * b` into an FMA (GCC does at -O2), which rounds
// once and breaks the equality. An empty asm with v in a vector register hides the product from
// that rewrite (x86-64, as all of loupe's CPU code).
template <typename T>
inline T rounded(T v) {
  asm("" : "+x"(v));
  return v;
}

}  // namespace

template <typename T>
void max_pool_rescale(const T* x, const T* y, const int64_t* indices, const T* g, int64_t half_planes,
                      int64_t in_plane, int64_t out_plane, T eps, T* out) {
  parallel_for(0, half_planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, in_plane)), [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(static_cast<size_t>(4 * in_plane));
    T* routed_in = scratch.data();
    T* routed_ref = routed_in + in_plane;
    T* ordinary_in = routed_ref + in_plane;
    T* ordinary_ref = ordinary_in + in_plane;
    for (int64_t plane = begin; plane < end; ++plane) {
      std::fill(scratch.begin(), scratch.end(), T(0));
      const int64_t o_in = plane * out_plane, o_ref = (plane + half_planes) * out_plane;
      for (int64_t o = 0; o < out_plane; ++o) {
        const T y_in = y[o_in + o], y_ref = y[o_ref + o];
        const T m = (y_in != y_in) ? y_in : ((y_ref != y_ref) ? y_ref : (y_in > y_ref ? y_in : y_ref));  // ops::maximum
        // A window with no tap inside the input holds an index outside the plane: no gradient.
        if (const int64_t at = indices[o_in + o]; at >= 0 && at < in_plane) {
          routed_in[at] += rounded(g[o_in + o] * (m - y_ref));
          ordinary_in[at] += g[o_in + o];
        }
        if (const int64_t at = indices[o_ref + o]; at >= 0 && at < in_plane) {
          routed_ref[at] += rounded(g[o_ref + o] * (y_in - m));
          ordinary_ref[at] += g[o_ref + o];
        }
      }
      const int64_t i_in = plane * in_plane, i_ref = (plane + half_planes) * in_plane;
      int64_t i = 0;
      if constexpr (std::is_same_v<T, float>) {
        for (; i + 8 <= in_plane; i += 8) {
          const __m256 dx = _mm256_sub_ps(_mm256_loadu_ps(x + i_in + i), _mm256_loadu_ps(x + i_ref + i));
          const __m256 numerator = _mm256_add_ps(_mm256_loadu_ps(routed_in + i), _mm256_loadu_ps(routed_ref + i));
          const __m256 small = is_small(dx, eps);
          _mm256_storeu_ps(out + i_in + i, rescale_or_fallback(numerator, dx, _mm256_loadu_ps(ordinary_in + i), small));
          _mm256_storeu_ps(out + i_ref + i, rescale_or_fallback(numerator, dx, _mm256_loadu_ps(ordinary_ref + i), small));
        }
      }
      for (; i < in_plane; ++i) {
        const T dx = x[i_in + i] - x[i_ref + i];
        const T numerator = routed_in[i] + routed_ref[i];
        const bool small = std::abs(dx) < eps;
        out[i_in + i] = small ? ordinary_in[i] : numerator / dx;
        out[i_ref + i] = small ? ordinary_ref[i] : numerator / dx;
      }
    }
  });
}

template void relu_rescale<float>(const float*, const float*, const float*, int64_t, float, float*);
template void relu_rescale<double>(const double*, const double*, const double*, int64_t, double, double*);
template void max_pool_rescale<float>(const float*, const float*, const int64_t*, const float*, int64_t, int64_t,
                                      int64_t, float, float*);
template void max_pool_rescale<double>(const double*, const double*, const int64_t*, const double*, int64_t, int64_t,
                                       int64_t, double, double*);

}  // namespace loupe::cpu::deeplift
