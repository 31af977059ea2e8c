// AVX-512 float32 kernels. See fast_elementwise_avx512.hpp; the formulas are explained next to
// their AVX2 twins in fast_elementwise.cpp.
#include "tensor/cpu/fast_elementwise_avx512.hpp"

#include "tensor/cpu/erfc_polynomial.hpp"

// GCC 12's _mm512_max_ps, _min_ps, _roundscale_ps and _scalef_ps pass _mm512_undefined_ps() as
// the masked-off source, which -W(maybe-)uninitialized reports once inlined (a false positive:
// the mask is all ones). The pragma must be in effect where the intrinsics are defined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>
#include <limits>

namespace loupe::cpu::fast::avx512 {

namespace {

using W = __m512;

inline W splat(float v) { return _mm512_set1_ps(v); }

// Lanes [0, count) of a 16-lane vector (count in [0, 16]).
inline __mmask16 first_lanes(int64_t count) {
  return static_cast<__mmask16>(count >= 16 ? 0xffff : (1u << count) - 1u);
}

// exp(x): the Cephes polynomial on [-ln2/2, ln2/2] of the AVX2 kernel; 2^n is applied by
// vscalefps, which rounds once, so results in the denormal range and near overflow need no
// split of n. NaN stays NaN, +inf gives inf, -inf gives 0.
inline W vexp(W x) {
  x = _mm512_max_ps(splat(-104.0f), _mm512_min_ps(splat(89.0f), x));  // NaN passes (second operand)
  const W n = _mm512_roundscale_ps(_mm512_mul_ps(x, splat(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  W r = _mm512_fnmadd_ps(n, splat(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, splat(-2.12194440e-4f), r);
  W p = splat(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, splat(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, splat(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, splat(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, splat(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, splat(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
  p = _mm512_add_ps(p, splat(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Phi(x) = 1 - erfc(z) / 2 or erfc(z) / 2, z = |x| / sqrt(2), erfc(z) / 2 = t Q(t) exp(-z^2),
// t = 1 / (1 + z / 2) (see the AVX2 vnormal_cdf for the split of z^2 and why exp(-z^2) is taken
// apart from the polynomial; Q is in erfc_polynomial.hpp).
// With kWithPdf, also *pdf = phi(x) = exp(-x^2 / 2) / sqrt(2 pi) from the same exp(-z^2).
template <bool kWithPdf>
inline W vnormal(W x, W* pdf) {
  const W z = _mm512_abs_ps(_mm512_mul_ps(x, splat(0.70710678118654752f)));
  const W t = _mm512_div_ps(splat(1.0f), _mm512_fmadd_ps(splat(0.5f), z, splat(1.0f)));
  W q = splat(kHalfErfcxOverT[9]);
  for (int k = 8; k >= 0; --k) q = _mm512_fmadd_ps(q, t, splat(kHalfErfcxOverT[k]));
  const W hi = _mm512_mul_ps(z, z);
  const W lo = _mm512_fmsub_ps(z, z, hi);
  const W tq = _mm512_mul_ps(_mm512_fnmadd_ps(t, lo, t), q);  // t (1 - lo) Q(t)
  const W e = vexp(_mm512_sub_ps(_mm512_setzero_ps(), hi));
  // erfc(z) < 2e-45 beyond z = 10: exactly 0 there (and no NaN from lo = inf - inf).
  const __mmask16 inside = _mm512_cmp_ps_mask(z, splat(10.0f), _CMP_LE_OQ);
  const W half = _mm512_maskz_mul_ps(inside, tq, e);
  if constexpr (kWithPdf) {
    *pdf = _mm512_maskz_mul_ps(inside, _mm512_fnmadd_ps(e, lo, e), splat(0.39894228040143268f));
  }
  // NaN: half is 0 and x < 0 is false, so 1 - 0 = 1 and x * 1 keeps the NaN.
  const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(negative, _mm512_sub_ps(splat(1.0f), half), half);
}

inline W vnormal_cdf(W x) { return vnormal<false>(x, nullptr); }

// Applies f to n floats, 16 at a time, the last partial vector through masked loads and stores.
template <typename F>
inline void map(const float* x, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {  // two independent vectors per step keep both FMA pipes busy
    const W a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    _mm512_storeu_ps(out + i, f(a));
    _mm512_storeu_ps(out + i + 16, f(b));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    _mm512_mask_storeu_ps(out + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// Adds the 16 floats of v to two float64 accumulators.
inline void add_f64(__m512d& acc, W v) {
  acc = _mm512_add_pd(acc, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                                         _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))));
}

// Horizontal max and float64 sum through memory (not _mm512_reduce_*: GCC 12 warns inside them
// under -Wuninitialized, and warnings are errors in CI).
inline float hmax(W v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  return *std::max_element(lanes, lanes + 16);
}
inline double hsum(__m512d v) {
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, v);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

}  // namespace

void gelu_erf(const float* x, float* out, int64_t n) {
  map(x, out, n, [](W v) { return _mm512_mul_ps(v, vnormal_cdf(v)); });
}

void exp(const float* x, float* out, int64_t n) { map(x, out, n, [](W v) { return vexp(v); }); }

void gelu_erf_backward(const float* x, const float* g, float* out, int64_t n) {
  auto grad = [](W xv, W gv) {
    W pdf;
    const W cdf = vnormal<true>(xv, &pdf);
    return _mm512_mul_ps(gv, _mm512_fmadd_ps(xv, pdf, cdf));  // g (Phi + x phi)
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, grad(_mm512_loadu_ps(x + i), _mm512_loadu_ps(g + i)));
  if (i < n) {
    const __mmask16 m = first_lanes(n - i);
    _mm512_mask_storeu_ps(out + i, m, grad(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, g + i)));
  }
}

void softmax_row(const float* px, int64_t k, bool log, float* po) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t full = k / 32 * 32;  // the main loops take 32 elements (two vectors) per step
  const __mmask16 tail_a = first_lanes(k - full), tail_b = first_lanes(k - full - 16 > 0 ? k - full - 16 : 0);
  // Pass 1: the maximum, and whether any element is NaN (two independent chains).
  W m0 = splat(ninf), m1 = m0;
  __mmask16 nan = 0;
  for (int64_t j = 0; j < full; j += 32) {
    const W a = _mm512_loadu_ps(px + j), b = _mm512_loadu_ps(px + j + 16);
    nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);  // unordered: either is NaN
    m0 = _mm512_max_ps(m0, a);
    m1 = _mm512_max_ps(m1, b);
  }
  {
    const W a = _mm512_mask_loadu_ps(splat(ninf), tail_a, px + full);
    const W b = _mm512_mask_loadu_ps(splat(ninf), tail_b, px + full + 16);
    nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
    m0 = _mm512_max_ps(m0, a);
    m1 = _mm512_max_ps(m1, b);
  }
  const float row_max = hmax(_mm512_max_ps(m0, m1));
  if (nan != 0 || row_max == ninf) {
    std::fill(po, po + k, std::numeric_limits<float>::quiet_NaN());
    return;
  }
  // Pass 2: e = exp(x - max), stored (softmax) and summed: each pair of vectors is added in
  // float32 (one rounding of two terms <= 1), then accumulated in float64.
  const W mx = splat(row_max);
  __m512d total_v = _mm512_setzero_pd();
  for (int64_t j = 0; j < full; j += 32) {
    const W a = vexp(_mm512_sub_ps(_mm512_loadu_ps(px + j), mx));
    const W b = vexp(_mm512_sub_ps(_mm512_loadu_ps(px + j + 16), mx));
    if (!log) {
      _mm512_storeu_ps(po + j, a);
      _mm512_storeu_ps(po + j + 16, b);
    }
    add_f64(total_v, _mm512_add_ps(a, b));
  }
  {
    const W a = _mm512_maskz_mov_ps(tail_a, vexp(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail_a, px + full), mx)));
    const W b = _mm512_maskz_mov_ps(tail_b, vexp(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail_b, px + full + 16), mx)));
    if (!log) {
      _mm512_mask_storeu_ps(po + full, tail_a, a);
      _mm512_mask_storeu_ps(po + full + 16, tail_b, b);
    }
    add_f64(total_v, _mm512_add_ps(a, b));
  }
  const double total = hsum(total_v);
  // Pass 3 (on the cached row): scale, or subtract the log of the sum.
  if (log) {
    const W lt = splat(static_cast<float>(std::log(total)));
    for (int64_t j = 0; j < k; j += 16) {
      const __mmask16 m = first_lanes(k - j);
      _mm512_mask_storeu_ps(po + j, m, _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, px + j), mx), lt));
    }
  } else {
    const W inv = splat(static_cast<float>(1.0 / total));
    int64_t j = 0;
    for (; j + 16 <= k; j += 16) _mm512_storeu_ps(po + j, _mm512_mul_ps(_mm512_loadu_ps(po + j), inv));
    const __mmask16 m = first_lanes(k - j);
    _mm512_mask_storeu_ps(po + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, po + j), inv));
  }
}

}  // namespace loupe::cpu::fast::avx512
