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

namespace loupe::cpu::gemm_detail {

template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta);

// One register tile shape with the cache blocking tuned for it.
//   mr x nr: the block of C held in registers.
//   kc:      depth of a packed block (the kc x nr B sliver is reused from L1 by every A sliver).
//   mc:      rows of a packed A block (mc x kc, kept in L2); a multiple of mr.
//   nc:      columns of a packed B block (kc x nc, L2 / L3); a multiple of nr.
template <typename T>
struct KernelSpec {
  int mr;
  int nr;
  int64_t mc;
  int64_t kc;
  int64_t nc;
  MicroKernel<T> kernel;
};

// Defined in gemm_avx2.cpp (compiled for x86-64-v3) and gemm_avx512.cpp (x86-64-v4). Call them
// only after checking the CPU supports the instruction set.
KernelSpec<float> avx2_spec_f32();
KernelSpec<double> avx2_spec_f64();
KernelSpec<float> avx512_spec_f32();
KernelSpec<double> avx512_spec_f64();

}  // namespace loupe::cpu::gemm_detail
