// GEMM kernels. See gemm.hpp for the operand layout and docs/gemm.md for a walk-through.
//
// The fast path follows the GotoBLAS / BLIS structure. Each thread owns a slab of C (a range of
// columns, or of rows when C is tall), and within it:
//
//   for each column block jc of kNc:                 (B block kc x nc: L2 / L3)
//     for each depth block pc of kKc:
//       pack B[pc, jc] into slivers of nr columns
//       for each row block ic of kMc:                 (A block mc x kc: L2)
//         pack A[ic, pc] into slivers of mr rows
//         for each B sliver (kc x nr, stays in L1):
//           for each A sliver (mr x kc, streams from L2):
//             micro-kernel: an mr x nr block of C, accumulated in registers over kc steps
//
// Packing turns any strides (transposed views included) into the unit-stride, zero-padded layout
// the micro-kernel streams through, so the micro-kernel has one job. The micro-kernels and their
// tile shapes live in gemm_kernels.hpp (contract), gemm_avx2.cpp, gemm_avx512.cpp, and here
// (the portable one). Edge blocks of C (fewer than mr rows or nr columns, or C not unit-stride
// along rows) are computed into a scratch tile and stored by scalar code that rounds exactly
// like the kernels.
//
// Determinism: the depth blocks depend only on k, every C element is accumulated in the same
// order whichever tile and thread computes it, and kernels and edge stores round identically,
// so results do not depend on the thread count.
#include "tensor/cpu/gemm.hpp"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "tensor/cpu/copy_short.hpp"
#include "tensor/cpu/gemm_kernels.hpp"
#include "tensor/cpu/register_transpose.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace loupe::cpu {

// ---------------------------------------------------------------------------------------------
// Reference kernel
// ---------------------------------------------------------------------------------------------

// Floating-point products accumulate with an explicit fma: left to itself, g++ contracts
// `acc += a * b` into an FMA in the strided loop but vectorises the multiplications (and adds them
// one by one, unfused) in the unit-stride version of the same loop, so the bits would depend on
// the operands' layout (gemm_packed_b hands the reference a column-major B, gemm a row-major one).
template <typename T>
void gemm_reference(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, MatrixRef<const T> b, T beta,
                    MatrixRef<T> c) {
  parallel_for(0, m, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, n * k)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        // float dot products accumulate in double (see gemm.hpp), rounded to float once at the end.
        using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
        Acc acc = 0;
        for (int64_t p = 0; p < k; ++p) {
          const Acc x = a.data[i * a.row_stride + p * a.col_stride], y = b.data[p * b.row_stride + j * b.col_stride];
          if constexpr (std::is_floating_point_v<T>) {
            acc = std::fma(x, y, acc);
          } else {
            acc += x * y;
          }
        }
        T& dst = c.data[i * c.row_stride + j * c.col_stride];
        dst = static_cast<T>(beta == T(0) ? Acc(alpha) * acc : Acc(alpha) * acc + Acc(beta) * Acc(dst));
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
// Kernel selection
// ---------------------------------------------------------------------------------------------

const char* gemm_kernel_name(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::reference: return "reference";
    case GemmKernel::portable: return "portable";
    case GemmKernel::avx2: return "avx2";
    case GemmKernel::avx512: return "avx512";
    case GemmKernel::avx512_intel: return "avx512-intel";
  }
  return "unknown";
}

std::optional<GemmKernel> gemm_kernel_from_name(std::string_view name) {
  for (GemmKernel k : {GemmKernel::reference, GemmKernel::portable, GemmKernel::avx2, GemmKernel::avx512,
                       GemmKernel::avx512_intel}) {
    if (name == gemm_kernel_name(k)) return k;
  }
  return std::nullopt;
}

bool gemm_kernel_available(GemmKernel kernel) {
  __builtin_cpu_init();  // idempotent; needed if called before static constructors have run
  switch (kernel) {
    case GemmKernel::reference:
    case GemmKernel::portable: return true;
    case GemmKernel::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case GemmKernel::avx512:
    case GemmKernel::avx512_intel:
      // gemm_avx512.cpp is compiled for x86-64-v4, which may use any of these.
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  }
  return false;
}

CpuModel cpu_model() {
  CpuModel model{};
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return model;
  // The vendor string is EBX, EDX, ECX in that order ("Genu" "ineI" "ntel").
  std::memcpy(model.vendor, &ebx, 4);
  std::memcpy(model.vendor + 4, &edx, 4);
  std::memcpy(model.vendor + 8, &ecx, 4);
  model.vendor[12] = '\0';
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return model;
  // Display family and model (Intel SDM vol. 2, CPUID leaf 1): the extended fields count only
  // for family 15 (family) and families 6 and 15 (model); AMD uses the same rule.
  const int base_family = static_cast<int>((eax >> 8) & 0xF), base_model = static_cast<int>((eax >> 4) & 0xF);
  model.family = base_family == 15 ? base_family + static_cast<int>((eax >> 20) & 0xFF) : base_family;
  model.model = base_family == 6 || base_family == 15 ? base_model + (static_cast<int>((eax >> 16) & 0xF) << 4)
                                                       : base_model;
  return model;
}

GemmKernel gemm_best_kernel() {
  if (gemm_kernel_available(GemmKernel::avx512)) {
    // Intel's family-6 server cores (Skylake-SP to Emerald Rapids) want a larger register tile,
    // software prefetch and different blocking than Zen 4 / Zen 5 (docs/gemm.md, section 8).
    const CpuModel cpu = cpu_model();
    const bool intel = std::string_view(cpu.vendor) == "GenuineIntel" && cpu.family == 6;
    return intel ? GemmKernel::avx512_intel : GemmKernel::avx512;
  }
  if (gemm_kernel_available(GemmKernel::avx2)) return GemmKernel::avx2;
  return GemmKernel::portable;
}

namespace {

GemmKernel kernel_from_environment() {
  const char* env = std::getenv("LOUPE_GEMM_KERNEL");
  if (env == nullptr || *env == '\0') return gemm_best_kernel();
  const std::optional<GemmKernel> named = gemm_kernel_from_name(env);
  LOUPE_CHECK(named.has_value(), "gemm: LOUPE_GEMM_KERNEL='", env,
              "' is not one of reference, portable, avx2, avx512, avx512-intel");
  return gemm_kernel_available(*named) ? *named : gemm_best_kernel();
}

}  // namespace

GemmKernel gemm_selected_kernel() {
  static const GemmKernel selected = kernel_from_environment();
  return selected;
}

// ---------------------------------------------------------------------------------------------
// Blocked, packed driver
// ---------------------------------------------------------------------------------------------

namespace gemm_detail {

namespace {

// The portable micro-kernel: plain C++ whose fixed trip counts let g++ -O3 keep the MR x NR
// accumulators in vector registers and emit broadcast + FMA. Same contract as the intrinsics
// kernels (gemm_kernels.hpp).
template <typename T, int MR, int NR>
void portable_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c, int64_t ldc, T alpha,
                     T beta) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
#pragma GCC unroll 32
      for (int j = 0; j < NR; ++j) acc[i][j] = std::fma(ai, b[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      T& dst = c[i * ldc + j];
      dst = beta == T(0) ? alpha * acc[i][j] : std::fma(beta, dst, alpha * acc[i][j]);
    }
  }
}

KernelSpec<float> portable_spec(float) { return {6, 16, 96, 256, 1024, &portable_kernel<float, 6, 16>, "6x16"}; }
KernelSpec<double> portable_spec(double) { return {6, 8, 96, 256, 512, &portable_kernel<double, 6, 8>, "6x8"}; }

// The largest register tile any kernel uses (elements), for the edge-tile scratch.
constexpr int kMaxTile = 16 * 64;

// Below this many multiply-adds the whole product runs on the calling thread.
constexpr int64_t kParallelMinWork = 64 * 64 * 64;

// LOUPE_GEMM_SHARED_PANEL=0 makes every thread produce its own copy of a produced operand (see
// pack_shared): for A/B measurements.
bool shared_panels_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("LOUPE_GEMM_SHARED_PANEL");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  return enabled;
}

// A per-thread packing buffer, 64-byte aligned, grown on demand and kept for the next call.
template <typename T>
T* scratch(int slot, int64_t count) {
  struct Buffer {
    std::unique_ptr<T[]> storage;
    int64_t capacity = 0;
  };
  thread_local Buffer buffers[3];  // slots: 0 packed A, 1 packed B, 2 an operand shared by all threads (pack_shared)
  Buffer& buf = buffers[slot];
  constexpr int64_t kPad = 64 / sizeof(T);
  if (buf.capacity < count) {
    buf.storage = std::make_unique<T[]>(static_cast<size_t>(count + kPad));
    buf.capacity = count;
  }
  void* p = buf.storage.get();
  size_t space = static_cast<size_t>(count + kPad) * sizeof(T);
  return static_cast<T*>(std::align(64, static_cast<size_t>(count) * sizeof(T), p, space));
}

template <typename T>
struct Ymm;
template <>
struct Ymm<float> {
  using V = __m256;
};
template <>
struct Ymm<double> {
  using V = __m256d;
};

// Packing that is a transpose: packed[p * mr + i] = src[i * rs + p] for i < rows (rows <= mr)
// and p < kc / W * W, done W x W at a time in registers (W = 8 floats or 4 doubles) instead of
// one scalar per element. This is pack_a for a row-major A, and pack_b for a column-major B (a
// transposed view, as in linear's x W^T) with rows and columns swapped. Returns the p done.
template <typename T>
int64_t transpose_into_sliver(int mr, int64_t rows, int64_t kc, const T* src, int64_t rs, T* packed) {
  constexpr int W = 32 / sizeof(T);
  using V = typename Ymm<T>::V;
  const int64_t kc_simd = kc / W * W;
  for (int64_t i0 = 0; i0 < rows; i0 += W) {
    const int64_t group = std::min<int64_t>(W, rows - i0);
    alignas(32) int64_t mask_bits[4];
    __m256i mask;
    if constexpr (W == 8) {
      alignas(32) int32_t m32[8];
      for (int q = 0; q < 8; ++q) m32[q] = q < group ? -1 : 0;
      mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(m32));
    } else {
      for (int q = 0; q < 4; ++q) mask_bits[q] = q < group ? -1 : 0;
      mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(mask_bits));
    }
    for (int64_t p = 0; p < kc_simd; p += W) {
      V r[W];
      for (int q = 0; q < W; ++q) {
        if constexpr (W == 8) {
          r[q] = q < group ? _mm256_loadu_ps(src + (i0 + q) * rs + p) : _mm256_setzero_ps();
        } else {
          r[q] = q < group ? _mm256_loadu_pd(src + (i0 + q) * rs + p) : _mm256_setzero_pd();
        }
      }
      if constexpr (W == 8) {
        transpose8(r);
        for (int q = 0; q < W; ++q) _mm256_maskstore_ps(packed + (p + q) * mr + i0, mask, r[q]);
      } else {
        transpose4(r);
        for (int q = 0; q < W; ++q) _mm256_maskstore_pd(packed + (p + q) * mr + i0, mask, r[q]);
      }
    }
  }
  return kc_simd;
}

// Packs the mc x kc block of A at `a` into slivers of mr rows:
//   packed[s * mr * kc + p * mr + i] = A(s * mr + i, p), zero past the last row.
template <typename T>
void pack_a(int mr, int64_t mc, int64_t kc, MatrixRef<const T> a, T* packed) {
  for (int64_t s = 0; s < mc; s += mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - s);
    const T* src = a.data + s * a.row_stride;
    if (a.row_stride == 1) {
      // A stored by columns (a transposed view): each packed column is a contiguous copy.
      for (int64_t p = 0; p < kc; ++p) {
        copy_short(src + p * a.col_stride, rows, packed + p * mr);
        std::fill(packed + p * mr + rows, packed + (p + 1) * mr, T(0));
      }
      packed += mr * kc;
      continue;
    }
    const int64_t p0 = a.col_stride == 1 ? transpose_into_sliver<T>(mr, rows, kc, src, a.row_stride, packed) : 0;
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t p = p0; p < kc; ++p) packed[p * mr + i] = src[i * a.row_stride + p * a.col_stride];
    }
    for (int64_t i = rows; i < mr; ++i) {
      for (int64_t p = 0; p < kc; ++p) packed[p * mr + i] = T(0);
    }
    packed += mr * kc;
  }
}

// Packs the kc x nc block of B at `b` into slivers of nr columns:
//   packed[s * nr * kc + p * nr + j] = B(p, s * nr + j), zero past the last column.
template <typename T>
void pack_b(int nr, int64_t kc, int64_t nc, MatrixRef<const T> b, T* packed) {
  int64_t first = 0;  // slivers before this column are packed already
  if (b.col_stride == 1 && nc >= nr) {
    // Row-major B: row by row across all full slivers, so that B is read as kc sequential rows
    // (one stream the hardware prefetcher follows) rather than sliver by sliver, which touches kc
    // rows far apart for every nr columns; the scattered writes land in the packed block, which
    // is in cache.
    first = nc / nr * nr;
    for (int64_t p = 0; p < kc; ++p) {
      const T* row = b.data + p * b.row_stride;
      for (int64_t s = 0; s < first; s += nr) copy_short(row + s, nr, packed + s * kc + p * nr);
    }
    packed += first * kc;
  }
  for (int64_t s = first; s < nc; s += nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - s);
    const T* src = b.data + s * b.col_stride;
    if (b.col_stride == 1 && cols == nr) {
      for (int64_t p = 0; p < kc; ++p) copy_short(src + p * b.row_stride, nr, packed + p * nr);
    } else if (b.row_stride == 1) {
      // B stored by columns (a transposed view): a transpose, like pack_a of a row-major A.
      const int64_t p0 = transpose_into_sliver<T>(nr, cols, kc, src, b.col_stride, packed);
      for (int64_t j = 0; j < cols; ++j) {
        for (int64_t p = p0; p < kc; ++p) packed[p * nr + j] = src[j * b.col_stride + p];
      }
      for (int64_t p = 0; p < kc; ++p) std::fill(packed + p * nr + cols, packed + (p + 1) * nr, T(0));
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const T* row = src + p * b.row_stride;
        T* dst = packed + p * nr;
        for (int64_t j = 0; j < cols; ++j) dst[j] = row[j * b.col_stride];
        std::fill(dst + cols, dst + nr, T(0));
      }
    }
    packed += nr * kc;
  }
}

// C(rows x cols) = alpha * tile + beta * C, rounded like the kernels (gemm_kernels.hpp).
template <typename T>
void store_edge(const T* tile, int nr, int64_t rows, int64_t cols, T alpha, T beta, MatrixRef<T> c) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      T& dst = c.data[i * c.row_stride + j * c.col_stride];
      const T scaled = alpha * tile[i * nr + j];
      dst = beta == T(0) ? scaled : std::fma(beta, dst, scaled);
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

// The depth blocks: ceil(k / kKc) blocks of near-equal size (multiples of 8 where possible), so
// a k just over kKc does not leave a sliver-thin last block. Depends only on k and the spec.
int64_t depth_block(int64_t k, int64_t kc_max) {
  const int64_t blocks = (k + kc_max - 1) / kc_max;
  const int64_t kc = (k + blocks - 1) / blocks;
  return std::min(kc_max, (kc + 7) / 8 * 8);
}

// The operands that a caller produces itself (gemm_produced); null: read from the matrix.
template <typename T>
struct Producers {
  const GemmPackA<T>* a = nullptr;
  const GemmPackB<T>* b = nullptr;
};

// An operand produced whole (gemm_produced), ahead of the threads' slabs, so that each thread
// reads it instead of producing its own copy (gemm_packed). Depth block pc (whose size is kc)
// starts at pc * padded and holds the slivers of all padded rows of A (columns of B) in order:
// rows (columns) [i, i + mr) of that block start at pc * padded + i * kc.
template <typename T>
struct SharedPanel {
  const T* data = nullptr;  // null: each thread packs its own blocks of this operand
  int64_t padded = 0;       // rows of A (columns of B), rounded up to whole slivers
  const T* block(int64_t pc, int64_t first, int64_t kc) const { return data + pc * padded + first * kc; }
};

// Rows [m0, m1) x columns [n0, n1) of C, over the whole depth, on the calling thread. A shared
// operand (pack_shared) is read in place; the slab then spans all of its rows (A) or columns (B).
template <typename T>
void gemm_slab(const KernelSpec<T>& ks, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t k, T alpha,
               MatrixRef<const T> a, MatrixRef<const T> b, Producers<T> producers, T beta, MatrixRef<T> c,
               SharedPanel<T> shared_a = {}, SharedPanel<T> shared_b = {}) {
  const int mr = ks.mr, nr = ks.nr;
  const int64_t kc_block = depth_block(k, ks.kc);
  // Whole slivers per block, so every packed sliver fits its buffer.
  const int64_t mc_step = std::max<int64_t>(mr, ks.mc / mr * mr);
  const int64_t nc_step = std::max<int64_t>(nr, ks.nc / nr * nr);
  const int64_t mc_max = std::min(mc_step, (m1 - m0 + mr - 1) / mr * mr);
  const int64_t nc_max = std::min(nc_step, (n1 - n0 + nr - 1) / nr * nr);
  T* const own_a = shared_a.data == nullptr ? scratch<T>(0, mc_max * kc_block) : nullptr;
  T* const own_b = shared_b.data == nullptr ? scratch<T>(1, nc_max * kc_block) : nullptr;
  alignas(64) T tile[kMaxTile];
  const bool c_rows_contiguous = c.col_stride == 1;

  for (int64_t jc = n0; jc < n1; jc += nc_step) {
    const int64_t nc = std::min(nc_step, n1 - jc);
    for (int64_t pc = 0; pc < k; pc += kc_block) {
      const int64_t kc = std::min(kc_block, k - pc);
      const T* packed_b = own_b;
      if (shared_b.data != nullptr) {
        packed_b = shared_b.block(pc, jc, kc);
      } else if (producers.b != nullptr) {
        (*producers.b)(pc, kc, jc, nc, nr, own_b);
      } else {
        pack_b<T>(nr, kc, nc, {b.data + pc * b.row_stride + jc * b.col_stride, b.row_stride, b.col_stride}, own_b);
      }
      // Later depth blocks add onto what the first one stored.
      const T block_beta = pc == 0 ? beta : T(1);
      for (int64_t ic = m0; ic < m1; ic += mc_step) {
        const int64_t mc = std::min(mc_step, m1 - ic);
        const T* packed_a = own_a;
        if (shared_a.data != nullptr) {
          packed_a = shared_a.block(pc, ic, kc);
        } else if (producers.a != nullptr) {
          (*producers.a)(ic, mc, pc, kc, mr, own_a);
        } else {
          pack_a<T>(mr, mc, kc, {a.data + ic * a.row_stride + pc * a.col_stride, a.row_stride, a.col_stride}, own_a);
        }
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t cols = std::min<int64_t>(nr, nc - jr);
          const T* b_sliver = packed_b + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t rows = std::min<int64_t>(mr, mc - ir);
            const T* a_sliver = packed_a + ir * kc;
            T* c_block = c.data + (ic + ir) * c.row_stride + (jc + jr) * c.col_stride;
            if (c_rows_contiguous && rows == mr && cols == nr) {
              ks.kernel(kc, a_sliver, b_sliver, c_block, c.row_stride, alpha, block_beta);
            } else {
              ks.kernel(kc, a_sliver, b_sliver, tile, nr, T(1), T(0));
              store_edge<T>(tile, nr, rows, cols, alpha, block_beta, {c_block, c.row_stride, c.col_stride});
            }
          }
        }
      }
    }
  }
}

// Every slab needs all of one operand: B when C is cut into row slabs, A when into column slabs.
// When a producer generates that operand (a convolution's im2col for B, its flipped weights for
// A: gemm_produced), it is generated once, whole, by all threads together, instead of once per
// thread: on ResNet18's 7x7 layers (B 4608 x 392) the duplicate cost a tenth of the
// convolution's time. An operand that is only copied is not shared: its per-thread blocks,
// packed just before use, stay in L2 where a whole shared panel comes from L3 (measured 1-2 %
// slower on square SGEMMs). Nor is a panel past kSharedPanelBytes.
constexpr int64_t kSharedPanelBytes = int64_t{32} << 20;

template <typename T>
SharedPanel<T> pack_shared(const KernelSpec<T>& ks, int64_t extent, int64_t k, const GemmPackA<T>* produce_a,
                           const GemmPackB<T>* produce_b, int64_t parts) {
  const int width = produce_a != nullptr ? ks.mr : ks.nr;
  const int64_t slivers = (extent + width - 1) / width, padded = slivers * width;
  if (padded * k * static_cast<int64_t>(sizeof(T)) > kSharedPanelBytes) return {};
  T* data = scratch<T>(2, padded * k);
  const int64_t kc_block = depth_block(k, ks.kc);
  const int64_t depth_blocks = (k + kc_block - 1) / kc_block;
  // Tasks: (depth block, run of slivers), `parts` runs per depth block.
  const int64_t runs = std::min(parts, slivers);
  parallel_for(0, depth_blocks * runs, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t pc = t / runs * kc_block, kc = std::min(kc_block, k - pc), run = t % runs;
      const int64_t first = slivers * run / runs * width, last = std::min(extent, slivers * (run + 1) / runs * width);
      T* dst = data + pc * padded + first * kc;
      if (produce_a != nullptr) {
        (*produce_a)(first, last - first, pc, kc, width, dst);
      } else {
        (*produce_b)(pc, kc, first, last - first, width, dst);
      }
    }
  });
  return {data, padded};
}

template <typename T>
void gemm_packed(const KernelSpec<T>& ks, int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a,
                 MatrixRef<const T> b, T beta, MatrixRef<T> c, Producers<T> producers = {}) {
  // Cut C into `parts` slabs along its longer side (in whole register tiles), one per thread.
  // Each thread packs its own A and B blocks (but see pack_shared), so the threads never wait on
  // each other.
  const int64_t tiles_m = (m + ks.mr - 1) / ks.mr;
  const int64_t tiles_n = (n + ks.nr - 1) / ks.nr;
  const bool split_n = tiles_n * ks.nr >= tiles_m * ks.mr;
  const int64_t tiles = split_n ? tiles_n : tiles_m;
  const int64_t parts = m * n * k < kParallelMinWork ? 1 : std::min<int64_t>(num_threads(), tiles);
  SharedPanel<T> shared_a, shared_b;
  if (parts > 1 && shared_panels_enabled()) {
    if (split_n && producers.a != nullptr) shared_a = pack_shared<T>(ks, m, k, producers.a, nullptr, parts);
    if (!split_n && producers.b != nullptr) shared_b = pack_shared<T>(ks, n, k, nullptr, producers.b, parts);
  }
  parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t part = p0; part < p1; ++part) {
      const int64_t t0 = tiles * part / parts, t1 = tiles * (part + 1) / parts;
      if (split_n) {
        gemm_slab<T>(ks, 0, m, t0 * ks.nr, std::min(n, t1 * ks.nr), k, alpha, a, b, producers, beta, c, shared_a,
                     shared_b);
      } else {
        gemm_slab<T>(ks, t0 * ks.mr, std::min(m, t1 * ks.mr), 0, n, k, alpha, a, b, producers, beta, c, shared_a,
                     shared_b);
      }
    }
  });
}

}  // namespace

template <typename T>
KernelSpec<T> kernel_spec(GemmKernel kernel) {
  if constexpr (std::is_same_v<T, float>) {
    if (kernel == GemmKernel::avx512_intel) return avx512_intel_spec_f32();
    if (kernel == GemmKernel::avx512) return avx512_spec_f32();
    if (kernel == GemmKernel::avx2) return avx2_spec_f32();
  } else {
    if (kernel == GemmKernel::avx512_intel) return avx512_intel_spec_f64();
    if (kernel == GemmKernel::avx512) return avx512_spec_f64();
    if (kernel == GemmKernel::avx2) return avx2_spec_f64();
  }
  return portable_spec(T(0));
}

template <typename T>
void gemm_with_spec(const KernelSpec<T>& spec, int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a,
                    MatrixRef<const T> b, T beta, MatrixRef<T> c) {
  LOUPE_CHECK(spec.mr * spec.nr <= kMaxTile && spec.mr > 0 && spec.nr > 0 && spec.mc > 0 && spec.kc > 0 && spec.nc > 0,
              "gemm: kernel spec ", spec.name, " has a tile or blocking outside the driver's limits");
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_c(m, n, beta, c);
    return;
  }
  gemm_packed<T>(spec, m, n, k, alpha, a, b, beta, c);
}

template KernelSpec<float> kernel_spec<float>(GemmKernel);
template KernelSpec<double> kernel_spec<double>(GemmKernel);
template void gemm_with_spec<float>(const KernelSpec<float>&, int64_t, int64_t, int64_t, float, MatrixRef<const float>,
                                    MatrixRef<const float>, float, MatrixRef<float>);
template void gemm_with_spec<double>(const KernelSpec<double>&, int64_t, int64_t, int64_t, double,
                                     MatrixRef<const double>, MatrixRef<const double>, double, MatrixRef<double>);

}  // namespace gemm_detail

template <typename T>
void gemm_with(GemmKernel kernel, int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a,
               MatrixRef<const T> b, T beta, MatrixRef<T> c) {
  if (m == 0 || n == 0) return;
  // Never run instructions this CPU lacks: an unavailable kernel falls back to the best one.
  if (!gemm_kernel_available(kernel)) kernel = gemm_best_kernel();
  if (kernel == GemmKernel::reference) {
    gemm_reference<T>(m, n, k, alpha, a, b, beta, c);
    return;
  }
  if (k == 0) {
    gemm_detail::scale_c(m, n, beta, c);
    return;
  }
  // The micro-kernels store rows of C with unit stride. A column-major C (say, the transpose of
  // a row-major result) is computed as C^T = B^T A^T instead, which is row-major.
  if (c.col_stride != 1 && c.row_stride == 1) {
    std::swap(m, n);
    std::swap(a, b);
    std::swap(a.row_stride, a.col_stride);
    std::swap(b.row_stride, b.col_stride);
    std::swap(c.row_stride, c.col_stride);
  }
  gemm_detail::gemm_packed<T>(gemm_detail::kernel_spec<T>(kernel), m, n, k, alpha, a, b, beta, c);
}

template <typename T>
void gemm(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, MatrixRef<const T> b, T beta,
          MatrixRef<T> c) {
  gemm_with<T>(gemm_selected_kernel(), m, n, k, alpha, a, b, beta, c);
}

template <typename T>
void gemm_pack_b_block(int nr, int64_t kc, int64_t nc, MatrixRef<const T> b, T* packed) {
  gemm_detail::pack_b<T>(nr, kc, nc, b, packed);
}

template <typename T>
void gemm_produced(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, const GemmPackA<T>* pack_a,
                   MatrixRef<const T> b, const GemmPackB<T>* pack_b, T beta, MatrixRef<T> c) {
  LOUPE_CHECK(c.col_stride == 1, "gemm_produced: C must have unit column stride");
  if (m == 0 || n == 0) return;
  GemmKernel kernel = gemm_selected_kernel();
  if (kernel == GemmKernel::reference) {
    // The reference loop wants matrices: the producers write them whole with slivers of one row
    // of A (packed[i * k + p] = A(i, p): row-major) and one column of B (packed[j * k + p] =
    // B(p, j): column-major).
    std::vector<T> whole_a, whole_b;
    if (pack_a != nullptr) {
      whole_a.resize(static_cast<size_t>(m * k));
      if (k > 0) (*pack_a)(0, m, 0, k, 1, whole_a.data());
      a = {whole_a.data(), k, 1};
    }
    if (pack_b != nullptr) {
      whole_b.resize(static_cast<size_t>(k * n));
      if (k > 0) (*pack_b)(0, k, 0, n, 1, whole_b.data());
      b = {whole_b.data(), 1, k};
    }
    gemm_reference<T>(m, n, k, alpha, a, b, beta, c);
    return;
  }
  if (k == 0) {
    gemm_detail::scale_c(m, n, beta, c);
    return;
  }
  gemm_detail::gemm_packed<T>(gemm_detail::kernel_spec<T>(kernel), m, n, k, alpha, a, b, beta, c, {pack_a, pack_b});
}

template <typename T>
void gemm_packed_b(int64_t m, int64_t n, int64_t k, T alpha, MatrixRef<const T> a, const GemmPackB<T>& pack_b, T beta,
                   MatrixRef<T> c) {
  gemm_produced<T>(m, n, k, alpha, a, nullptr, {nullptr, 0, 0}, &pack_b, beta, c);
}

template void gemm<float>(int64_t, int64_t, int64_t, float, MatrixRef<const float>, MatrixRef<const float>, float,
                          MatrixRef<float>);
template void gemm<double>(int64_t, int64_t, int64_t, double, MatrixRef<const double>, MatrixRef<const double>,
                           double, MatrixRef<double>);
template void gemm_pack_b_block<float>(int, int64_t, int64_t, MatrixRef<const float>, float*);
template void gemm_pack_b_block<double>(int, int64_t, int64_t, MatrixRef<const double>, double*);
template void gemm_produced<float>(int64_t, int64_t, int64_t, float, MatrixRef<const float>, const GemmPackA<float>*,
                                   MatrixRef<const float>, const GemmPackB<float>*, float, MatrixRef<float>);
template void gemm_produced<double>(int64_t, int64_t, int64_t, double, MatrixRef<const double>,
                                    const GemmPackA<double>*, MatrixRef<const double>, const GemmPackB<double>*, double,
                                    MatrixRef<double>);
template void gemm_packed_b<float>(int64_t, int64_t, int64_t, float, MatrixRef<const float>, const GemmPackB<float>&,
                                   float, MatrixRef<float>);
template void gemm_packed_b<double>(int64_t, int64_t, int64_t, double, MatrixRef<const double>,
                                    const GemmPackB<double>&, double, MatrixRef<double>);
template void gemm_with<float>(GemmKernel, int64_t, int64_t, int64_t, float, MatrixRef<const float>,
                               MatrixRef<const float>, float, MatrixRef<float>);
template void gemm_with<double>(GemmKernel, int64_t, int64_t, int64_t, double, MatrixRef<const double>,
                                MatrixRef<const double>, double, MatrixRef<double>);

}  // namespace loupe::cpu
