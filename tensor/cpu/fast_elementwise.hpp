// Fast CPU kernels for contiguous float32 / float64 data: vectorised unary functions, reductions,
// softmax and the inner loops of the normalisation layers.
//
// Every fast kernel has a plain reference kernel beside it in tensor/ops/*.cpp; the ops call the
// fast one only when the operands qualify (contiguous, a dtype it handles) and fall back to the
// reference otherwise. Setting the environment variable LOUPE_REFERENCE_KERNELS=1 forces the
// reference kernels everywhere (for comparisons and bisecting); tests switch in-process with
// use_reference_kernels().
//
// Float32 transcendental functions (exp, sigmoid, tanh, gelu, silu) use AVX2 polynomial
// approximations accurate to about 1-2 ulp (see fast_elementwise.cpp); exp, gelu and softmax
// rows have 16-lane AVX-512 versions of the same formulas, chosen at run time
// (fast_elementwise_avx512.hpp); float64 keeps the C
// library's functions. Sums accumulate in float64 in blocks whose boundaries depend only on the
// size, so results are deterministic and independent of the thread count.
// Tests: tests/ops/test_fast_kernels.cpp
#pragma once

#include <algorithm>
#include <cstdint>

#include "tensor/ops/unary.hpp"
#include "tensor/parallel.hpp"

namespace loupe::cpu::fast {

// False when the reference kernels are forced (LOUPE_REFERENCE_KERNELS=1, or use_reference_kernels(true)).
bool enabled();
// Forces (true) or releases (false) the reference kernels for the whole process.
void use_reference_kernels(bool force);
// Whether exp, gelu (erf form) and cached softmax rows run their AVX-512 kernels
// (fast_elementwise_avx512.hpp): on CPUs with AVX-512 F/DQ/BW/VL, unless LOUPE_FAST_AVX2=1.
bool avx512_active();
// Forces (true) or releases (false) the 8-lane AVX2 kernels for the whole process (tests compare
// both); returns whether the CPU can run the AVX-512 ones at all.
bool use_avx2_kernels(bool force);

// Elements per parallel chunk of an elementwise loop (fixed, so chunking never depends on threads).
constexpr int64_t kChunk = 1 << 15;

// Calls body(begin, end) over fixed chunks of [0, n) in parallel.
template <typename Body>
void for_chunks(int64_t n, Body&& body) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) body(c * kChunk, std::min(n, (c + 1) * kChunk));
  });
}

// out[i] = op(x[i]) over n contiguous float32 elements, for the ops with a vectorised float32
// kernel (exp, sigmoid, tanh, gelu_erf, gelu_tanh, silu). Returns false (writing nothing) for
// any other op.
bool unary_f32(ops::UnaryOp op, const float* x, float* out, int64_t n);
bool has_unary_f32(ops::UnaryOp op);
// out[i] = g[i] * op'(x[i]) over n contiguous float32 elements, for the ops with a vectorised
// float32 derivative: gelu_erf (Phi(x) + x phi(x), from the forward kernel's Phi and its
// exp(-x^2 / 2); 16 lanes where the CPU has AVX-512) and silu (s (1 + x (1 - s)), s the sigmoid
// kernel's; 8 lanes). Returns false (writing nothing) for any other op.
bool unary_backward_f32(ops::UnaryOp op, const float* x, const float* g, float* out, int64_t n);

// Standard normals from uniforms by Box-Muller, in float32, eight lanes at a time:
//   out[i] = mean + stddev * sqrt(-2 ln u1[i]) cos(2 pi u2[i]),  u1 in (0, 1], u2 in [0, 1)
// (the formula of normal() in tensor/ops/random_ops.cpp, which computes it in float64 with the C
// library; here ln and cos are float32 polynomials of a few ulp, several times faster). Every
// element runs the same vector arithmetic wherever it falls (a short tail is padded), so the
// values do not depend on how a caller splits the work.
void box_muller(const float* u1, const float* u2, int64_t n, float mean, float stddev, float* out);

// Sum of n contiguous elements in float64: serial, a fixed vectorised order.
template <typename T>
double sum_serial(const T* x, int64_t n);
// Sum of (x[i] - mu)^2 in float64.
template <typename T>
double sum_squared_deviation(const T* x, int64_t n, double mu);
// sum g[i] and sum g[i] * (x[i] - mu), in float64 (batch-norm backward).
template <typename T>
void sum_and_dot_deviation(const T* g, const T* x, int64_t n, double mu, double& sum_g, double& dot);
// Sum of n contiguous elements, parallel over fixed blocks; deterministic for any thread count.
template <typename T>
double sum(const T* x, int64_t n);

// Row sums: out[r] = sum(x[r * k : (r + 1) * k]) for r < rows.
template <typename T>
void sum_rows(const T* x, int64_t rows, int64_t k, T* out);

// softmax / log_softmax of each contiguous float32 row of k elements. A row that fits in the L2
// cache: max, then exp(x - max) stored and summed (in float64), then scaled -- one exp per
// element. A longer row: one streaming pass with an online max (per lane: a running max and a sum
// rescaled when the max grows), then one pass writing the output -- fewer passes over memory.
// (float64 rows keep the reference kernel, which already computes in float64.)
void softmax_rows(const float* x, int64_t rows, int64_t k, bool log, float* out);

// out[j] = (x[j] - mu) * (rstd * w[j]) + b[j] over one row (w, b may be null = 1, 0).
template <typename T>
void normalize_row(const T* x, int64_t k, T mu, T rstd, const T* w, const T* b, T* out);
// out[j] = x[j] * scale + shift, and max(., 0) when relu (one batch-norm plane).
template <typename T>
void scale_shift(const T* x, int64_t n, T scale, T shift, bool relu, T* out);
// dx[j] = k * (g[j] - a - (x[j] - mu) * c) over one batch-norm plane.
template <typename T>
void batch_norm_dx(const T* g, const T* x, int64_t n, T k, T a, T mu, T c, T* dx);

// Max pooling of one contiguous (H, W) plane with dilation 1 (padding and ceil mode are in the
// given output size): the reference's scan order and rules (taps row by row; a larger value or
// any NaN replaces the best; the first in-bounds tap is the fallback index), with the window
// clipping hoisted out of the tap loops and 2x2 / 3x3 windows unrolled.
struct PoolWindow {
  int64_t in_h, in_w, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};
template <typename T>
void max_pool2d_plane(const T* src, const PoolWindow& p, T* out, int64_t* indices);

}  // namespace loupe::cpu::fast
