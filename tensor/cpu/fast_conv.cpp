// Fast convolution kernels: im2col + GEMM over blocks of images. See fast_conv.hpp.
//
// The forward pass and the weight gradient never write the im2col matrix: its values go straight
// into the GEMM's packed B slivers through a packing callback (im2col_packer and
// im2col_transposed_packer with gemm_packed_b), which saves writing and reading back a matrix of
// several megabytes per image block (1x1 kernels excepted: fuses_im2col). Backward-data runs as a
// forward convolution with flipped weights when the stride is 1 and a group has >= 128 input
// channels; otherwise it writes dcols and scatters it back (col2im).
//
// Parallelism: whole image blocks go to threads when there are enough of them (each GEMM then
// runs on one thread); otherwise the GEMM, im2col, col2im and the block gather / scatter split
// their own work (over tiles of C, or (image, row) / (image, channel) pairs that each write their
// own memory). Nothing depends on the thread count: forward and backward-data compute every
// output as one GEMM dot product in a fixed order however the columns are split, and the weight
// gradient sums its blocks into partial sums fixed by the shape.
#include "tensor/cpu/fast_conv.hpp"

#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "tensor/cpu/copy_short.hpp"
#include "tensor/cpu/depthwise_conv.hpp"
#include "tensor/cpu/gemm.hpp"
#include "tensor/cpu/host_allocator.hpp"
#include "tensor/cpu/output_blocks.hpp"
#include "tensor/cpu/register_transpose.hpp"
#include "tensor/cpu/winograd_conv.hpp"
#include "tensor/parallel.hpp"

namespace loupe::cpu::fast {

namespace {

// A block aims for this many GEMM columns (a thin GEMM wastes its packing)...
constexpr int64_t kTargetColumns = 2048;
// ...with a cols buffer small enough to stay in the last-level cache between im2col and GEMM.
constexpr int64_t kColsBudgetBytes = int64_t{16} << 20;

// Elements copied per parallel task, roughly.
constexpr int64_t kCopyGrain = 16384;

int64_t task_grain(int64_t elements_per_task) {
  return std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(elements_per_task, 1));
}

// im2col_segment for stride 1 and an output as wide as the input: output position q of the
// flattened plane reads input position q + off_h * W + off_w, so the valid part of [q0, q1) is
// one contiguous copy (instead of one short copy per output row); the columns that wrapped into
// a neighbouring row, and the rows above and below the input, are then zeroed.
template <typename T>
void im2col_segment_flat(const ConvGeometry& g, const T* plane, int64_t ki, int64_t kj, int64_t q0, int64_t q1,
                         T* row) {
  const int64_t off_h = ki * g.dilation_h - g.pad_h, off_w = kj * g.dilation_w - g.pad_w, width = g.out_w;
  int64_t ow0, ow1, oh0, oh1;
  valid_range(g.out_w, 1, off_w, g.width, ow0, ow1);
  valid_range(g.out_h, 1, off_h, g.height, oh0, oh1);
  if (oh0 >= oh1 || ow0 >= ow1) {
    std::fill(row, row + (q1 - q0), T(0));
    return;
  }
  const int64_t a = std::clamp(oh0 * width + ow0, q0, q1), b = std::clamp((oh1 - 1) * width + ow1, a, q1);
  std::fill(row, row + (a - q0), T(0));
  std::copy(plane + a + off_h * g.width + off_w, plane + b + off_h * g.width + off_w, row + (a - q0));
  std::fill(row + (b - q0), row + (q1 - q0), T(0));
  for (int64_t oh = std::max(oh0, a / width); oh < oh1 && oh * width < b; ++oh) {
    const int64_t lo = oh * width;  // zero [lo, lo + ow0) and [lo + ow1, lo + width), within [a, b)
    for (auto [z0, z1] : {std::pair{lo, lo + ow0}, std::pair{lo + ow1, lo + width}}) {
      z0 = std::max(z0, a), z1 = std::min(z1, b);
      if (z0 < z1) std::fill(row + (z0 - q0), row + (z1 - q0), T(0));
    }
  }
}

// dst[i] = src[2 i] for i < n: a stride-2 convolution's im2col row (ResNet's strided 3x3 layers
// and its 7x7 stem), 8 at a time by a register deinterleave instead of one scalar copy each
// (measured: the stem's forward and weight gradient 1.2x, layer2's strided ones 1.1x faster;
// rows of 7 and 14, mostly tail, gained nothing from a masked vector tail, so it has none).
// Reads src[0 .. 2 n - 2] only: a vector step is taken only while its 16 loaded floats stay
// within that range.
template <typename T>
void copy_even(const T* src, int64_t n, T* dst) {
  int64_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    for (; i + 9 <= n; i += 8) {  // loads src[2 i .. 2 i + 15], 2 i + 15 <= 2 n - 3
      _mm256_storeu_ps(dst + i, even_floats(_mm256_loadu_ps(src + 2 * i), _mm256_loadu_ps(src + 2 * i + 8)));
    }
  }
  for (; i < n; ++i) dst[i] = src[2 * i];
}

// Output positions [q0, q1) of one im2col row (tap (ki, kj) of one plane): row[q - q0].
// Stride 1 with an output as wide as the input takes im2col_segment_flat's single copy.
template <typename T>
void im2col_segment(const ConvGeometry& g, const T* plane, int64_t ki, int64_t kj, int64_t q0, int64_t q1, T* row) {
  if (g.stride_h == 1 && g.stride_w == 1 && g.out_w == g.width) {
    im2col_segment_flat(g, plane, ki, kj, q0, q1, row);
    return;
  }
  const int64_t off_h = ki * g.dilation_h - g.pad_h, off_w = kj * g.dilation_w - g.pad_w;
  int64_t ow0, ow1;
  valid_range(g.out_w, g.stride_w, off_w, g.width, ow0, ow1);
  for (int64_t q = q0; q < q1;) {
    const int64_t oh = q / g.out_w, first = q % g.out_w, last = std::min(g.out_w, first + (q1 - q));
    T* dst = row + (q - q0) - first;  // dst[ow] is output position (oh, ow)
    const int64_t ih = oh * g.stride_h + off_h;
    if (ih < 0 || ih >= g.height) {
      std::fill(dst + first, dst + last, T(0));
    } else {
      const T* src = plane + ih * g.width;
      const int64_t a = std::clamp(ow0, first, last), b = std::clamp(ow1, a, last);
      std::fill(dst + first, dst + a, T(0));
      if (g.stride_w == 1) {
        std::copy(src + a + off_w, src + b + off_w, dst + a);
      } else if (g.stride_w == 2) {
        copy_even(src + 2 * a + off_w, b - a, dst + a);
      } else {
        for (int64_t ow = a; ow < b; ++ow) dst[ow] = src[ow * g.stride_w + off_w];
      }
      std::fill(dst + b, dst + last, T(0));
    }
    q += last - first;
  }
}

// cols (rows, nb * ncols) from images [n0, n0 + nb) of group grp, as a matrix (row stride
// nb * ncols): for 1x1 kernels, which do not take the fused packing (fuses_im2col).
template <typename T>
void im2col_block(const ConvGeometry& g, const T* x, int64_t n0, int64_t nb, int64_t grp, T* cols) {
  const int64_t kernel = g.kernel_h * g.kernel_w, ncols = g.col_cols(), ld = nb * ncols;
  const int64_t plane = g.height * g.width;
  parallel_for(0, g.col_rows() * nb, task_grain(ncols), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / nb, i = t % nb;
      const int64_t c = r / kernel, ki = (r % kernel) / g.kernel_w, kj = r % g.kernel_w;
      im2col_segment(g, x + ((n0 + i) * g.in_channels + grp * g.group_in() + c) * plane, ki, kj, 0, ncols,
                     cols + r * ld + i * ncols);
    }
  });
}

// Whether forward and backward-weight generate im2col straight into the GEMM's packing. Not for
// 1x1 kernels (the strided downsamples): their im2col is a cheap subsample whose matrix is
// small, and generating it inside the GEMM (once per thread when the GEMM splits its rows)
// measured 1.2-2x slower than materialising it.
inline bool fuses_im2col(const ConvGeometry& g) { return g.kernel_h * g.kernel_w > 1; }

// The im2col matrix cols (rows, nb * ncols) of images [n0, n0 + nb), group grp, produced
// straight into the GEMM's packed slivers (gemm_packed_b) instead of into a matrix that the
// GEMM then reads back and packs: the cols matrix (megabytes, past L2) is never written. For
// each requested row, the part of every image's row that the column range touches is generated
// into a buffer (in L1) and copied into the slivers in runs that end at sliver boundaries.
template <typename T>
GemmPackB<T> im2col_packer(const ConvGeometry& g, const T* x, int64_t n0, int64_t grp) {
  return [&g, x, n0, grp](int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* packed) {
    const int64_t kernel = g.kernel_h * g.kernel_w, ncols = g.col_cols(), plane = g.height * g.width;
    std::vector<T> row(static_cast<size_t>(std::min(ncols, nc)));
    const int64_t i_first = j0 / ncols, i_last = (j0 + nc - 1) / ncols;
    for (int64_t p = 0; p < kc; ++p) {
      const int64_t r = p0 + p;
      const int64_t c = r / kernel, ki = (r % kernel) / g.kernel_w, kj = r % g.kernel_w;
      for (int64_t i = i_first; i <= i_last; ++i) {
        const int64_t a = std::max(j0, i * ncols), b = std::min(j0 + nc, (i + 1) * ncols);
        im2col_segment(g, x + ((n0 + i) * g.in_channels + grp * g.group_in() + c) * plane, ki, kj, a - i * ncols,
                       b - i * ncols, row.data());
        for (int64_t jr = a - j0; jr < b - j0;) {
          const int64_t s = jr / nr, off = jr % nr, len = std::min<int64_t>(nr - off, b - j0 - jr);
          copy_short(row.data() + (j0 + jr - a), len, packed + s * nr * kc + p * nr + off);
          jr += len;
        }
      }
    }
    if (nc % nr != 0) {  // the last sliver's columns past the block are zero
      T* last = packed + nc / nr * nr * kc;
      for (int64_t p = 0; p < kc; ++p) std::fill(last + p * nr + nc % nr, last + (p + 1) * nr, T(0));
    }
  };
}

// The transpose of the im2col matrix, cols^T (nb * ncols, rows), as the B operand of the weight
// gradient's GEMM, produced straight into the packed slivers: for each sliver (nr rows of cols,
// i.e. nr taps of input channels), the requested column range of those rows is generated into a
// small column-major scratch block (in L1) and packed by the GEMM's own register transpose.
template <typename T>
GemmPackB<T> im2col_transposed_packer(const ConvGeometry& g, const T* x, int64_t n0, int64_t grp) {
  return [&g, x, n0, grp](int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* packed) {
    const int64_t kernel = g.kernel_h * g.kernel_w, ncols = g.col_cols(), plane = g.height * g.width;
    std::vector<T> block(static_cast<size_t>(nr * kc));
    const int64_t i_first = p0 / ncols, i_last = (p0 + kc - 1) / ncols;
    for (int64_t s = 0; s < nc; s += nr) {
      const int64_t count = std::min<int64_t>(nr, nc - s);
      for (int64_t jj = 0; jj < count; ++jj) {
        const int64_t r = j0 + s + jj;
        const int64_t c = r / kernel, ki = (r % kernel) / g.kernel_w, kj = r % g.kernel_w;
        for (int64_t i = i_first; i <= i_last; ++i) {
          const int64_t a = std::max(p0, i * ncols), b = std::min(p0 + kc, (i + 1) * ncols);
          im2col_segment(g, x + ((n0 + i) * g.in_channels + grp * g.group_in() + c) * plane, ki, kj, a - i * ncols,
                         b - i * ncols, block.data() + jj * kc + (a - p0));
        }
      }
      // block holds B(p, jj) = cols(r0 + jj, p0 + p) at block[jj * kc + p]: column-major.
      gemm_pack_b_block<T>(nr, kc, count, {block.data(), 1, kc}, packed + s * kc);
    }
  };
}

// grad_x planes of images [n0, n0 + nb), group grp = col2im of dcols (rows, nb * ncols); each
// (image, channel) plane is zeroed and accumulated by one task, tap by tap.
//
// When both strides are 1 and the output is as wide as the input ("same" padding along the
// width), the input position of every output position of a tap is the output position plus one
// constant (off_h * W + off_w in the flattened plane), so the tap's whole plane is one long
// contiguous add instead of one short add per row (rows of 7-28 elements cost more in loop
// overhead than in arithmetic). The output columns whose input column falls outside the row
// would wrap into the next row: they are zeroed in dcols first (dcols is scratch, and each of its
// rows is read by this task only), so they add nothing, which is what skipping them does.
template <typename T>
void col2im_block(const ConvGeometry& g, T* dcols, int64_t n0, int64_t nb, int64_t grp, T* grad_x) {
  const int64_t kernel = g.kernel_h * g.kernel_w, ncols = g.col_cols(), ld = nb * ncols;
  const int64_t plane = g.height * g.width, cin = g.group_in();
  const bool flat = g.stride_h == 1 && g.stride_w == 1 && g.out_w == g.width;
  parallel_for(0, nb * cin, task_grain(kernel * ncols), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i = t / cin, c = t % cin;
      T* dst_plane = grad_x + ((n0 + i) * g.in_channels + grp * cin + c) * plane;
      std::fill_n(dst_plane, plane, T(0));
      for (int64_t k = 0; k < kernel; ++k) {
        const int64_t ki = k / g.kernel_w, kj = k % g.kernel_w;
        T* row = dcols + (c * kernel + k) * ld + i * ncols;
        const int64_t off_h = ki * g.dilation_h - g.pad_h, off_w = kj * g.dilation_w - g.pad_w;
        int64_t ow0, ow1;
        valid_range(g.out_w, g.stride_w, off_w, g.width, ow0, ow1);
        if (flat) {
          int64_t oh0, oh1;
          valid_range(g.out_h, 1, off_h, g.height, oh0, oh1);
          if (oh0 >= oh1 || ow0 >= ow1) continue;
          for (int64_t oh = oh0; oh < oh1; ++oh) {
            std::fill(row + oh * g.out_w, row + oh * g.out_w + ow0, T(0));
            std::fill(row + oh * g.out_w + ow1, row + (oh + 1) * g.out_w, T(0));
          }
          // From the first valid column of the first valid row to the last valid column of the
          // last one: every index stays inside this task's own plane (a wrapped column in
          // between lands on the neighbouring row of the same plane, adding its zero).
          T* __restrict dst = dst_plane + off_h * g.width + off_w;
          const T* __restrict src = row;
          for (int64_t q = oh0 * g.out_w + ow0; q < (oh1 - 1) * g.out_w + ow1; ++q) dst[q] += src[q];
          continue;
        }
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          const int64_t ih = oh * g.stride_h + off_h;
          if (ih < 0 || ih >= g.height) continue;
          T* __restrict dst = dst_plane + ih * g.width;
          const T* __restrict src = row + oh * g.out_w;
          if (g.stride_w == 1) {
            for (int64_t ow = ow0; ow < ow1; ++ow) dst[ow + off_w] += src[ow];
          } else {
            for (int64_t ow = ow0; ow < ow1; ++ow) dst[ow * g.stride_w + off_w] += src[ow];
          }
        }
      }
    }
  });
}

// blk (count, nb * ncols) <- channels [c0, c0 + count) of images [n0, n0 + nb) of t (N, channels, ncols).
template <typename T>
void gather_block(const T* t, int64_t channels, int64_t ncols, int64_t n0, int64_t nb, int64_t c0, int64_t count,
                  T* blk) {
  parallel_for(0, count * nb, task_grain(ncols), [&](int64_t t0, int64_t t1) {
    for (int64_t k = t0; k < t1; ++k) {
      const int64_t o = k / nb, i = k % nb;
      std::copy_n(t + ((n0 + i) * channels + c0 + o) * ncols, ncols, blk + (o * nb + i) * ncols);
    }
  });
}

// The inverse of gather_block, adding bias[c0 + o] (when given) on the way.
template <typename T>
void scatter_block(const T* blk, int64_t channels, int64_t ncols, int64_t n0, int64_t nb, int64_t c0, int64_t count,
                   const T* bias, T* t) {
  parallel_for(0, count * nb, task_grain(ncols), [&](int64_t t0, int64_t t1) {
    for (int64_t k = t0; k < t1; ++k) {
      const int64_t o = k / nb, i = k % nb;
      const T* src = blk + (o * nb + i) * ncols;
      T* dst = t + ((n0 + i) * channels + c0 + o) * ncols;
      const T b = bias != nullptr ? bias[c0 + o] : T(0);
      for (int64_t q = 0; q < ncols; ++q) dst[q] = src[q] + b;
    }
  });
}

// A 1x1 stride-1 convolution of one image at a time needs no copy of x at all.
bool reads_x_in_place(const ConvGeometry& g, int64_t nb) { return nb == 1 && g.is_pointwise(); }

}  // namespace

int64_t conv_images_per_block(const ConvGeometry& g, int64_t bytes) {
  const int64_t ncols = std::max<int64_t>(g.col_cols(), 1);
  int64_t nb = std::min(g.batch, (kTargetColumns + ncols - 1) / ncols);
  const int64_t per_image = g.col_rows() * ncols * bytes;
  while (nb > 1 && nb * per_image > kColsBudgetBytes) --nb;
  return std::max<int64_t>(nb, 1);
}

namespace {

// Forward and backward-data: blocks of images (output_blocks.hpp explains the split).
OutputBlocks image_blocks(const ConvGeometry& g, int64_t bytes) {
  return output_blocks(g.batch, conv_images_per_block(g, bytes));
}

// Calls body(n0, nb, scratch_a, scratch_b) for every block, in parallel when blocks.parallel;
// the scratch buffers belong to the calling thread.
template <typename T, typename Body>
void for_each_block(const ConvGeometry& g, const OutputBlocks& blocks, Body&& body) {
  run_blocks(blocks, [&](int64_t b0, int64_t b1) {
    HostScratch<T> scratch_a, scratch_b;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n0 = b * blocks.size;
      body(n0, std::min(blocks.size, g.batch - n0), scratch_a, scratch_b);
    }
  });
}

// A block's scratch with room for n elements (not zero-filled; host_allocator.hpp).
template <typename T>
T* sized(HostScratch<T>& buffer, int64_t n) {
  return buffer.reserve(static_cast<size_t>(n));
}

// Backward-weight sums over images, so its blocks must not follow the thread count: blocks of
// conv_images_per_block images, dealt round-robin to a fixed number of partial sums (chosen from
// the shape alone); each partial accumulates its blocks in order, the partials are added in order.
constexpr int64_t kMaxWeightPartials = 8;
constexpr int64_t kWeightPartialBytes = int64_t{64} << 20;
// Backward-data of a stride-1 convolution runs as a forward convolution (flipped weights) from
// this many input channels per group on (measured: 0.75x the time at 128 and 256 channels, 1.07x
// at 64, on ResNet18's 3x3 layers).
constexpr int64_t kMinChannelsForFlippedForward = 128;
// Several blocks are rounded to a multiple of this many, so that they share out evenly over 2 or
// 4 threads (the partial sums run in parallel, one GEMM per thread).
constexpr int64_t kWeightBlockMultiple = 4;

}  // namespace

namespace {

// The weights of a forward convolution g: a (O, C / groups, kh, kw) array, or (flipped) those of
// the convolution whose input gradient g computes (see conv2d_backward_input), read with their
// taps reversed and their channel axes swapped, straight into the GEMM's packing (flipped_packer):
// writing the flipped copy out first cost as much as a fifth of the GEMM on ResNet18's layer4.
template <typename T>
struct ForwardWeights {
  const T* data;
  bool flipped;
};

// Rows [i0, i0 + 8) of A for the output channels o whose columns meet [p0, p0 + kc): T = float,
// 8-row slivers (the AVX-512 kernel's mr). For each o the 8 x taps block of the original is
// contiguous (input channels i0.., taps apart); it is transposed 8 taps at a time in registers
// into tile[t][i] = A(i0 + i, o * taps + t) (taps reversed), and the rows inside the range copied
// out. Scalar, one element at a time, this packing took a quarter of the GEMMs' time at batch 1.
inline void flipped_sliver_8(const float* original, int64_t stride_o, int64_t taps, int64_t p0, int64_t kc,
                             float* packed) {
  constexpr int64_t kMaxTaps = 64;
  alignas(32) float tile[kMaxTaps][8];
  for (int64_t o = p0 / taps; o * taps < p0 + kc; ++o) {
    const float* block = original + o * stride_o;  // block[i * taps + u] = original tap u of row i
    int64_t u0 = 0;
    for (; u0 + 8 <= taps; u0 += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(block + i * taps + u0);
      transpose8(r);  // r[u] = tap u0 + u of the 8 rows
      for (int u = 0; u < 8; ++u) _mm256_store_ps(tile[taps - 1 - (u0 + u)], r[u]);
    }
    for (int64_t u = u0; u < taps; ++u) {
      for (int i = 0; i < 8; ++i) tile[taps - 1 - u][i] = block[i * taps + u];
    }
    const int64_t t_lo = std::max<int64_t>(0, p0 - o * taps), t_hi = std::min(taps, p0 + kc - o * taps);
    for (int64_t t = t_lo; t < t_hi; ++t) {
      _mm256_storeu_ps(packed + (o * taps + t - p0) * 8, _mm256_load_ps(tile[t]));
    }
  }
}

// A(c, o * taps + t) = original[grp][o][c][taps - 1 - t] for group grp of the flipped problem g,
// whose input channels are the original's output channels: the GEMM's A operand, as GemmPackA.
template <typename T>
GemmPackA<T> flipped_packer(const ConvGeometry& g, const T* original, int64_t grp) {
  return [&g, original, grp](int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, T* packed) {
    const int64_t taps = g.kernel_h * g.kernel_w;
    const int64_t orig_cout = g.group_in(), orig_cin = g.group_out();  // the original's, per group
    for (int64_t s = 0; s < mc; s += mr) {
      const int64_t rows = std::min<int64_t>(mr, mc - s);
      T* dst = packed + s * kc;  // sliver s / mr
      const T* first_row = original + (grp * orig_cout * orig_cin + i0 + s) * taps;
      if constexpr (std::is_same_v<T, float>) {
        if (mr == 8 && rows == 8 && taps <= 64) {
          flipped_sliver_8(first_row, orig_cin * taps, taps, p0, kc, dst);
          continue;
        }
      }
      int64_t o = p0 / taps, t = p0 % taps;
      for (int64_t p = 0; p < kc; ++p) {
        // Rows i0 + s + i are consecutive input channels of the original: `taps` apart.
        const T* src = first_row + o * orig_cin * taps + (taps - 1 - t);
        T* col = dst + p * mr;
        for (int64_t i = 0; i < rows; ++i) col[i] = src[i * taps];
        for (int64_t i = rows; i < mr; ++i) col[i] = T(0);
        if (++t == taps) t = 0, ++o;
      }
    }
  };
}

template <typename T>
void forward_impl(const ConvGeometry& g, const T* x, ForwardWeights<T> weights, const T* bias, T* out) {
  const T* weight = weights.data;
  if (!weights.flipped && depthwise::applies(g)) {  // one input channel per group: the direct kernel, no GEMM
    depthwise::forward<T>(g, x, weight, bias, out);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (winograd::applies(g)) {  // 3x3, stride 1: 16 smaller GEMMs instead of im2col's one
      winograd::forward(g, x, weight, weights.flipped, bias, out);
      return;
    }
  }
  const int64_t cin = g.group_in(), cout = g.group_out(), rows = g.col_rows(), ncols = g.col_cols();
  const int64_t plane = g.height * g.width;
  for_each_block<T>(g, image_blocks(g, sizeof(T)),
                    [&](int64_t n0, int64_t nb, HostScratch<T>& cols, HostScratch<T>& out_blk) {
    const int64_t ld = nb * ncols;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* b = x + (n0 * g.in_channels + grp * cin) * plane;  // (rows, ld) when read in place
      const bool fused = !reads_x_in_place(g, nb) && fuses_im2col(g);
      if (!reads_x_in_place(g, nb) && !fused) {
        im2col_block(g, x, n0, nb, grp, sized(cols, rows * ld));
        b = cols.data();
      }
      // Fused: the im2col matrix goes straight into the GEMM's packing (im2col_packer).
      const GemmPackB<T> packer = fused ? im2col_packer(g, x, n0, grp) : GemmPackB<T>();
      const MatrixRef<const T> w{weights.flipped ? nullptr : weight + grp * cout * rows, rows, 1};
      const GemmPackA<T> flipped = weights.flipped ? flipped_packer(g, weight, grp) : GemmPackA<T>();
      auto product = [&](T beta, MatrixRef<T> c_out) {
        gemm_produced<T>(cout, ld, rows, T(1), w, weights.flipped ? &flipped : nullptr, {fused ? nullptr : b, ld, 1},
                         fused ? &packer : nullptr, beta, c_out);
      };
      if (nb == 1) {
        // One image: the GEMM writes the output in place, and the bias is added after it, as
        // scatter_block adds it after a block's GEMM. (Starting the GEMM on top of the bias
        // rounded (bias + first depth block) + next depth block, a different sum from the
        // blocks' (depth blocks) + bias: with more than one depth block, 1 and 2 threads, which
        // split the batch into different blocks, gave different bits.)
        T* c = out + (n0 * g.out_channels + grp * cout) * ncols;
        product(T(0), {c, ncols, 1});
        if (bias != nullptr) {
          for (int64_t o = 0; o < cout; ++o) {
            const T b = bias[grp * cout + o];
            T* row = c + o * ncols;
            for (int64_t q = 0; q < ncols; ++q) row[q] += b;
          }
        }
      } else {
        T* blk = sized(out_blk, cout * ld);
        product(T(0), {blk, ld, 1});
        scatter_block(blk, g.out_channels, ncols, n0, nb, grp * cout, cout, bias, out);
      }
    }
  });
}

}  // namespace

template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* out) {
  forward_impl<T>(g, x, {weight, false}, bias, out);
}

template <typename T>
void conv2d_backward_input(const ConvGeometry& g, const T* grad_out, const T* weight, T* grad_x) {
  if (depthwise::applies(g)) {
    depthwise::backward_input<T>(g, grad_out, weight, grad_x);
    return;
  }
  // With stride 1 the input gradient is a forward convolution: grad_out, padded by
  // (k - 1) d - p on each side, convolved with the weights flipped in space and with input and
  // output channels swapped (per group). That runs the forward pass's fused im2col packing (or
  // Winograd's transforms) and never writes dcols or scatters it back (col2im). Its GEMM has the
  // input channels as rows, so with few of them (ResNet18's 64) the dcols route's taller GEMM is
  // as fast or faster, unless the forward convolution runs by Winograd.
  ConvGeometry t = g;
  t.in_channels = g.out_channels, t.out_channels = g.in_channels;
  t.height = g.out_h, t.width = g.out_w, t.out_h = g.height, t.out_w = g.width;
  t.pad_h = (g.kernel_h - 1) * g.dilation_h - g.pad_h, t.pad_w = (g.kernel_w - 1) * g.dilation_w - g.pad_w;
  bool winograd_forward = false;
  if constexpr (std::is_same_v<T, float>) winograd_forward = winograd::applies(t);
  if (g.stride_h == 1 && g.stride_w == 1 && g.pad_h <= (g.kernel_h - 1) * g.dilation_h &&
      g.pad_w <= (g.kernel_w - 1) * g.dilation_w &&
      (g.group_in() >= kMinChannelsForFlippedForward || winograd_forward)) {
    forward_impl<T>(t, grad_out, {weight, true}, nullptr, grad_x);
    return;
  }
  const int64_t cin = g.group_in(), cout = g.group_out(), rows = g.col_rows(), ncols = g.col_cols();
  const int64_t plane = g.height * g.width;
  for_each_block<T>(g, image_blocks(g, sizeof(T)),
                    [&](int64_t n0, int64_t nb, HostScratch<T>& dcols, HostScratch<T>& grad_blk) {
    const int64_t ld = nb * ncols;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* go = grad_out + (n0 * g.out_channels + grp * cout) * ncols;  // (cout, ld) for one image
      if (nb > 1) {
        gather_block(grad_out, g.out_channels, ncols, n0, nb, grp * cout, cout, sized(grad_blk, cout * ld));
        go = grad_blk.data();
      }
      // weight_g^T (rows, cout): weight_g (cout, rows) with its strides swapped.
      const MatrixRef<const T> wt{weight + grp * cout * rows, 1, rows};
      if (reads_x_in_place(g, nb)) {
        T* gx = grad_x + (n0 * g.in_channels + grp * cin) * plane;
        gemm<T>(rows, ncols, cout, T(1), wt, {go, ncols, 1}, T(0), {gx, ncols, 1});
        continue;
      }
      T* d = sized(dcols, rows * ld);
      gemm<T>(rows, ld, cout, T(1), wt, {go, ld, 1}, T(0), {d, ld, 1});
      col2im_block(g, d, n0, nb, grp, grad_x);
    }
  });
}

template <typename T>
void conv2d_backward_weight(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_weight) {
  if (depthwise::applies(g)) {
    depthwise::backward_weight<T>(g, grad_out, x, grad_weight);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (winograd::applies_to_weight_gradient(g)) {  // 16 GEMMs over Winograd tiles instead of im2col's one
      winograd::backward_weight(g, grad_out, x, grad_weight);
      return;
    }
  }
  const int64_t cin = g.group_in(), cout = g.group_out(), rows = g.col_rows(), ncols = g.col_cols();
  const int64_t plane = g.height * g.width;
  const int64_t weight_size = g.out_channels * rows;
  if (g.batch == 0) {  // a sum over no images
    std::fill_n(grad_weight, weight_size, T(0));
    return;
  }
  int64_t block = conv_images_per_block(g, sizeof(T));
  int64_t blocks = (g.batch + block - 1) / block;
  if (blocks > 1 && blocks % kWeightBlockMultiple != 0) {
    // 2 or 3 blocks (say) would leave one of two or four threads idle for a third of the time:
    // smaller blocks, as many as the next multiple of kWeightBlockMultiple the batch allows. From
    // the shape alone, like everything that decides the summation order.
    const int64_t wanted = std::min(g.batch, (blocks + kWeightBlockMultiple - 1) / kWeightBlockMultiple * kWeightBlockMultiple);
    block = (g.batch + wanted - 1) / wanted;
    blocks = (g.batch + block - 1) / block;
  }
  const int64_t weight_bytes = weight_size * static_cast<int64_t>(sizeof(T));
  const int64_t partials =
      std::max<int64_t>(1, std::min({blocks, kMaxWeightPartials, kWeightPartialBytes / std::max<int64_t>(weight_bytes, 1)}));
  // Partial 0 is grad_weight itself; the others are scratch.
  std::vector<T> extra(static_cast<size_t>((partials - 1) * weight_size));
  parallel_for(0, partials, 1, [&](int64_t p0, int64_t p1) {
    HostScratch<T> cols, grad_blk;
    for (int64_t part = p0; part < p1; ++part) {
      T* dw = part == 0 ? grad_weight : extra.data() + (part - 1) * weight_size;
      for (int64_t b = part; b < blocks; b += partials) {
        const int64_t n0 = b * block, nb = std::min(block, g.batch - n0), ld = nb * ncols;
        for (int64_t grp = 0; grp < g.groups; ++grp) {
          const T* xb = x + (n0 * g.in_channels + grp * cin) * plane;
          const bool fused = !reads_x_in_place(g, nb) && fuses_im2col(g);
          if (!reads_x_in_place(g, nb) && !fused) {
            im2col_block(g, x, n0, nb, grp, sized(cols, rows * ld));
            xb = cols.data();
          }
          const T* go = grad_out + (n0 * g.out_channels + grp * cout) * ncols;
          if (nb > 1) {
            gather_block(grad_out, g.out_channels, ncols, n0, nb, grp * cout, cout, sized(grad_blk, cout * ld));
            go = grad_blk.data();
          }
          // dw_g (cout, rows) (+)= grad_blk (cout, ld) @ cols^T (ld, rows)
          const T beta = b == part ? T(0) : T(1);
          const MatrixRef<T> dw_g{dw + grp * cout * rows, rows, 1};
          if (!fused) {
            gemm<T>(cout, rows, ld, T(1), {go, ld, 1}, {xb, 1, ld}, beta, dw_g);
          } else {  // cols^T packed straight from x (im2col_transposed_packer)
            gemm_packed_b<T>(cout, rows, ld, T(1), {go, ld, 1}, im2col_transposed_packer(g, x, n0, grp), beta, dw_g);
          }
        }
      }
    }
  });
  if (partials > 1) {
    parallel_for(0, weight_size, kCopyGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T total = grad_weight[i];
        for (int64_t part = 1; part < partials; ++part) total += extra[static_cast<size_t>((part - 1) * weight_size + i)];
        grad_weight[i] = total;
      }
    });
  }
}

#define LOUPE_FAST_CONV_INSTANTIATE(T)                                                         \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*);      \
  template void conv2d_backward_input<T>(const ConvGeometry&, const T*, const T*, T*);         \
  template void conv2d_backward_weight<T>(const ConvGeometry&, const T*, const T*, T*);

LOUPE_FAST_CONV_INSTANTIATE(float)
LOUPE_FAST_CONV_INSTANTIATE(double)
#undef LOUPE_FAST_CONV_INSTANTIATE

}  // namespace loupe::cpu::fast
