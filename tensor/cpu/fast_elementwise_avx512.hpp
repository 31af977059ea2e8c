// The AVX-512 (16-lane) versions of fast_elementwise's hottest float32 kernels, compiled for
// x86-64-v4 in a library of their own (like gemm_avx512.cpp). fast_elementwise.cpp calls them only
// after checking at run time that the CPU has AVX-512 F/DQ/BW/VL; they work on one range or one
// row (the caller splits the work over threads).
//
// Same formulas and accuracy as the AVX2 kernels (fast_elementwise.cpp's head comment), with
// two differences that only make rounding cheaper: 2^n is applied by vscalefps (one rounding,
// including into the denormal range) and masks replace blends. Why a 16-lane copy at all: gelu
// and softmax are bound by arithmetic, not memory, on CPUs with two 512-bit FMA pipes; twice the
// lanes per instruction is twice the elements per cycle.
// Tests: tests/ops/test_fast_kernels.cpp (each against the AVX2 kernel and the plain reference)
#pragma once

#include <cstdint>

namespace loupe::cpu::fast::avx512 {

// out[i] = x[i] * Phi(x[i]) (gelu, erf form) for i < n.
void gelu_erf(const float* x, float* out, int64_t n);
// out[i] = g[i] * (Phi(x[i]) + x[i] phi(x[i])) (gelu's derivative) for i < n.
void gelu_erf_backward(const float* x, const float* g, float* out, int64_t n);
// out[i] = exp(x[i]) for i < n.
void exp(const float* x, float* out, int64_t n);
// softmax (or log_softmax) of one row of k floats that fits in the L2 cache; the semantics of
// fast_elementwise.cpp's softmax_row_cached (NaN anywhere or a row of -inf: NaN everywhere).
void softmax_row(const float* x, int64_t k, bool log, float* out);

}  // namespace loupe::cpu::fast::avx512
