// Fast elementwise / reduction / softmax / normalisation kernels. See fast_elementwise.hpp.
//
// The float32 kernels use AVX2 + FMA intrinsics (the library targets x86-64-v3); exp, gelu (erf)
// and cached softmax rows switch to their 16-lane twins in fast_elementwise_avx512.cpp when the
// CPU has AVX-512 (checked once at run time; LOUPE_FAST_AVX2=1 keeps these). The plain
// arithmetic loops (scale_shift, normalize_row, batch_norm_dx) are written so that g++ -O3
// vectorises them (checked in the generated assembly); the transcendental functions and the
// float64-accumulating sums are written with intrinsics because the compiler will not vectorise
// calls into libm or reorder a floating-point sum.
//
// Accuracy of the float32 approximations (measured against the float64 C library over the whole
// float range in tests/ops/test_fast_kernels.cpp):
//   exp      Cephes polynomial on [-ln2/2, ln2/2], 2^n applied in two halves so results near
//            overflow and in the denormal range round once: <= 1 ulp on normal results.
//   sigmoid  1 / (1 + e) or e / (1 + e) with e = exp(-|x|): <= 2 ulp.
//   tanh     odd polynomial below 0.625 (Cephes), 1 - 2 / (exp(2|x|) + 1) above: <= 2 ulp.
//   gelu     x * Phi(x); Phi from erfc(z) / 2 = t Q(t) exp(-z^2) (Q fitted to 1.4e-7 relative,
//            erfc_polynomial.hpp), z^2 carried in two floats so large |x| keep their accuracy:
//            <= 5 ulp (the float32 rounding of x / sqrt(2), shared with the reference, aside).
//   gelu'     Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) from the same exp(-z^2) as Phi:
//            <= 2.5 units of (x^2 + 8) 2^-24 (Phi + |x phi|).
//   gelu_tanh = x * sigmoid(2u), the same function as 0.5 x (1 + tanh(u)) without its cancellation.
//   silu     x * sigmoid(x); its derivative s (1 + x (1 - s)), 8 lanes.
#include "tensor/cpu/fast_elementwise.hpp"

#include "tensor/cpu/erfc_polynomial.hpp"
#include "tensor/cpu/fast_elementwise_avx512.hpp"
#include "tensor/cpu/register_transpose.hpp"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace loupe::cpu::fast {

using ops::UnaryOp;

namespace {

std::atomic<bool>& force_reference() {
  static std::atomic<bool> flag{[] {
    const char* env = std::getenv("LOUPE_REFERENCE_KERNELS");
    return env != nullptr && env[0] != '\0' && std::strcmp(env, "0") != 0;
  }()};
  return flag;
}

// True while the 16-lane kernels may run: the CPU has what x86-64-v4 code may use, and neither
// LOUPE_FAST_AVX2=1 nor use_avx2_kernels(true) holds them back.
std::atomic<bool>& avx512_allowed() {
  static std::atomic<bool> flag{[] {
    __builtin_cpu_init();
    const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    const char* env = std::getenv("LOUPE_FAST_AVX2");
    return cpu && !(env != nullptr && env[0] != '\0' && std::strcmp(env, "0") != 0);
  }()};
  return flag;
}

bool use_avx512() { return avx512_allowed().load(std::memory_order_relaxed); }

// --- float32 vector math (8 lanes) ---

using V = __m256;

inline V splat(float v) { return _mm256_set1_ps(v); }

// exp(x). NaN stays NaN, +inf gives inf, -inf gives 0.
inline V vexp(V x) {
  // Beyond these every result is inf or 0; the clamp keeps 2^n's exponent arithmetic in range.
  // min/max return their second operand for a NaN, so NaN passes through.
  x = _mm256_max_ps(splat(-104.0f), _mm256_min_ps(splat(89.0f), x));
  const V n = _mm256_round_ps(_mm256_mul_ps(x, splat(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2 in two parts (ln2_hi has few bits, so n * ln2_hi is exact).
  V r = _mm256_fnmadd_ps(n, splat(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, splat(-2.12194440e-4f), r);
  V p = splat(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, splat(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, splat(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, splat(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, splat(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, splat(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  p = _mm256_add_ps(p, splat(1.0f));
  // 2^n = 2^n1 * 2^n2 with both halves normal floats, for n in [-150, 129].
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const V s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const V s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

inline V vabs(V x) { return _mm256_andnot_ps(splat(-0.0f), x); }

// sigmoid(x) without overflow or loss of relative accuracy for negative x.
// With complement, also *complement = 1 - sigmoid(x), from the same pieces (s and 1 - s are r and
// e r, one way round or the other) rather than as a difference, which for large x keeps only the
// absolute accuracy of 1 (silu's derivative needs it).
inline V vsigmoid(V x, V* complement = nullptr) {
  const V e = vexp(_mm256_sub_ps(_mm256_setzero_ps(), vabs(x)));  // exp(-|x|) in (0, 1]
  const V r = _mm256_div_ps(splat(1.0f), _mm256_add_ps(splat(1.0f), e));
  const V er = _mm256_mul_ps(e, r);
  const V negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  if (complement != nullptr) *complement = _mm256_blendv_ps(er, r, negative);
  return _mm256_blendv_ps(r, er, negative);
}

inline V vtanh(V x) {
  const V sign = _mm256_and_ps(x, splat(-0.0f));
  const V a = vabs(x);
  // Small |x|: x + x^3 P(x^2) (Cephes tanhf).
  const V z = _mm256_mul_ps(a, a);
  V p = splat(-5.70498872745e-3f);
  p = _mm256_fmadd_ps(p, z, splat(2.06390887954e-2f));
  p = _mm256_fmadd_ps(p, z, splat(-5.37397155531e-2f));
  p = _mm256_fmadd_ps(p, z, splat(1.33314422036e-1f));
  p = _mm256_fmadd_ps(p, z, splat(-3.33332819422e-1f));
  const V small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), a, a);
  // Large |x|: 1 - 2 / (exp(2|x|) + 1) (exp(inf) = inf gives exactly 1).
  const V e = vexp(_mm256_add_ps(a, a));
  const V large = _mm256_sub_ps(splat(1.0f), _mm256_div_ps(splat(2.0f), _mm256_add_ps(e, splat(1.0f))));
  const V use_small = _mm256_cmp_ps(a, splat(0.625f), _CMP_LT_OQ);
  return _mm256_or_ps(_mm256_blendv_ps(large, small, use_small), sign);
}

// Phi(x) = P(X <= x) for a standard normal X, as 1 - erfc(z) / 2 or erfc(z) / 2, z = |x| / sqrt(2),
// with erfc(z) / 2 = t Q(t) exp(-z^2), t = 1 / (1 + z / 2) (erfc_polynomial.hpp). With kWithPdf,
// also *pdf = phi(x) = exp(-x^2 / 2) / sqrt(2 pi): the same exp(-z^2), for gelu's derivative.
template <bool kWithPdf>
inline V vnormal(V x, V* pdf) {
  const V z = vabs(_mm256_mul_ps(x, splat(0.70710678118654752f)));  // rounds like the reference's x / sqrt(2)
  const V t = _mm256_div_ps(splat(1.0f), _mm256_fmadd_ps(splat(0.5f), z, splat(1.0f)));
  V q = splat(kHalfErfcxOverT[9]);
  for (int k = 8; k >= 0; --k) q = _mm256_fmadd_ps(q, t, splat(kHalfErfcxOverT[k]));
  // exp(-z^2) with z^2 = hi + lo exactly (FMA): exp(-hi) (1 - lo), |lo| <= 2^-24 hi. Rounding z^2
  // alone would cost |z^2| ulp of relative accuracy in the tail. exp(-hi) does not wait for the
  // division and the polynomial: the two chains overlap, which is what makes this form fast.
  const V hi = _mm256_mul_ps(z, z);
  const V lo = _mm256_fmsub_ps(z, z, hi);
  const V tq = _mm256_mul_ps(_mm256_fnmadd_ps(t, lo, t), q);  // t (1 - lo) Q(t)
  const V e = vexp(_mm256_sub_ps(_mm256_setzero_ps(), hi));
  // erfc(z) < 2e-45 beyond z = 10: exactly 0 there (and no NaN from lo = inf - inf).
  const V beyond = _mm256_cmp_ps(z, splat(10.0f), _CMP_GT_OQ);
  const V half = _mm256_andnot_ps(beyond, _mm256_mul_ps(tq, e));
  if constexpr (kWithPdf) {
    *pdf = _mm256_andnot_ps(beyond, _mm256_mul_ps(_mm256_fnmadd_ps(e, lo, e), splat(0.39894228040143268f)));
  }
  const V negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  return _mm256_blendv_ps(_mm256_sub_ps(splat(1.0f), half), half, negative);
}

inline V vnormal_cdf(V x) { return vnormal<false>(x, nullptr); }

// ln(x) for x in (0, 1] (normal, finite; Box-Muller's 1 - u): x = 2^e m with m in
// [sqrt(1/2), sqrt(2)), ln x = e ln 2 + ln(1 + f), f = m - 1, by Cephes' logf polynomial (ln 2
// in two parts, as in vexp). About 1 ulp.
inline V vlog_unit(V x) {
  const __m256i bits = _mm256_castps_si256(x);
  __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
  V m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                            _mm256_set1_epi32(0x3f800000)));  // [1, 2)
  const V above = _mm256_cmp_ps(m, splat(1.41421356237f), _CMP_GT_OQ);
  m = _mm256_blendv_ps(m, _mm256_mul_ps(m, splat(0.5f)), above);
  e = _mm256_sub_epi32(e, _mm256_castps_si256(above));  // a true mask is -1: e + 1 where halved
  const V ef = _mm256_cvtepi32_ps(e);
  const V f = _mm256_sub_ps(m, splat(1.0f));
  const V z = _mm256_mul_ps(f, f);
  V p = splat(7.0376836292e-2f);
  p = _mm256_fmadd_ps(p, f, splat(-1.1514610310e-1f));
  p = _mm256_fmadd_ps(p, f, splat(1.1676998740e-1f));
  p = _mm256_fmadd_ps(p, f, splat(-1.2420140846e-1f));
  p = _mm256_fmadd_ps(p, f, splat(1.4249322787e-1f));
  p = _mm256_fmadd_ps(p, f, splat(-1.6668057665e-1f));
  p = _mm256_fmadd_ps(p, f, splat(2.0000714765e-1f));
  p = _mm256_fmadd_ps(p, f, splat(-2.4999993993e-1f));
  p = _mm256_fmadd_ps(p, f, splat(3.3333331174e-1f));
  V y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
  y = _mm256_fmadd_ps(ef, splat(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(splat(0.5f), z, y);
  return _mm256_fmadd_ps(ef, splat(0.693359375f), _mm256_add_ps(f, y));
}

// cos(2 pi u) for u in [0, 1): u = q / 4 + r exactly (q = round(4u), |r| <= 1/8, both exact in
// float32), so the angle 2 pi r lies in [-pi/4, pi/4], where Cephes' sinf / cosf polynomials
// hold, and the quarter turns q pick cos, -sin, -cos or sin. About 1 ulp.
inline V vcos_turns(V u) {
  const V q = _mm256_round_ps(_mm256_mul_ps(u, splat(4.0f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const V r = _mm256_fnmadd_ps(q, splat(0.25f), u);
  const V t = _mm256_mul_ps(r, splat(6.28318530718f));
  const V t2 = _mm256_mul_ps(t, t);
  V c = _mm256_fmadd_ps(splat(2.443315711809948e-5f), t2, splat(-1.388731625493765e-3f));
  c = _mm256_fmadd_ps(c, t2, splat(4.166664568298827e-2f));
  c = _mm256_fmadd_ps(_mm256_mul_ps(c, t2), t2, _mm256_fnmadd_ps(splat(0.5f), t2, splat(1.0f)));
  V s = _mm256_fmadd_ps(splat(-1.9515295891e-4f), t2, splat(8.3321608736e-3f));
  s = _mm256_fmadd_ps(s, t2, splat(-1.6666654611e-1f));
  s = _mm256_fmadd_ps(_mm256_mul_ps(s, t2), t, t);
  // Quarter turn k = q mod 4: cos, -sin, -cos, sin.
  const __m256i k = _mm256_and_si256(_mm256_cvtps_epi32(q), _mm256_set1_epi32(3));
  const V odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(k, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)));
  const V negate = _mm256_castsi256_ps(_mm256_or_si256(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(1)),
                                                       _mm256_cmpeq_epi32(k, _mm256_set1_epi32(2))));
  const V v = _mm256_blendv_ps(c, s, odd);
  return _mm256_xor_ps(v, _mm256_and_ps(negate, splat(-0.0f)));
}

inline V vgelu_tanh(V x) {
  // u = sqrt(2 / pi) (x + 0.044715 x^3); 0.5 (1 + tanh(u)) = sigmoid(2u).
  const V x2 = _mm256_mul_ps(x, x);
  const V inner = _mm256_mul_ps(x, _mm256_fmadd_ps(splat(0.044715f), x2, splat(1.0f)));
  return _mm256_mul_ps(x, vsigmoid(_mm256_mul_ps(splat(2.0f * 0.7978845608028654f), inner)));
}

// Applies f to n contiguous floats; the last partial vector goes through a zero-padded buffer.
template <typename F>
void map_f32(const float* x, float* out, int64_t n, F f) {
  for_chunks(n, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + 8 <= end; i += 8) _mm256_storeu_ps(out + i, f(_mm256_loadu_ps(x + i)));
    if (i < end) {
      alignas(32) float buf[8] = {};
      std::memcpy(buf, x + i, static_cast<size_t>(end - i) * sizeof(float));
      _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
      std::memcpy(out + i, buf, static_cast<size_t>(end - i) * sizeof(float));
    }
  });
}

// out[i] = f(x[i], g[i]) over n floats, 8 at a time (a short tail through a padded vector).
template <typename F>
void map2_f32(const float* x, const float* g, float* out, int64_t n, F f) {
  for_chunks(n, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + 8 <= end; i += 8) _mm256_storeu_ps(out + i, f(_mm256_loadu_ps(x + i), _mm256_loadu_ps(g + i)));
    if (i < end) {
      alignas(32) float bx[8] = {}, bg[8] = {};
      std::memcpy(bx, x + i, static_cast<size_t>(end - i) * sizeof(float));
      std::memcpy(bg, g + i, static_cast<size_t>(end - i) * sizeof(float));
      _mm256_store_ps(bx, f(_mm256_load_ps(bx), _mm256_load_ps(bg)));
      std::memcpy(out + i, bx, static_cast<size_t>(end - i) * sizeof(float));
    }
  });
}

// --- float64 accumulation ---

inline double hsum(__m256d v) {
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, v);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

// Four float64 lanes of 4 consecutive elements starting at x.
inline __m256d load4(const float* x) { return _mm256_cvtps_pd(_mm_loadu_ps(x)); }
inline __m256d load4(const double* x) { return _mm256_loadu_pd(x); }

// Calls acc = step(acc, i) for the 4 elements at i, 16 elements at a time into 4 accumulators
// (the fixed order every sum here uses), then returns the accumulators' total plus tail(i) for
// the last n % 4 elements.
template <typename Step, typename Tail>
double accumulate(int64_t n, Step step, Tail tail) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = step(a0, i);
    a1 = step(a1, i + 4);
    a2 = step(a2, i + 8);
    a3 = step(a3, i + 12);
  }
  for (; i + 4 <= n; i += 4) a0 = step(a0, i);
  double total = hsum(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  for (; i < n; ++i) total += tail(i);
  return total;
}

// Elements per block of a parallel sum: blocks are fixed by the size alone.
constexpr int64_t kSumBlock = 1 << 14;

}  // namespace

bool enabled() { return !force_reference().load(std::memory_order_relaxed); }
void use_reference_kernels(bool force) { force_reference().store(force); }

bool avx512_active() { return use_avx512(); }
bool use_avx2_kernels(bool force) {
  static const bool cpu = avx512_allowed().load();  // the first call's state: what the CPU allows
  avx512_allowed().store(cpu && !force);
  return cpu;
}

bool has_unary_f32(ops::UnaryOp op) {
  switch (op) {
    case UnaryOp::exp:
    case UnaryOp::sigmoid:
    case UnaryOp::tanh:
    case UnaryOp::gelu_erf:
    case UnaryOp::gelu_tanh:
    case UnaryOp::silu: return true;
    default: return false;
  }
}

bool unary_backward_f32(ops::UnaryOp op, const float* x, const float* g, float* out, int64_t n) {
  if (op == UnaryOp::silu) {
    // d/dx x s(x) = s (1 + x (1 - s)), s = sigmoid(x): SwiGLU's gate in every transformer step.
    // 1 - s comes from vsigmoid's complement: as the difference 1 - s it cost x times an ulp of 1
    // (17 units in the test, against 4.4).
    map2_f32(x, g, out, n, [](V xv, V gv) {
      V one_minus_s;
      const V s = vsigmoid(xv, &one_minus_s);
      return _mm256_mul_ps(_mm256_mul_ps(gv, s), _mm256_fmadd_ps(xv, one_minus_s, splat(1.0f)));
    });
    return true;
  }
  if (op != UnaryOp::gelu_erf) return false;
  if (use_avx512()) {
    for_chunks(n, [&](int64_t begin, int64_t end) {
      avx512::gelu_erf_backward(x + begin, g + begin, out + begin, end - begin);
    });
    return true;
  }
  // d/dx x Phi(x) = Phi(x) + x phi(x).
  map2_f32(x, g, out, n, [](V xv, V gv) {
    V pdf;
    const V cdf = vnormal<true>(xv, &pdf);
    return _mm256_mul_ps(gv, _mm256_fmadd_ps(xv, pdf, cdf));
  });
  return true;
}

bool unary_f32(ops::UnaryOp op, const float* x, float* out, int64_t n) {
  switch (op) {
    case UnaryOp::exp:
      if (use_avx512()) {
        for_chunks(n, [&](int64_t begin, int64_t end) { avx512::exp(x + begin, out + begin, end - begin); });
        return true;
      }
      map_f32(x, out, n, [](V v) { return vexp(v); });
      return true;
    case UnaryOp::sigmoid: map_f32(x, out, n, [](V v) { return vsigmoid(v); }); return true;
    case UnaryOp::tanh: map_f32(x, out, n, [](V v) { return vtanh(v); }); return true;
    case UnaryOp::gelu_erf:
      if (use_avx512()) {
        for_chunks(n, [&](int64_t begin, int64_t end) { avx512::gelu_erf(x + begin, out + begin, end - begin); });
        return true;
      }
      map_f32(x, out, n, [](V v) { return _mm256_mul_ps(v, vnormal_cdf(v)); });
      return true;
    case UnaryOp::gelu_tanh: map_f32(x, out, n, [](V v) { return vgelu_tanh(v); }); return true;
    case UnaryOp::silu: map_f32(x, out, n, [](V v) { return _mm256_mul_ps(v, vsigmoid(v)); }); return true;
    default: return false;
  }
}

template <typename T>
double sum_serial(const T* x, int64_t n) {
  return accumulate(
      n, [&](__m256d acc, int64_t i) { return _mm256_add_pd(acc, load4(x + i)); },
      [&](int64_t i) { return static_cast<double>(x[i]); });
}

template <typename T>
double sum_squared_deviation(const T* x, int64_t n, double mu) {
  const __m256d m = _mm256_set1_pd(mu);
  return accumulate(
      n,
      [&](__m256d acc, int64_t i) {
        const __m256d d = _mm256_sub_pd(load4(x + i), m);
        return _mm256_fmadd_pd(d, d, acc);
      },
      [&](int64_t i) {
        const double d = static_cast<double>(x[i]) - mu;
        return d * d;
      });
}

template <typename T>
void sum_and_dot_deviation(const T* g, const T* x, int64_t n, double mu, double& sum_g, double& dot) {
  sum_g = sum_serial(g, n);
  const __m256d m = _mm256_set1_pd(mu);
  dot = accumulate(
      n, [&](__m256d acc, int64_t i) { return _mm256_fmadd_pd(load4(g + i), _mm256_sub_pd(load4(x + i), m), acc); },
      [&](int64_t i) { return static_cast<double>(g[i]) * (static_cast<double>(x[i]) - mu); });
}

template <typename T>
double sum(const T* x, int64_t n) {
  if (n <= kSumBlock) return sum_serial(x, n);
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = b * kSumBlock;
      partial[static_cast<size_t>(b)] = sum_serial(x + lo, std::min(kSumBlock, n - lo));
    }
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

template <typename T>
void sum_rows(const T* x, int64_t rows, int64_t k, T* out) {
  // A single long row is split into blocks by sum(); many rows are split by rows. Either way each
  // row's blocks are fixed by k, so the result does not depend on the thread count.
  if (rows == 1) {
    out[0] = static_cast<T>(sum(x, k));
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kChunk / std::max<int64_t>(k, 1));
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) out[r] = static_cast<T>(sum(x + r * k, k));
  });
}

namespace {

// Rows up to this many floats stay in the L2 cache, so three passes over them cost little more
// than one and need one exp per element instead of three.
constexpr int64_t kCachedSoftmaxRow = 1 << 16;

// softmax / log_softmax of one cache-resident row: max; exp(x - max) summed (and stored);
// scaled. NaN anywhere, or a row of -inf, gives NaN everywhere, as in the reference.
void softmax_row_cached(const float* px, int64_t k, bool log, float* po) {
  const float ninf = -std::numeric_limits<float>::infinity();
  V mv = splat(ninf), nan = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    const V v = _mm256_loadu_ps(px + j);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    mv = _mm256_max_ps(mv, v);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mv);
  float row_max = ninf;
  for (float l : lanes) row_max = std::max(row_max, l);
  bool has_nan = _mm256_movemask_ps(nan) != 0;
  for (int64_t t = j; t < k; ++t) {
    has_nan = has_nan || std::isnan(px[t]);
    row_max = std::max(row_max, px[t]);
  }
  if (has_nan || row_max == ninf) {
    std::fill(po, po + k, std::numeric_limits<float>::quiet_NaN());
    return;
  }
  const V m = splat(row_max);
  __m256d total_v = _mm256_setzero_pd();
  for (j = 0; j + 8 <= k; j += 8) {
    const V e = vexp(_mm256_sub_ps(_mm256_loadu_ps(px + j), m));
    if (!log) _mm256_storeu_ps(po + j, e);
    total_v = _mm256_add_pd(total_v, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)),
                                                   _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1))));
  }
  double total = hsum(total_v);
  for (int64_t t = j; t < k; ++t) {
    const double e = std::exp(static_cast<double>(px[t] - row_max));
    if (!log) po[t] = static_cast<float>(e);
    total += e;
  }
  if (log) {
    const float log_total = static_cast<float>(std::log(total));
    const V lt = splat(log_total);
    for (j = 0; j + 8 <= k; j += 8) {
      _mm256_storeu_ps(po + j, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(px + j), m), lt));
    }
    for (; j < k; ++j) po[j] = (px[j] - row_max) - log_total;
  } else {
    const float inv = static_cast<float>(1.0 / total);
    const V vinv = splat(inv);
    for (j = 0; j + 8 <= k; j += 8) _mm256_storeu_ps(po + j, _mm256_mul_ps(_mm256_loadu_ps(po + j), vinv));
    for (; j < k; ++j) po[j] *= inv;
  }
}

}  // namespace

void softmax_rows(const float* x, int64_t rows, int64_t k, bool log, float* out) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t grain = std::max<int64_t>(1, kChunk / std::max<int64_t>(k, 1));
  const bool avx512 = use_avx512();
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* px = x + r * k;
      float* po = out + r * k;
      if (k <= kCachedSoftmaxRow) {
        if (avx512) {
          avx512::softmax_row(px, k, log, po);
          continue;
        }
        softmax_row_cached(px, k, log, po);
        continue;
      }
      // A long row: one streaming pass for the statistics, one for the output.
      // One pass: per lane a running max m and sum s of exp(x - m), rescaled when m grows.
      // A lane whose max is still -inf uses 0 as its shift, so -inf - -inf never appears.
      V m = splat(ninf), s = _mm256_setzero_ps();
      int64_t j = 0;
      for (; j + 8 <= k; j += 8) {
        const V v = _mm256_loadu_ps(px + j);
        const V m_new = _mm256_max_ps(m, v);  // a NaN in v becomes the lane's max: the row turns NaN
        const V shift = _mm256_andnot_ps(_mm256_cmp_ps(m_new, splat(ninf), _CMP_EQ_OQ), m_new);
        s = _mm256_fmadd_ps(s, vexp(_mm256_sub_ps(m, shift)), vexp(_mm256_sub_ps(v, shift)));
        m = m_new;
      }
      alignas(32) float lm[8], ls[8];
      _mm256_store_ps(lm, m);
      _mm256_store_ps(ls, s);
      float row_max = ninf;
      bool nan = false;
      for (int l = 0; l < 8; ++l) {
        nan = nan || std::isnan(lm[l]);
        row_max = std::max(row_max, lm[l]);
      }
      for (int64_t t = j; t < k; ++t) {
        nan = nan || std::isnan(px[t]);
        row_max = std::max(row_max, px[t]);
      }
      if (nan) row_max = std::numeric_limits<float>::quiet_NaN();
      const float shift = row_max == ninf ? 0.0f : row_max;
      double total = 0.0;
      for (int l = 0; l < 8; ++l) {
        if (lm[l] != ninf) total += static_cast<double>(ls[l]) * std::exp(static_cast<double>(lm[l] - shift));
      }
      for (int64_t t = j; t < k; ++t) total += std::exp(static_cast<double>(px[t] - shift));
      // Same outputs as the reference: exp(x - max) / sum, or x - max - log(sum).
      if (log) {
        const float log_total = static_cast<float>(std::log(total));
        const V mx = splat(row_max), lt = splat(log_total);
        for (j = 0; j + 8 <= k; j += 8) {
          _mm256_storeu_ps(po + j, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(px + j), mx), lt));
        }
        for (; j < k; ++j) po[j] = (px[j] - row_max) - log_total;
      } else {
        const float inv = static_cast<float>(1.0 / total);
        const V mx = splat(row_max), vinv = splat(inv);
        for (j = 0; j + 8 <= k; j += 8) {
          _mm256_storeu_ps(po + j, _mm256_mul_ps(vexp(_mm256_sub_ps(_mm256_loadu_ps(px + j), mx)), vinv));
        }
        for (; j < k; ++j) po[j] = static_cast<float>(std::exp(static_cast<double>(px[j] - row_max)) / total);
      }
    }
  });
}

template <typename T>
void normalize_row(const T* x, int64_t k, T mu, T rstd, const T* w, const T* b, T* out) {
  if (w == nullptr && b == nullptr) {
    for (int64_t j = 0; j < k; ++j) out[j] = (x[j] - mu) * rstd;
  } else if (b == nullptr) {
    for (int64_t j = 0; j < k; ++j) out[j] = (x[j] - mu) * (rstd * w[j]);
  } else if (w == nullptr) {
    for (int64_t j = 0; j < k; ++j) out[j] = std::fma(x[j] - mu, rstd, b[j]);
  } else {
    for (int64_t j = 0; j < k; ++j) out[j] = std::fma(x[j] - mu, rstd * w[j], b[j]);
  }
}

void box_muller(const float* u1, const float* u2, int64_t n, float mean, float stddev, float* out) {
  auto one = [&](V a, V b) {
    const V radius = _mm256_sqrt_ps(_mm256_mul_ps(splat(-2.0f), vlog_unit(a)));
    return _mm256_fmadd_ps(splat(stddev), _mm256_mul_ps(radius, vcos_turns(b)), splat(mean));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, one(_mm256_loadu_ps(u1 + i), _mm256_loadu_ps(u2 + i)));
  if (i < n) {  // the tail through a padded vector: the same lane arithmetic as the others
    alignas(32) float a[8] = {1, 1, 1, 1, 1, 1, 1, 1}, b[8] = {}, o[8];
    std::copy(u1 + i, u1 + n, a);
    std::copy(u2 + i, u2 + n, b);
    _mm256_store_ps(o, one(_mm256_load_ps(a), _mm256_load_ps(b)));
    std::copy(o, o + (n - i), out + i);
  }
}

template <typename T>
void scale_shift(const T* x, int64_t n, T scale, T shift, bool relu, T* out) {
  if (relu) {
    // v > 0 ? v : 0 keeps the reference relu's meaning (NaN -> 0) and still vectorises.
    for (int64_t j = 0; j < n; ++j) {
      const T v = std::fma(x[j], scale, shift);
      out[j] = v > T(0) ? v : T(0);
    }
  } else {
    for (int64_t j = 0; j < n; ++j) out[j] = std::fma(x[j], scale, shift);
  }
}

template <typename T>
void batch_norm_dx(const T* g, const T* x, int64_t n, T k, T a, T mu, T c, T* dx) {
  for (int64_t j = 0; j < n; ++j) dx[j] = k * ((g[j] - a) - (x[j] - mu) * c);
}

namespace {

// The best of the taps [h0, h1) x [w0, w1) (clipped to the plane), KW > 0: exactly KW columns.
template <int KW, typename T>
inline void max_window(const T* src, int64_t in_w, int64_t h0, int64_t h1, int64_t w0, int64_t w1, T& best,
                       int64_t& best_at) {
  best = -std::numeric_limits<T>::infinity();
  best_at = h0 * in_w + w0;
  for (int64_t h = h0; h < h1; ++h) {
    const T* row = src + h * in_w;
    const int64_t cols = KW > 0 ? KW : w1 - w0;
    for (int64_t j = 0; j < cols; ++j) {
      const T v = row[w0 + j];
      const bool take = v > best || v != v;  // NaN wins, as in the reference
      best = take ? v : best;
      best_at = take ? h * in_w + w0 + j : best_at;
    }
  }
}

// Float32, 8 interior output columns at a time: lane k holds output column ow + k, and every lane
// visits its taps in the reference's order with its rule, so results are identical. Returns the
// first column left for the scalar loop.
inline int64_t max_pool_8_columns(const float* src, const PoolWindow& p, int64_t h0, int64_t h1, int64_t ow_lo,
                                  int64_t ow_hi, float* o, int64_t* ix) {
  if (p.in_h * p.in_w >= (int64_t{1} << 31) / 2) return ow_lo;  // lane indices are int32
  const int s = static_cast<int>(p.stride_w);
  const int64_t plane = p.in_h * p.in_w;
  const __m256i lane_cols = _mm256_setr_epi32(0, s, 2 * s, 3 * s, 4 * s, 5 * s, 6 * s, 7 * s);
  int64_t ow = ow_lo;
  for (; ow + 8 <= ow_hi; ow += 8) {
    const int64_t ws = ow * p.stride_w - p.pad_w;
    V best = splat(-std::numeric_limits<float>::infinity());
    __m256i best_at = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(h0 * p.in_w + ws)), lane_cols);
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        const int64_t at = h * p.in_w + ws + j;  // lane 0's tap
        // Stride 2 (ResNet's and DenseNet's stem pool): the 8 taps are the even floats of 16
        // consecutive ones, two loads and a deinterleave instead of a gather (several times the
        // cost on Zen cores); not where the 16th float would lie past the plane.
        const V v = s == 2 && at + 16 <= plane ? even_floats(_mm256_loadu_ps(src + at), _mm256_loadu_ps(src + at + 8))
                                               : _mm256_i32gather_ps(src + at, lane_cols, 4);
        const V take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        best = _mm256_blendv_ps(best, v, take);
        const __m256i tap = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(at)), lane_cols);
        best_at = _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(best_at), _mm256_castsi256_ps(tap), take));
      }
    }
    _mm256_storeu_ps(o + ow, best);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ix + ow), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(best_at)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ix + ow + 4),
                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(best_at, 1)));
  }
  return ow;
}

template <int KW, typename T>
void max_pool_rows(const T* src, const PoolWindow& p, T* out, int64_t* indices) {
  // Output columns [ow_lo, ow_hi) have windows entirely inside the plane horizontally.
  const int64_t ow_lo = std::min(p.out_w, (p.pad_w + p.stride_w - 1) / p.stride_w);
  // When the window is wider than the padded row there is no such column; the test keeps the
  // division away from negative numerators, which C++ rounds toward zero (to column 1).
  const int64_t last_start = p.in_w + p.pad_w - p.kernel_w;
  const int64_t ow_hi = last_start < 0 ? ow_lo : std::max(ow_lo, std::min(p.out_w, last_start / p.stride_w + 1));
  for (int64_t oh = 0; oh < p.out_h; ++oh) {
    const int64_t hs = oh * p.stride_h - p.pad_h;
    const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + p.kernel_h, p.in_h);
    T* o = out + oh * p.out_w;
    int64_t* ix = indices + oh * p.out_w;
    auto clipped = [&](int64_t ow) {
      const int64_t ws = ow * p.stride_w - p.pad_w;
      max_window<0>(src, p.in_w, h0, h1, std::max<int64_t>(ws, 0), std::min(ws + p.kernel_w, p.in_w), o[ow], ix[ow]);
    };
    for (int64_t ow = 0; ow < ow_lo; ++ow) clipped(ow);
    int64_t first = ow_lo;
    if constexpr (std::is_same_v<T, float>) first = max_pool_8_columns(src, p, h0, h1, ow_lo, ow_hi, o, ix);
    for (int64_t ow = first; ow < ow_hi; ++ow) {
      const int64_t ws = ow * p.stride_w - p.pad_w;
      max_window<KW>(src, p.in_w, h0, h1, ws, ws + p.kernel_w, o[ow], ix[ow]);
    }
    for (int64_t ow = ow_hi; ow < p.out_w; ++ow) clipped(ow);
  }
}

}  // namespace

template <typename T>
void max_pool2d_plane(const T* src, const PoolWindow& p, T* out, int64_t* indices) {
  if (p.kernel_w == 2) {
    max_pool_rows<2>(src, p, out, indices);
  } else if (p.kernel_w == 3) {
    max_pool_rows<3>(src, p, out, indices);
  } else {
    max_pool_rows<0>(src, p, out, indices);
  }
}

#define LOUPE_FAST_INSTANTIATE(T)                                                                          \
  template double sum_serial<T>(const T*, int64_t);                                                        \
  template double sum_squared_deviation<T>(const T*, int64_t, double);                                     \
  template void sum_and_dot_deviation<T>(const T*, const T*, int64_t, double, double&, double&);           \
  template double sum<T>(const T*, int64_t);                                                               \
  template void sum_rows<T>(const T*, int64_t, int64_t, T*);                                               \
  template void normalize_row<T>(const T*, int64_t, T, T, const T*, const T*, T*);                         \
  template void scale_shift<T>(const T*, int64_t, T, T, bool, T*);                                         \
  template void batch_norm_dx<T>(const T*, const T*, int64_t, T, T, T, T, T*);                          \
  template void max_pool2d_plane<T>(const T*, const PoolWindow&, T*, int64_t*);

LOUPE_FAST_INSTANTIATE(float)
LOUPE_FAST_INSTANTIATE(double)
#undef LOUPE_FAST_INSTANTIATE

}  // namespace loupe::cpu::fast
