// GEMM kernels. See gemm.hpp for the operand layout.
//
// The fast kernel follows the classic GotoBLAS / BLIS structure:
//
//   C is cut into tiles of kMc x kNc (the unit of parallel work), and for each tile
//     for each depth block pc of kKc:
//       pack A[tile rows, pc]  (kMc x kKc) into slivers of kMr rows   -> stays in L2
//       pack B[pc, tile cols]  (kKc x kNc) into slivers of kNr columns -> one sliver in L1
//       for each B sliver, for each A sliver:
//         micro-kernel: a kMr x kNr block of C, accumulated in registers over kKc steps
//
// Packing turns any strides (transposed views included) into the unit-stride, zero-padded layout
// the micro-kernel streams through, so the micro-kernel has one job and no edge cases. It is
// plain C++ whose fixed trip counts let g++ -O3 -march=x86-64-v3 keep the kMr x kNr accumulators
// in vector registers and emit broadcast + FMA (checked in the generated assembly).
// Hand-written micro-kernels for wider vector units can replace micro_kernel() alone.
//
// Determinism: each tile is computed by one thread in a fixed order, so results do not depend on
// the thread count.
#include "tensor/cpu/gemm.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "tensor/parallel.hpp"

namespace loupe::cpu {

// ---------------------------------------------------------------------------------------------
// Reference kernel
// ---------------------------------------------------------------------------------------------

template <typename T>
void gemm_reference(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, MatrixRef<const T> b, T beta,
                    MatrixRef<T> c) {
  parallel_for(0, m, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, n * k)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        T acc = 0;
        for (int64_t p = 0; p < k; ++p) {
          acc += a.data[i * a.row_stride + p * a.col_stride] * b.data[p * b.row_stride + j * b.col_stride];
        }
        T& dst = c.data[i * c.row_stride + j * c.col_stride];
        dst = beta == T(0) ? alpha * acc : alpha * acc + beta * dst;
      }
    }
  });
}

template void gemm_reference<float>(int64_t, int64_t, int64_t, float, MatrixRef<const float>,
                                    MatrixRef<const float>, float, MatrixRef<float>);
template void gemm_reference<double>(int64_t, int64_t, int64_t, double, MatrixRef<const double>,
                                     MatrixRef<const double>, double, MatrixRef<double>);
template void gemm_reference<int64_t>(int64_t, int64_t, int64_t, int64_t, MatrixRef<const int64_t>,
                                      MatrixRef<const int64_t>, int64_t, MatrixRef<int64_t>);

// ---------------------------------------------------------------------------------------------
// Fast kernel
// ---------------------------------------------------------------------------------------------

namespace {

// Blocking constants per element type.
//   kMr x kNr: the register block of C. With 16 ymm registers (AVX2), 6 rows x 2 vectors = 12
//              accumulators + 2 B vectors + 1 broadcast A value.
//   kKc:       depth of one packed block; a kKc x kNr B sliver (16 KiB for float) stays in L1.
//   kMc:       rows of a packed A block (kMc x kKc, ~96 KiB for float) kept in L2.
//   kNc:       columns of a packed B block; kMc x kNc is also the unit of parallel work.
template <typename T>
struct Blocking;

template <>
struct Blocking<float> {
  static constexpr int kMr = 6;
  static constexpr int kNr = 16;
  static constexpr int64_t kKc = 256;
  static constexpr int64_t kMc = 96;
  static constexpr int64_t kNc = 256;
};

template <>
struct Blocking<double> {
  static constexpr int kMr = 6;
  static constexpr int kNr = 8;
  static constexpr int64_t kKc = 256;
  static constexpr int64_t kMc = 96;
  static constexpr int64_t kNc = 128;
};

// Below this many multiply-adds the whole product runs on the calling thread.
constexpr int64_t kParallelMinWork = 64 * 64 * 64;

// A scratch buffer aligned to a cache line, so packed slivers start on vector boundaries.
template <typename T>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(int64_t size) : storage_(static_cast<size_t>(size) + kAlign / sizeof(T)) {
    void* p = storage_.data();
    size_t space = storage_.size() * sizeof(T);
    data_ = static_cast<T*>(std::align(kAlign, static_cast<size_t>(size) * sizeof(T), p, space));
  }
  T* data() { return data_; }

 private:
  static constexpr size_t kAlign = 64;
  std::vector<T> storage_;
  T* data_ = nullptr;
};

// Packs the mc x kc block of A starting at `a` into slivers of kMr rows:
//   packed[s * kMr * kc + p * kMr + i] = A(s * kMr + i, p), zero past the last row.
template <typename T>
void pack_a(int64_t mc, int64_t kc, MatrixRef<const T> a, T* packed) {
  constexpr int kMr = Blocking<T>::kMr;
  for (int64_t s = 0; s < mc; s += kMr) {
    const int64_t rows = std::min<int64_t>(kMr, mc - s);
    const T* src = a.data + s * a.row_stride;
    for (int64_t p = 0; p < kc; ++p) {
      for (int64_t i = 0; i < rows; ++i) packed[p * kMr + i] = src[i * a.row_stride + p * a.col_stride];
      for (int64_t i = rows; i < kMr; ++i) packed[p * kMr + i] = T(0);
    }
    packed += kMr * kc;
  }
}

// Packs the kc x nc block of B starting at `b` into slivers of kNr columns:
//   packed[s * kNr * kc + p * kNr + j] = B(p, s * kNr + j), zero past the last column.
template <typename T>
void pack_b(int64_t kc, int64_t nc, MatrixRef<const T> b, T* packed) {
  constexpr int kNr = Blocking<T>::kNr;
  for (int64_t s = 0; s < nc; s += kNr) {
    const int64_t cols = std::min<int64_t>(kNr, nc - s);
    const T* src = b.data + s * b.col_stride;
    for (int64_t p = 0; p < kc; ++p) {
      const T* row = src + p * b.row_stride;
      T* dst = packed + p * kNr;
      if (b.col_stride == 1) {
        for (int64_t j = 0; j < cols; ++j) dst[j] = row[j];
      } else {
        for (int64_t j = 0; j < cols; ++j) dst[j] = row[j * b.col_stride];
      }
      for (int64_t j = cols; j < kNr; ++j) dst[j] = T(0);
    }
    packed += kNr * kc;
  }
}

// acc (kMr x kNr, row-major) = sum over p < kc of a_sliver[p] (kMr) outer b_sliver[p] (kNr).
template <typename T>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict acc_out) {
  constexpr int kMr = Blocking<T>::kMr;
  constexpr int kNr = Blocking<T>::kNr;
  T acc[kMr][kNr] = {};
  for (int64_t p = 0; p < kc; ++p, a += kMr, b += kNr) {
    // Unrolled so that every acc[i][j] lives in a register and each row is kNr / width FMAs.
#pragma GCC unroll 16
    for (int i = 0; i < kMr; ++i) {
      const T ai = a[i];
#pragma GCC unroll 32
      for (int j = 0; j < kNr; ++j) acc[i][j] = std::fma(ai, b[j], acc[i][j]);
    }
  }
  for (int i = 0; i < kMr; ++i) {
    for (int j = 0; j < kNr; ++j) acc_out[i * kNr + j] = acc[i][j];
  }
}

// C block (rows x cols, at most kMr x kNr) = alpha * acc + beta * C; C is not read when beta == 0.
template <typename T>
void store_block(const T* acc, int64_t rows, int64_t cols, T alpha, T beta, MatrixRef<T> c) {
  constexpr int kNr = Blocking<T>::kNr;
  for (int64_t i = 0; i < rows; ++i) {
    T* dst = c.data + i * c.row_stride;
    const T* src = acc + i * kNr;
    if (beta == T(0)) {
      for (int64_t j = 0; j < cols; ++j) dst[j * c.col_stride] = alpha * src[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) dst[j * c.col_stride] = alpha * src[j] + beta * dst[j * c.col_stride];
    }
  }
}

// C *= beta (C = 0 when beta == 0): the whole product when k == 0.
template <typename T>
void scale_c(int64_t m, int64_t n, T beta, MatrixRef<T> c) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T& dst = c.data[i * c.row_stride + j * c.col_stride];
      dst = beta == T(0) ? T(0) : beta * dst;
    }
  }
}

// One mc x nc tile of C, over the whole depth k.
template <typename T>
void gemm_tile(int64_t mc, int64_t nc, int64_t k, T alpha, MatrixRef<const T> a, MatrixRef<const T> b, T beta,
               MatrixRef<T> c, T* packed_a, T* packed_b) {
  using B = Blocking<T>;
  alignas(64) T acc[B::kMr * B::kNr];
  for (int64_t pc = 0; pc < k; pc += B::kKc) {
    const int64_t kc = std::min(B::kKc, k - pc);
    pack_a<T>(mc, kc, {a.data + pc * a.col_stride, a.row_stride, a.col_stride}, packed_a);
    pack_b<T>(kc, nc, {b.data + pc * b.row_stride, b.row_stride, b.col_stride}, packed_b);
    // Later depth blocks add onto what the first one stored.
    const T block_beta = pc == 0 ? beta : T(1);
    for (int64_t jr = 0; jr < nc; jr += B::kNr) {
      const int64_t cols = std::min<int64_t>(B::kNr, nc - jr);
      for (int64_t ir = 0; ir < mc; ir += B::kMr) {
        const int64_t rows = std::min<int64_t>(B::kMr, mc - ir);
        micro_kernel<T>(kc, packed_a + ir * kc, packed_b + jr * kc, acc);
        store_block<T>(acc, rows, cols, alpha, block_beta,
                       {c.data + ir * c.row_stride + jr * c.col_stride, c.row_stride, c.col_stride});
      }
    }
  }
}

}  // namespace

template <typename T>
void gemm(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, MatrixRef<const T> b, T beta,
          MatrixRef<T> c) {
  using B = Blocking<T>;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_c(m, n, beta, c);
    return;
  }
  const int64_t tiles_m = (m + B::kMc - 1) / B::kMc;
  const int64_t tiles_n = (n + B::kNc - 1) / B::kNc;
  const int64_t tiles = tiles_m * tiles_n;
  const int64_t grain = m * n * k < kParallelMinWork ? tiles : 1;
  parallel_for(0, tiles, grain, [&](int64_t t0, int64_t t1) {
    // Panels sized for a full tile, rounded up to whole slivers; reused by every tile of the chunk.
    const int64_t kc_max = std::min(B::kKc, k);
    AlignedBuffer<T> packed_a(((B::kMc + B::kMr - 1) / B::kMr) * B::kMr * kc_max);
    AlignedBuffer<T> packed_b(((B::kNc + B::kNr - 1) / B::kNr) * B::kNr * kc_max);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ic = (t / tiles_n) * B::kMc;
      const int64_t jc = (t % tiles_n) * B::kNc;
      const int64_t mc = std::min(B::kMc, m - ic);
      const int64_t nc = std::min(B::kNc, n - jc);
      gemm_tile<T>(mc, nc, k, alpha, {a.data + ic * a.row_stride, a.row_stride, a.col_stride},
                   {b.data + jc * b.col_stride, b.row_stride, b.col_stride}, beta,
                   {c.data + ic * c.row_stride + jc * c.col_stride, c.row_stride, c.col_stride},
                   packed_a.data(), packed_b.data());
    }
  });
}

template void gemm<float>(int64_t, int64_t, int64_t, float, MatrixRef<const float>, MatrixRef<const float>, float,
                          MatrixRef<float>);
template void gemm<double>(int64_t, int64_t, int64_t, double, MatrixRef<const double>, MatrixRef<const double>,
                           double, MatrixRef<double>);

}  // namespace loupe::cpu
