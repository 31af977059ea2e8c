// Internal interface between the GEMM driver (tensor/cpu/gemm.cpp) and its micro-kernels
// (portable in gemm.cpp, AVX2 + FMA in gemm_avx2.cpp, AVX-512 in gemm_avx512.cpp). Not part of the
// public API: callers use tensor/cpu/gemm.hpp. docs/gemm.md walks through the whole design.
//
// A micro-kernel computes one mr x nr block of C from two packed slivers:
//   a: mr x kc sliver of A, packed "column by column": a[p * mr + i] = A(i, p)
//   b: kc x nr sliver of B, packed row by row:         b[p * nr + j] = B(p, j)
// both 64-byte aligned and zero-padded past the matrix edge. It writes
//   C(i, j) = alpha * acc(i, j)                       when beta == 0 (C is not read)
//   C(i, j) = fma(beta, C(i, j), alpha * acc(i, j))   otherwise
// where acc(i, j) = sum over p of A(i, p) * B(p, j), accumulated in p order with one FMA per step.
// C is row-major inside the block: element (i, j) at c[i * ldc + j]. Every kernel, and the
// driver's scalar edge-tile store, rounds exactly this way, so a C element gets the same bits
// whichever tile (full, edge, scratch) and whichever thread computes it.
// Tests: tests/ops/op_table_linalg.cpp ("gemm: every kernel matches the reference ...").
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/cpu/gemm.hpp"

namespace loupe::cpu::gemm_detail {

template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta);

// One register tile shape with the cache blocking tuned for it.
//   mr x nr: the block of C held in registers.
//   kc:      depth of a packed block (the kc x nr B sliver is reused from L1 by every A sliver).
//   mc:      rows of a packed A block (mc x kc, kept in L2); a multiple of mr.
//   nc:      columns of a packed B block (kc x nc, L2 / L3); a multiple of nr.
//   name:    the tile (and prefetch distance), for benchmarks and test messages: "8x32+pf8".
template <typename T>
struct KernelSpec {
  int mr;
  int nr;
  int64_t mc;
  int64_t kc;
  int64_t nc;
  MicroKernel<T> kernel;
  const char* name;
};

// Defined in gemm_avx2.cpp (compiled for x86-64-v3) and gemm_avx512.cpp (x86-64-v4). Call them
// only after checking the CPU supports the instruction set.
KernelSpec<float> avx2_spec_f32();
KernelSpec<double> avx2_spec_f64();
KernelSpec<float> avx512_spec_f32();
KernelSpec<double> avx512_spec_f64();
// The AVX-512 variant for Intel server cores (GemmKernel::avx512_intel).
KernelSpec<float> avx512_intel_spec_f32();
KernelSpec<double> avx512_intel_spec_f64();
// Register tiles and prefetch distances tried by benchmarks/gemm_tune.cpp (float; AVX-512).
std::vector<KernelSpec<float>> avx512_candidates_f32();

// The spec gemm_with(kernel, ...) runs for a packed kernel (not reference).
template <typename T>
KernelSpec<T> kernel_spec(GemmKernel kernel);

// The blocked, packed, threaded driver with an explicit spec: gemm_with without the kernel
// choice, for the tuning program and the tests of every candidate. C must be row-major or
// strided (not column-major: gemm_with transposes that case before calling this); k > 0.
template <typename T>
void gemm_with_spec(const KernelSpec<T>& spec, int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a,
                    MatrixRef<const T> b, T beta, MatrixRef<T> c);

}  // namespace loupe::cpu::gemm_detail
