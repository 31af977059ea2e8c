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
// Two kernels: gemm_reference is the plain triple loop every fast kernel is tested against;
// gemm is the cache-blocked, packed, register-blocked and multi-threaded one (float and double).
// Tests: tests/ops/op_table_linalg.cpp ("gemm: fast kernel matches the reference ...").
#pragma once

#include <cstdint>

namespace loupe::cpu {

// A strided matrix operand (see the file comment for the layout).
template <typename T>
struct MatrixRef {
  T* data;
  int64_t row_stride;
  int64_t col_stride;
};

// The plain triple loop (float, double, int64). Accumulates each dot product in T.
template <typename T>
void gemm_reference(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, MatrixRef<const T> b, T beta,
                    MatrixRef<T> c);

// The fast kernel (float, double). Results do not depend on the thread count.
template <typename T>
void gemm(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, MatrixRef<const T> b, T beta,
          MatrixRef<T> c);

}  // namespace loupe::cpu
