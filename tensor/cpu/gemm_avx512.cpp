// GEMM micro-kernels for AVX-512 (compiled with -march=x86-64-v4 into the loupe_avx512 library;
// gemm.cpp calls them only after checking at run time that the CPU has AVX-512F).
// Contract, packing format and rounding: tensor/cpu/gemm_kernels.hpp. Walk-through: docs/gemm.md.
// Tests: tests/ops/op_table_linalg.cpp (every kernel against gemm_reference).
//
// The register tile is MR rows x NV vectors of C (a zmm holds 16 floats or 8 doubles):
//
//            B sliver row p:  [ b0 .. b15 ][ b16 .. b31 ]      <- NV vector loads
//   A(0,p) broadcast  x       [ acc 0,0   ][ acc 0,1    ]     <- NV FMAs per row
//   A(1,p) broadcast  x       [ acc 1,0   ][ acc 1,1    ]
//     ...                       ...
//   A(MR-1,p)         x       [ acc MR-1,0][ acc MR-1,1 ]
//
// 32 zmm registers hold MR * NV accumulators + NV B vectors + the broadcast A value(s). Per
// depth step: NV aligned loads of B, MR broadcasts of A, MR * NV independent FMAs (enough to
// cover the 4-cycle FMA latency on both FMA pipes: 2 pipes x 4 cycles = 8 in flight at least).
#include <immintrin.h>

#include <vector>

#include "tensor/cpu/gemm_kernels.hpp"

namespace loupe::cpu::gemm_detail {

namespace {

// The per-type intrinsics, so one template serves float and double.
template <typename T>
struct Zmm;

template <>
struct Zmm<float> {
  using V = __m512;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_load_ps(p); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
};

template <>
struct Zmm<double> {
  using V = __m512d;
  static constexpr int kLanes = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V load(const double* p) { return _mm512_load_pd(p); }
  static V loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
};

// PF: software prefetch distance in depth steps (0: none). Each step touches the B sliver row
// PF steps ahead (NV vectors = NV * 64 bytes, one prefetch per cache line) and the A sliver
// column PF steps ahead. The B sliver is L1-resident for all but the first A sliver of a block,
// where it comes from L2 / L3; the A sliver always streams from L2. Intel's L1 hardware
// prefetcher follows these streams less eagerly than Zen 5's (docs/gemm.md, section 8).
template <typename T, int MR, int NV, int PF>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c, int64_t ldc, T alpha,
                  T beta) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int kNr = NV * Z::kLanes;
  // Start pulling the C block into cache now; it is needed only after the kc loop.
  for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = Z::zero();
  }
  for (int64_t p = 0; p < kc; ++p, a += MR, b += kNr) {
    if constexpr (PF > 0) {
      // Prefetching past the sliver's end is harmless (a prefetch never faults).
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(b + PF * kNr + v * Z::kLanes), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(a + PF * MR), _MM_HINT_T0);
    }
    V bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = Z::load(b + v * Z::kLanes);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V ai = Z::set1(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = Z::fma(ai, bv[v], acc[i][v]);
    }
  }

  const V va = Z::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) Z::storeu(c + i * ldc + v * Z::kLanes, Z::mul(va, acc[i][v]));
    }
  } else {
    const V vb = Z::set1(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* dst = c + i * ldc + v * Z::kLanes;
        Z::storeu(dst, Z::fma(vb, Z::loadu(dst), Z::mul(va, acc[i][v])));
      }
    }
  }
}

}  // namespace

// Float, tuned on Zen 5: 8 rows x 32 columns (2 zmm) = 16 accumulators + 2 B vectors +
// broadcasts. On Zen 5, 8x32, 6x64 and 8x48 all reach ~220 GFLOP/s per core at n = 1024-2048
// (12x32 and 14x32 lose ~10%: their A slivers are longer and the B sliver + A sliver crowd the
// 48 KiB L1); 8x32 has the smallest edge waste. kc = 256: the 32 KiB B sliver plus an 8 KiB A
// sliver fit L1. mc = 128: the 128 KiB packed A block sits in L2 (1 MiB). Zen 5's hardware
// prefetchers keep up with both streams, so no software prefetch.
KernelSpec<float> avx512_spec_f32() { return {8, 32, 128, 256, 2048, &micro_kernel<float, 8, 2, 0>, "8x32"}; }

// Double: 6 rows x 32 columns (4 zmm of 8) = 24 accumulators; 6x32, 8x16 and 12x16 measured
// within a few percent of each other (~100 GFLOP/s per core, peak 128).
KernelSpec<double> avx512_spec_f64() { return {6, 32, 96, 256, 1024, &micro_kernel<double, 6, 4, 0>, "6x32"}; }

// Float, for Intel server cores with two 512-bit FMA ports (Skylake-SP through Emerald Rapids:
// 48 KiB L1, 2 MiB L2 per core on the newer ones, a slow mesh L3): 6 rows x 64 columns (4 zmm)
// = 24 accumulators + 4 B vectors; per depth step 4 B loads + 6 broadcasts feed 24 FMAs (2.4
// FMAs per load, against 1.6 for 8x32), and each B row and A column is software-prefetched 8
// steps ahead. kc = 128 keeps the 32 KiB B sliver L1-resident. Chosen with benchmarks/gemm_tune.cpp
// on a 2-vCPU Xeon (family 6 model 207), interleaved rounds: see docs/gemm.md, section 8.
KernelSpec<float> avx512_intel_spec_f32() { return {6, 64, 120, 128, 2048, &micro_kernel<float, 6, 4, 8>, "6x64+pf8"}; }

// Double on the same cores: the same register budget, 6 rows x 32 doubles (4 zmm), prefetching.
KernelSpec<double> avx512_intel_spec_f64() { return {6, 32, 120, 128, 1024, &micro_kernel<double, 6, 4, 8>, "6x32+pf8"}; }

// Every float register-tile / prefetch combination the tuning program tries, with Zen 5's
// blocking as a starting point (the program varies mc, kc, nc itself).
std::vector<KernelSpec<float>> avx512_candidates_f32() {
  return {
      {8, 32, 128, 256, 2048, &micro_kernel<float, 8, 2, 0>, "8x32"},
      {8, 32, 128, 256, 2048, &micro_kernel<float, 8, 2, 8>, "8x32+pf8"},
      {12, 32, 120, 256, 2048, &micro_kernel<float, 12, 2, 0>, "12x32"},
      {12, 32, 120, 256, 2048, &micro_kernel<float, 12, 2, 8>, "12x32+pf8"},
      {14, 32, 126, 256, 2048, &micro_kernel<float, 14, 2, 8>, "14x32+pf8"},
      {6, 64, 120, 128, 2048, &micro_kernel<float, 6, 4, 0>, "6x64"},
      {6, 64, 120, 128, 2048, &micro_kernel<float, 6, 4, 8>, "6x64+pf8"},
      {8, 48, 128, 192, 2064, &micro_kernel<float, 8, 3, 8>, "8x48+pf8"},
      {12, 32, 120, 256, 2048, &micro_kernel<float, 12, 2, 16>, "12x32+pf16"},
      {8, 32, 128, 256, 2048, &micro_kernel<float, 8, 2, 16>, "8x32+pf16"},
  };
}

}  // namespace loupe::cpu::gemm_detail
