// GEMM on the CPU: C = alpha * A B + beta * C on strided matrices.
//
// Every operand is a pointer plus a row stride and a column stride (in elements), so a transposed
// or sliced view is passed as-is: A^T is A with its two strides swapped, no copy needed.
//   A: (m, k)   element (i, p) at a[i * a_rs + p * a_cs]
//   B: (k, n)   element (p, j) at b[p * b_rs + j * b_cs]
//   C: (m, n)   element (i, j) at c[i * c_rs + j * c_cs]
// When beta == 0, C is only written, never read (so garbage or NaN in C does not leak through),
// as in BLAS. C must not overlap A or B.
//
// gemm_reference is the plain triple loop every fast path is tested against; gemm is the
// cache-blocked, packed, register-blocked and multi-threaded one (float and double). gemm picks
// its micro-kernel once per process: the environment variable LOUPE_GEMM_KERNEL
// (reference | portable | avx2 | avx512 | avx512-intel) when set, else the best the CPU supports
// (an AVX-512 variant chosen by vendor, then avx2, then portable). gemm_with runs one named path, for tests and benchmarks.
// A walk-through of the whole design, with measurements: docs/gemm.md.
// Tests: tests/ops/op_table_linalg.cpp ("gemm: every kernel matches the reference ...").
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

namespace loupe::cpu {

// A strided matrix operand (see the file comment for the layout).
template <typename T>
struct MatrixRef {
  T* data;
  int64_t row_stride;
  int64_t col_stride;
};

// The plain triple loop (float, double, int64). Accumulates each dot product in T, except float's
// in double (rounded once at the end): a reference more accurate than the kernels it checks, so a
// test's tolerance measures the fast kernel's rounding and not the sum of both (a float
// accumulation over ResNet layer1's k = 576 was off by 1e-4 on outputs near 17).
template <typename T>
void gemm_reference(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, MatrixRef<const T> b, T beta,
                    MatrixRef<T> c);

// The implementations gemm can run, slowest first.
//   reference: gemm_reference (the triple loop)
//   portable:  packed and blocked, with a plain C++ std::fma micro-kernel
//   avx2:      packed and blocked, AVX2 + FMA intrinsics micro-kernel (6 x 16 floats / 6 x 8 doubles)
//   avx512:    packed and blocked, AVX-512 intrinsics micro-kernel (8 x 32 floats / 6 x 32 doubles),
//              tile and blocking tuned on AMD Zen 5 (the choice on AMD and other non-Intel CPUs)
//   avx512_intel ("avx512-intel"): the same kernel code with a 6 x 64 float / 6 x 32 double tile,
//              software prefetch and blocking for Intel server cores with two 512-bit FMA ports
enum class GemmKernel { reference, portable, avx2, avx512, avx512_intel };

// The CPU as cpuid reports it: vendor string ("GenuineIntel", "AuthenticAMD", ...) and the
// display family and model (family 6 model 207 = Emerald Rapids, family 26 = Zen 5).
struct CpuModel {
  char vendor[13];
  int family;
  int model;
};
CpuModel cpu_model();

const char* gemm_kernel_name(GemmKernel kernel);
// "reference", "portable", "avx2", "avx512" or "avx512-intel"; nullopt for anything else.
std::optional<GemmKernel> gemm_kernel_from_name(std::string_view name);
// Whether this CPU can run the kernel (reference and portable always can).
bool gemm_kernel_available(GemmKernel kernel);
// The kernel gemm uses: LOUPE_GEMM_KERNEL if set (an unknown name raises loupe::Error; a kernel
// this CPU cannot run falls back to the best available one), else gemm_best_kernel().
GemmKernel gemm_selected_kernel();
// The fastest kernel for this CPU: with AVX-512, avx512_intel on Intel family-6 cores and avx512
// elsewhere; else avx2 with AVX2 + FMA; else portable.
GemmKernel gemm_best_kernel();

// The fast kernel (float, double) with the selected micro-kernel. Results do not depend on the
// thread count.
template <typename T>
void gemm(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, MatrixRef<const T> b, T beta,
          MatrixRef<T> c);

// B supplied by its producer instead of as a matrix, for operands that exist only to be
// multiplied (an im2col matrix): pack(p0, kc, j0, nc, nr, packed) must write the rows
// [p0, p0 + kc) and columns [j0, j0 + nc) of B in the micro-kernel's sliver layout,
//   packed[s * nr * kc + p * nr + j] = B(p0 + p, j0 + s * nr + j)   for p < kc, j < nr,
// with zeros for the columns at or past j0 + nc in the last sliver. It is called from several
// threads at once (on disjoint blocks) and must not depend on which thread calls it.
template <typename T>
using GemmPackB = std::function<void(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* packed)>;

// A supplied by its producer, likewise: pack(i0, mc, p0, kc, mr, packed) writes rows
// [i0, i0 + mc) and columns [p0, p0 + kc) of A in slivers of mr rows,
//   packed[s * mr * kc + p * mr + i] = A(i0 + s * mr + i, p0 + p)   for p < kc, i < mr,
// with zeros for the rows at or past i0 + mc in the last sliver (a convolution's backward-data
// reads its weights flipped and transposed this way, without writing them out).
template <typename T>
using GemmPackA = std::function<void(int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, T* packed)>;

// gemm with A and/or B supplied by a producer (null: the matrix a or b is read); C must have
// unit column stride. The reference kernel receives produced operands written whole, with
// one-row (A) and one-column (B) slivers. Results are the same bits as gemm on the matrices the
// producers describe.
template <typename T>
void gemm_produced(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, const GemmPackA<T>* pack_a,
                   MatrixRef<const T> b, const GemmPackB<T>* pack_b, T beta, MatrixRef<T> c);

// gemm (the selected kernel) with B supplied by pack_b; C must have unit column stride. The
// reference kernel receives B written whole by pack_b with one-column slivers (column-major).
// Results are the same bits as gemm on the matrix that pack_b describes.
template <typename T>
void gemm_packed_b(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, const GemmPackB<T>& pack_b, T beta,
                   MatrixRef<T> c);

// The GEMM's own packing of a kc x nc block of a strided B into the layout above (nr, kc and nc
// as the packer receives them), for a GemmPackB that produces its block in a scratch matrix of
// whatever layout first: a column-major block goes through the register transpose.
template <typename T>
void gemm_pack_b_block(int nr, int64_t kc, int64_t nc, MatrixRef<const T> b, T* packed);

// gemm with a given kernel; one this CPU cannot run falls back to the best available one.
template <typename T>
void gemm_with(GemmKernel kernel, int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a,
               MatrixRef<const T> b, T beta, MatrixRef<T> c);

}  // namespace loupe::cpu
