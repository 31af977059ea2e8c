// GEMM micro-kernels for AVX2 + FMA (x86-64-v3, like the rest of the library).
// Contract, packing format and rounding: tensor/cpu/gemm_kernels.hpp. Walk-through: docs/gemm.md.
// Tests: tests/ops/op_table_linalg.cpp (every kernel against gemm_reference).
//
// The register tile is 6 rows x 2 ymm vectors of C (16 floats or 8 doubles per row):
// 12 accumulators + 2 B vectors + 1 broadcast A value = 15 of the 16 ymm registers.
#include <immintrin.h>

#include "tensor/cpu/gemm_kernels.hpp"

namespace loupe::cpu::gemm_detail {

namespace {

template <typename T>
struct Ymm;

template <>
struct Ymm<float> {
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(const float* x) { return _mm256_broadcast_ss(x); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_load_ps(p); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};

template <>
struct Ymm<double> {
  using V = __m256d;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(const double* x) { return _mm256_broadcast_sd(x); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V load(const double* p) { return _mm256_load_pd(p); }
  static V loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
};

template <typename T, int MR, int NV>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c, int64_t ldc, T alpha,
                  T beta) {
  using Y = Ymm<T>;
  using V = typename Y::V;
  constexpr int kNr = NV * Y::kLanes;
  for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Y::zero();
  }
  for (int64_t p = 0; p < kc; ++p, a += MR, b += kNr) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Y::load(b + v * Y::kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = Y::set1(a + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = Y::fma(ai, bv[v], acc[i][v]);
    }
  }

  const V va = Y::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) Y::storeu(c + i * ldc + v * Y::kLanes, Y::mul(va, acc[i][v]));
    }
  } else {
    const V vb = Y::set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        T* dst = c + i * ldc + v * Y::kLanes;
        Y::storeu(dst, Y::fma(vb, Y::loadu(dst), Y::mul(va, acc[i][v])));
      }
    }
  }
}

}  // namespace

KernelSpec<float> avx2_spec_f32() { return {6, 16, 144, 256, 2048, &micro_kernel<float, 6, 2>, "6x16"}; }

KernelSpec<double> avx2_spec_f64() { return {6, 8, 96, 256, 1024, &micro_kernel<double, 6, 2>, "6x8"}; }

}  // namespace loupe::cpu::gemm_detail
