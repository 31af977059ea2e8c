// Winograd F(2x2, 3x3) convolution. See winograd_conv.hpp.
//
// The matrices, for one dimension (the 2-d transform applies each to rows, then to columns):
//   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
//         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
//         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |        | 0    0    1   |
// so that for inputs d0..d3 and filter g0..g2 (a cross-correlation, as convolutions are here)
//   y0 = d0 g0 + d1 g1 + d2 g2 = m0 + m1 + m2,   y1 = d1 g0 + d2 g1 + d3 g2 = m1 - m2 - m3
// with m = (B^T d) . (G g).
//
// The weight gradient runs the transposed algorithm, F(3x3, 2x2), explained above backward_weight's
// helpers below.
//
// Layout of one block of tiles (a block is a run of "tile rows": one row of 2x2 output tiles of
// one image; blocks never split a tile row, so the transforms run along whole rows):
//   V[xi] (C, P) transformed input tiles,  M[xi] (O, P) their products with U[xi] (O, C; stored by columns),
// P = tile rows in the block * tiles per row, xi = 4 * a + b for row a and column b of the 4x4
// transformed tile. The transforms work on a whole tile row at once with the tiles' values in
// arrays (one per position), so that the compiler vectorises them across tiles.
#include "tensor/cpu/winograd_conv.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tensor/cpu/gemm.hpp"
#include "tensor/cpu/host_allocator.hpp"
#include "tensor/cpu/output_blocks.hpp"
#include "tensor/cpu/register_transpose.hpp"
#include "tensor/parallel.hpp"

namespace loupe::cpu::winograd {

namespace {

constexpr int64_t kTile = 2;      // outputs per tile side
constexpr int64_t kPatch = 4;     // inputs per tile side (tile + kernel - 1)
constexpr int64_t kPositions = kPatch * kPatch;
// V and M of one block together stay under this (a block per thread, both in the last-level
// cache while the GEMMs read V and the output transform reads M).
constexpr int64_t kBlockBytes = int64_t{8} << 20;
// Below this many channels the 16 GEMMs are too shallow (K = C) to gain over im2col's one.
constexpr int64_t kMinChannels = 32;
// From this output size on, Winograd runs the forward pass whatever the batch (ResNet18's 56x56
// and 28x28 layers: 0.9-1.0x im2col's time at batch 8, and faster in guided backprop at batch 1).
// Tiny outputs waste most of a tile (a 1x1 output uses one of its four).
constexpr int64_t kMinOutputSide = 16;
// Outputs from kMinWeightGradientSide (12) to 15 run by Winograd only with at least this many
// tiles in the batch and channels on both sides. Measured on ResNet18's 14x14 layer (2 threads,
// Zen 5, interleaved A/B): batch 8, forward and backward-data 1.02x faster (it was 1.1-1.2x slower
// before the input transform read the plane directly); integrated gradients (batch 25) 1.06x,
// SmoothGrad 1.04x faster; guided backprop (batch 1: 49 tiles) 0.93x, so small batches keep
// im2col. The 7x7 layer stays on im2col at any batch (0.77-0.84x at batch 8, IG 0.93x).
constexpr int64_t kMinSmallOutputTiles = 256;
constexpr int64_t kMinSmallOutputChannels = 64;
// The weight gradient gains from smaller outputs on: on ResNet18's 14x14 layer (256 channels) it
// took 0.7-0.8x im2col's time, on the 7x7 one (512 channels) 0.95-1.1x (a 7x7 output wastes 23 %
// of its 16 tiles).
constexpr int64_t kMinWeightGradientSide = 12;
// The weight gradient's partial sums (backward_weight): at most this many, within this many bytes,
// over a multiple of kPartialMultiple blocks of tile rows.
constexpr int64_t kMaxPartials = 8;
constexpr int64_t kPartialBytes = int64_t{64} << 20;
constexpr int64_t kPartialMultiple = 4;

bool enabled_by_environment() {
  static const bool enabled = [] {
    const char* env = std::getenv("LOUPE_CONV_WINOGRAD");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  return enabled;
}

struct Tiling {
  int64_t tiles_h, tiles_w;  // per image
  int64_t rows;              // tile rows in the whole batch: batch * tiles_h
};

Tiling tiling(const ConvGeometry& g) {
  const int64_t tiles_h = (g.out_h + kTile - 1) / kTile, tiles_w = (g.out_w + kTile - 1) / kTile;
  return {tiles_h, tiles_w, g.batch * tiles_h};
}

// U[xi] = G g G^T for every filter g = weight[o][c] (3x3), into u (16 O C floats), each U[xi]
// stored by columns: u[xi][c][o]. The GEMMs read it as the transposed view of a (C, O) matrix,
// which their packing copies in contiguous runs (a row-major U[xi] is packed by transposes, redone
// for every block of tiles: on ResNet's layer4 that was 64 MB of transposes per call).
// Filters go kLanes output channels at a time: their 9 taps are first gathered tap-major, so that
// the transform runs across the filters in vector registers and each of the 16 results is one
// contiguous store (a filter at a time made 16 scattered stores per filter, and cost more than
// the GEMMs on the deep layers).
// With `flipped`, weight holds the convolution whose input gradient g computes, (C, O, 3, 3) in
// g's terms: filter (o, c) is then weight[c][o] with its 9 taps reversed (conv2d_backward_input),
// read so here instead of from a flipped copy.
void transform_weights(const ConvGeometry& g, const float* weight, bool flipped, float* u) {
  constexpr int64_t kLanes = 16;
  const int64_t plane = g.out_channels * g.in_channels;
  const int64_t groups_of_lanes = (plane + kLanes - 1) / kLanes;
  parallel_for(0, groups_of_lanes, 64, [&](int64_t q0, int64_t q1) {
    float taps[9][kLanes], rows[4][3][kLanes];
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t k0 = q * kLanes, lanes = std::min(kLanes, plane - k0);
      // Lane l is filter k = k0 + l in (c, o) order: input channel k / O, output channel k % O.
      for (int64_t l = 0; l < kLanes; ++l) {
        const int64_t k = k0 + l, o = k % g.out_channels, c = k / g.out_channels;
        if (flipped) {
          for (int j = 0; j < 9; ++j) taps[j][l] = l < lanes ? weight[(c * g.out_channels + o) * 9 + 8 - j] : 0.0f;
        } else {
          for (int j = 0; j < 9; ++j) taps[j][l] = l < lanes ? weight[(o * g.in_channels + c) * 9 + j] : 0.0f;
        }
      }
      for (int j = 0; j < 3; ++j) {  // G g: combinations of the filter's rows
        for (int64_t l = 0; l < kLanes; ++l) {
          const float r0 = taps[j][l], r1 = taps[3 + j][l], r2 = taps[6 + j][l];
          rows[0][j][l] = r0;
          rows[1][j][l] = 0.5f * (r0 + r1 + r2);
          rows[2][j][l] = 0.5f * (r0 - r1 + r2);
          rows[3][j][l] = r2;
        }
      }
      for (int a = 0; a < 4; ++a) {  // (G g) G^T: the same combinations of its columns
        float* u0 = u + (a * 4 + 0) * plane + k0;
        float* u1 = u + (a * 4 + 1) * plane + k0;
        float* u2 = u + (a * 4 + 2) * plane + k0;
        float* u3 = u + (a * 4 + 3) * plane + k0;
        for (int64_t l = 0; l < lanes; ++l) {
          const float c0 = rows[a][0][l], c1 = rows[a][1][l], c2 = rows[a][2][l];
          u0[l] = c0;
          u1[l] = 0.5f * (c0 + c1 + c2);
          u2[l] = 0.5f * (c0 - c1 + c2);
          u3[l] = c2;
        }
      }
    }
  });
}

// The per-thread scratch of the input transform: the column combinations d B of the four input
// rows under a tile row (each 4 arrays of tiles_w: [column b][tile]), kept so that the next tile
// row of the same plane reuses the two rows it shares with this one.
struct RowScratch {
  std::vector<float> combined[kPatch];
  const float* plane = nullptr;  // the plane and tile row that `combined` belongs to
  int64_t th = -1;
  explicit RowScratch(int64_t tiles_w) {
    for (auto& rows : combined) rows.resize(static_cast<size_t>(4 * tiles_w));
  }
};

// d B along input row y of the plane, for every tile of the row: with the tile's four inputs
// d = row[2 tw - pad_w .. 2 tw - pad_w + 3] (zero outside the row), d0 - d2, d1 + d2, d2 - d1,
// d1 - d3. The tiles whose four inputs lie inside the row read the plane directly (vectorised);
// copying the row into a zero-padded buffer first and reading that back at once stalled on
// store-to-load forwarding (a third of this function's time), so only the border tiles, at most
// two per side, take the bounds-checked loop.
void combine_row(const ConvGeometry& g, const Tiling& t, const float* plane, int64_t y, float* comb) {
  const int64_t tw_count = t.tiles_w;
  float* __restrict c0 = comb;
  float* __restrict c1 = comb + tw_count;
  float* __restrict c2 = comb + 2 * tw_count;
  float* __restrict c3 = comb + 3 * tw_count;
  if (y < 0 || y >= g.height) {
    std::fill_n(comb, 4 * tw_count, 0.0f);
    return;
  }
  const float* row = plane + y * g.width;
  // Interior tiles: 2 tw - pad_w >= 0 and 2 tw - pad_w + 3 <= width - 1.
  const int64_t lo = std::min(tw_count, (g.pad_w + 1) / 2);
  const int64_t hi = g.width - 4 + g.pad_w < 0 ? lo : std::clamp<int64_t>((g.width - 4 + g.pad_w) / 2 + 1, lo, tw_count);
  auto border = [&](int64_t tw) {
    auto at = [&](int64_t x) { return x >= 0 && x < g.width ? row[x] : 0.0f; };
    const int64_t x0 = 2 * tw - g.pad_w;
    const float d0 = at(x0), d1 = at(x0 + 1), d2 = at(x0 + 2), d3 = at(x0 + 3);
    c0[tw] = d0 - d2;
    c1[tw] = d1 + d2;
    c2[tw] = d2 - d1;
    c3[tw] = d1 - d3;
  };
  for (int64_t tw = 0; tw < lo; ++tw) border(tw);
  const float* __restrict src = row;
  int64_t tw = lo;
  // 8 tiles at a time: their d0 and d1 are the even and odd floats of the 16 inputs from
  // 2 tw - pad_w, d2 and d3 those of the 16 from two further on (tiles overlap by two inputs).
  // The last input read, d3 of tile tw + 7, is inside the row because tw + 7 < hi.
  for (; tw + 8 <= hi; tw += 8) {
    const float* at = src + (2 * tw - g.pad_w);
    const __m256 a = _mm256_loadu_ps(at), b = _mm256_loadu_ps(at + 8);
    const __m256 a2 = _mm256_loadu_ps(at + 2), b2 = _mm256_loadu_ps(at + 10);
    const __m256 d0 = even_floats(a, b), d1 = odd_floats(a, b), d2 = even_floats(a2, b2), d3 = odd_floats(a2, b2);
    _mm256_storeu_ps(c0 + tw, _mm256_sub_ps(d0, d2));
    _mm256_storeu_ps(c1 + tw, _mm256_add_ps(d1, d2));
    _mm256_storeu_ps(c2 + tw, _mm256_sub_ps(d2, d1));
    _mm256_storeu_ps(c3 + tw, _mm256_sub_ps(d1, d3));
  }
  for (; tw < hi; ++tw) {
    const int64_t x0 = 2 * tw - g.pad_w;
    const float d0 = src[x0], d1 = src[x0 + 1], d2 = src[x0 + 2], d3 = src[x0 + 3];
    c0[tw] = d0 - d2;
    c1[tw] = d1 + d2;
    c2[tw] = d2 - d1;
    c3[tw] = d1 - d3;
  }
  for (int64_t tw = hi; tw < tw_count; ++tw) border(tw);
}

// B^T down the columns: d0 - d2, d1 + d2, d2 - d1, d1 - d3 of four rows, n elements each. A function of
// its own so that the compiler sees the eight arrays as separate (restrict) and vectorises it.
void combine_rows(const float* __restrict d0, const float* __restrict d1, const float* __restrict d2,
                  const float* __restrict d3, float* __restrict v0, float* __restrict v1, float* __restrict v2,
                  float* __restrict v3, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    v0[i] = d0[i] - d2[i];
    v1[i] = d1[i] + d2[i];
    v2[i] = d2[i] - d1[i];
    v3[i] = d1[i] - d3[i];
  }
}

// V[xi][c][p0 + tw], tw < tiles_w, for tile row th of input plane `plane` (channel c).
void transform_input_row(const ConvGeometry& g, const Tiling& t, const float* plane, int64_t th, RowScratch& s,
                         float* v, int64_t c, int64_t p_stride, int64_t p0) {
  const int64_t tw_count = t.tiles_w;
  int64_t first_new = 0;
  if (s.plane == plane && s.th == th - 1) {  // rows 2 and 3 of the previous tile row are this one's 0 and 1
    std::swap(s.combined[0], s.combined[2]);
    std::swap(s.combined[1], s.combined[3]);
    first_new = 2;
  }
  for (int64_t r = first_new; r < kPatch; ++r) combine_row(g, t, plane, th * kTile - g.pad_h + r, s.combined[r].data());
  s.plane = plane;
  s.th = th;
  // B^T (d B) down the columns, written to the 16 matrices.
  for (int64_t b = 0; b < 4; ++b) {
    auto column = [&](int64_t r) { return s.combined[r].data() + b * tw_count; };
    auto matrix = [&](int64_t a) { return v + (a * 4 + b) * p_stride * g.in_channels + c * p_stride + p0; };
    combine_rows(column(0), column(1), column(2), column(3), matrix(0), matrix(1), matrix(2), matrix(3), tw_count);
  }
}

// V for tile rows [row0, row0 + count) of the batch (the forward pass and the weight gradient
// transform their input alike), channels split over the threads.
void transform_input_block(const ConvGeometry& g, const Tiling& t, const float* x, int64_t row0, int64_t count,
                           float* v) {
  const int64_t p = count * t.tiles_w, channels = g.in_channels, in_plane = g.height * g.width;
  parallel_for(0, channels, 1, [&](int64_t c0, int64_t c1) {
    RowScratch scratch(t.tiles_w);
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t r = 0; r < count; ++r) {
        const int64_t n = (row0 + r) / t.tiles_h, th = (row0 + r) % t.tiles_h;
        transform_input_row(g, t, x + (n * channels + c) * in_plane, th, scratch, v, c, p, r * t.tiles_w);
      }
    }
  });
}

// Output rows 2 th, 2 th + 1 of image n, output channel o, from M[xi][o][p0 + tw]: A^T m A + bias.
void transform_output_row(const ConvGeometry& g, const Tiling& t, const float* m, int64_t o, int64_t p_stride,
                          int64_t p0, float bias, int64_t th, std::vector<float>& scratch, float* out_plane) {
  const int64_t tw_count = t.tiles_w;
  const int64_t matrix = p_stride * g.out_channels;
  auto at = [&](int64_t a, int64_t b) { return m + (a * 4 + b) * matrix + o * p_stride + p0; };
  // A^T m down the columns: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3 (for each column b).
  if (static_cast<int64_t>(scratch.size()) < 8 * tw_count) scratch.resize(static_cast<size_t>(8 * tw_count));
  float* s = scratch.data();
  for (int64_t b = 0; b < 4; ++b) {
    const float* __restrict m0 = at(0, b);
    const float* __restrict m1 = at(1, b);
    const float* __restrict m2 = at(2, b);
    const float* __restrict m3 = at(3, b);
    float* __restrict s0 = s + b * tw_count;
    float* __restrict s1 = s + (4 + b) * tw_count;
    for (int64_t tw = 0; tw < tw_count; ++tw) {
      s0[tw] = m0[tw] + m1[tw] + m2[tw];
      s1[tw] = m1[tw] - m2[tw] - m3[tw];
    }
  }
  // (A^T m) A along the rows, into output rows 2 th (from s0) and 2 th + 1 (from s1).
  for (int64_t half = 0; half < kTile; ++half) {
    const int64_t y = th * kTile + half;
    if (y >= g.out_h) break;
    const float* __restrict q0 = s + (4 * half + 0) * tw_count;
    const float* __restrict q1 = s + (4 * half + 1) * tw_count;
    const float* __restrict q2 = s + (4 * half + 2) * tw_count;
    const float* __restrict q3 = s + (4 * half + 3) * tw_count;
    float* __restrict row = out_plane + y * g.out_w;
    const int64_t full = g.out_w / kTile;  // tiles whose two outputs are both inside the row
    for (int64_t tw = 0; tw < full; ++tw) {
      row[2 * tw] = q0[tw] + q1[tw] + q2[tw] + bias;
      row[2 * tw + 1] = q1[tw] - q2[tw] - q3[tw] + bias;
    }
    if (full < tw_count) row[2 * full] = q0[full] + q1[full] + q2[full] + bias;
  }
}

// Tile rows [row0, row0 + count) of the batch (tile row r = image r / tiles_h, row r % tiles_h).
// v and m hold at least 16 C P and 16 O P floats.
void convolve_block(const ConvGeometry& g, const Tiling& t, const float* x, const float* u, const float* bias,
                    int64_t row0, int64_t count, float* v, float* m, float* out) {
  const int64_t p = count * t.tiles_w;  // columns of this block's GEMMs
  const int64_t channels = g.in_channels, outputs = g.out_channels, out_plane = g.out_h * g.out_w;
  transform_input_block(g, t, x, row0, count, v);
  for (int64_t xi = 0; xi < kPositions; ++xi) {
    gemm<float>(outputs, p, channels, 1.0f, {u + xi * outputs * channels, 1, outputs},
                {v + xi * channels * p, p, 1}, 0.0f, {m + xi * outputs * p, p, 1});
  }
  parallel_for(0, outputs, 1, [&](int64_t o0, int64_t o1) {
    std::vector<float> scratch;
    for (int64_t o = o0; o < o1; ++o) {
      const float b = bias != nullptr ? bias[o] : 0.0f;
      for (int64_t r = 0; r < count; ++r) {
        const int64_t n = (row0 + r) / t.tiles_h, th = (row0 + r) % t.tiles_h;
        transform_output_row(g, t, m, o, p, r * t.tiles_w, b, th, scratch, out + (n * outputs + o) * out_plane);
      }
    }
  });
}

// --- weight gradient, F(3x3, 2x2) ---
//
// The weight gradient correlates the input with the output gradient: dW[o][c][i][j] =
// sum over images and outputs (h, w) of dy[o][h][w] x[c][h + i - pad][w + j - pad]. Per 2x2 tile
// of dy this is the transpose of the forward algorithm (read the forward identity
//   sum_i y_i (A^T [(G g) . (B^T d)])_i = sum_xi (A y)_xi (G g)_xi (B^T d)_xi
// as a function of g): dg = G^T [(A y) . (B^T d)]. In two dimensions, summed over the tiles,
//   dW[o][c] = G^T ( sum_tiles (A Y A^T)[o] . (B^T D B)[c] ) G
// with D the same 4x4 input patch as the forward pass (so V is transform_input_row's) and Y the
// tile's 2x2 output gradients (zero past the output's edge). Each of the 16 positions xi is a
// GEMM over the tiles:  M[xi] (O, C) += Ud[xi] (O, P) @ V[xi]^T (P, C),  Ud = A Y A^T.
// A y = (y0, y0 + y1, y0 - y1, -y1) and G^T m = (m0 + (m1 + m2) / 2, (m1 - m2) / 2, (m1 + m2) / 2 + m3).

// Ud[xi][o][p0 + tw], tw < tiles_w, for tile row th of output-gradient plane dy_plane (channel o).
void transform_grad_row(const ConvGeometry& g, const Tiling& t, const float* dy_plane, int64_t th,
                        std::vector<float>& scratch, float* ud, int64_t o, int64_t p_stride, int64_t p0) {
  const int64_t tw_count = t.tiles_w, full = g.out_w / kTile;
  if (static_cast<int64_t>(scratch.size()) < 8 * tw_count) scratch.resize(static_cast<size_t>(8 * tw_count));
  // A y along each of the tile row's two gradient rows: comb[4 r + b][tw].
  for (int64_t r = 0; r < kTile; ++r) {
    float* __restrict c0 = scratch.data() + (4 * r + 0) * tw_count;
    float* __restrict c1 = scratch.data() + (4 * r + 1) * tw_count;
    float* __restrict c2 = scratch.data() + (4 * r + 2) * tw_count;
    float* __restrict c3 = scratch.data() + (4 * r + 3) * tw_count;
    const int64_t y = th * kTile + r;
    if (y >= g.out_h) {
      for (float* c : {c0, c1, c2, c3}) std::fill_n(c, tw_count, 0.0f);
      continue;
    }
    const float* __restrict row = dy_plane + y * g.out_w;
    for (int64_t tw = 0; tw < full; ++tw) {
      const float y0 = row[2 * tw], y1 = row[2 * tw + 1];
      c0[tw] = y0;
      c1[tw] = y0 + y1;
      c2[tw] = y0 - y1;
      c3[tw] = -y1;
    }
    if (full < tw_count) {  // an odd width: the tile's second column is outside the output
      const float y0 = row[2 * full];
      c0[full] = c1[full] = c2[full] = y0;
      c3[full] = 0.0f;
    }
  }
  // A (...) down the columns, written to the 16 matrices.
  const int64_t matrix = p_stride * g.out_channels;
  for (int64_t b = 0; b < 4; ++b) {
    const float* __restrict r0 = scratch.data() + b * tw_count;
    const float* __restrict r1 = scratch.data() + (4 + b) * tw_count;
    float* __restrict u0 = ud + (0 * 4 + b) * matrix + o * p_stride + p0;
    float* __restrict u1 = ud + (1 * 4 + b) * matrix + o * p_stride + p0;
    float* __restrict u2 = ud + (2 * 4 + b) * matrix + o * p_stride + p0;
    float* __restrict u3 = ud + (3 * 4 + b) * matrix + o * p_stride + p0;
    for (int64_t tw = 0; tw < tw_count; ++tw) {
      u0[tw] = r0[tw];
      u1[tw] = r0[tw] + r1[tw];
      u2[tw] = r0[tw] - r1[tw];
      u3[tw] = -r1[tw];
    }
  }
}

// M[xi] (O, C) (+)= Ud[xi] V[xi]^T over tile rows [row0, row0 + count): beta 0 starts the sum.
void weight_gradient_block(const ConvGeometry& g, const Tiling& t, const float* grad_out, const float* x,
                           int64_t row0, int64_t count, float beta, float* v, float* ud, float* m) {
  const int64_t p = count * t.tiles_w;
  const int64_t channels = g.in_channels, outputs = g.out_channels, out_plane = g.out_h * g.out_w;
  transform_input_block(g, t, x, row0, count, v);
  parallel_for(0, outputs, 1, [&](int64_t o0, int64_t o1) {
    std::vector<float> scratch;
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t r = 0; r < count; ++r) {
        const int64_t n = (row0 + r) / t.tiles_h, th = (row0 + r) % t.tiles_h;
        transform_grad_row(g, t, grad_out + (n * outputs + o) * out_plane, th, scratch, ud, o, p, r * t.tiles_w);
      }
    }
  });
  for (int64_t xi = 0; xi < kPositions; ++xi) {
    gemm<float>(outputs, channels, p, 1.0f, {ud + xi * outputs * p, p, 1}, {v + xi * channels * p, 1, p}, beta,
                {m + xi * outputs * channels, channels, 1});
  }
}

// grad_weight[o][c] (3x3) = G^T M[.][o][c] G, for every (o, c).
void transform_weight_gradient(const ConvGeometry& g, const float* m, float* grad_weight) {
  const int64_t plane = g.out_channels * g.in_channels;
  parallel_for(0, plane, 256, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      float rows[4][3];
      for (int64_t a = 0; a < 4; ++a) {  // (. G) along each row of the 4x4
        const float m0 = m[(a * 4 + 0) * plane + k], m1 = m[(a * 4 + 1) * plane + k];
        const float m2 = m[(a * 4 + 2) * plane + k], m3 = m[(a * 4 + 3) * plane + k];
        rows[a][0] = m0 + 0.5f * (m1 + m2);
        rows[a][1] = 0.5f * (m1 - m2);
        rows[a][2] = 0.5f * (m1 + m2) + m3;
      }
      float* dw = grad_weight + k * 9;  // k = o * C + c: weight (O, C, 3, 3)
      for (int64_t j = 0; j < 3; ++j) {  // G^T (.) down the columns
        dw[0 * 3 + j] = rows[0][j] + 0.5f * (rows[1][j] + rows[2][j]);
        dw[1 * 3 + j] = 0.5f * (rows[1][j] - rows[2][j]);
        dw[2 * 3 + j] = 0.5f * (rows[1][j] + rows[2][j]) + rows[3][j];
      }
    }
  });
}

// The geometry Winograd computes (3x3, stride 1, no dilation or groups) with enough channels and
// outputs of at least min_side on both sides.
bool fits(const ConvGeometry& g, int64_t min_side) {
  return g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 &&
         g.dilation_w == 1 && g.groups == 1 && g.in_channels >= kMinChannels && g.out_channels >= kMinChannels &&
         g.out_h >= min_side && g.out_w >= min_side && enabled_by_environment();
}

}  // namespace

bool applies(const ConvGeometry& g) {
  if (fits(g, kMinOutputSide)) return true;
  // Smaller outputs gain once the batch gives the 16 GEMMs enough tiles to amortise the per-call
  // weight transform, and only when those GEMMs are not thin (DenseNet's 3x3 convolutions to 32
  // channels measured 1 % slower).
  const Tiling t = tiling(g);
  return fits(g, kMinWeightGradientSide) && g.in_channels >= kMinSmallOutputChannels &&
         g.out_channels >= kMinSmallOutputChannels && t.rows * t.tiles_w >= kMinSmallOutputTiles;
}

bool applies_to_weight_gradient(const ConvGeometry& g) { return fits(g, kMinWeightGradientSide); }

void forward(const ConvGeometry& g, const float* x, const float* weight, bool weights_flipped, const float* bias,
             float* out) {
  const Tiling t = tiling(g);
  if (t.rows == 0) return;
  // Scratch from the host allocator (host_allocator.hpp): std::vector's zero-filling and fresh
  // pages cost as much as the GEMMs on a batch of 8.
  const HostScratch<float> u(static_cast<size_t>(kPositions * g.out_channels * g.in_channels));
  transform_weights(g, weight, weights_flipped, u.data());
  // Blocks of tile rows whose V and M stay within kBlockBytes (output_blocks.hpp).
  const int64_t row_bytes = kPositions * (g.in_channels + g.out_channels) * t.tiles_w * int64_t{sizeof(float)};
  const OutputBlocks blocks = output_blocks(t.rows, std::clamp<int64_t>(kBlockBytes / row_bytes, 1, t.rows));
  run_blocks(blocks, [&](int64_t b0, int64_t b1) {
    const HostScratch<float> v(static_cast<size_t>(kPositions * g.in_channels * blocks.size * t.tiles_w));
    const HostScratch<float> m(static_cast<size_t>(kPositions * g.out_channels * blocks.size * t.tiles_w));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t row0 = b * blocks.size;
      convolve_block(g, t, x, u.data(), bias, row0, std::min(blocks.size, t.rows - row0), v.data(), m.data(), out);
    }
  });
}

void backward_weight(const ConvGeometry& g, const float* grad_out, const float* x, float* grad_weight) {
  const Tiling t = tiling(g);
  const int64_t m_size = kPositions * g.out_channels * g.in_channels;
  if (t.rows == 0) {  // a sum over no images
    std::fill_n(grad_weight, g.out_channels * g.in_channels * 9, 0.0f);
    return;
  }
  // The sum over tiles runs in blocks of tile rows dealt round-robin to a fixed number of partial
  // sums; block size and partial count follow from the shape alone (never the thread count), so
  // the summation order, and the bits, are the same for any number of threads.
  const int64_t row_bytes = kPositions * (g.in_channels + g.out_channels) * t.tiles_w * int64_t{sizeof(float)};
  int64_t block = std::clamp<int64_t>(kBlockBytes / row_bytes, 1, t.rows);
  int64_t blocks = (t.rows + block - 1) / block;
  if (blocks > 1) {  // a multiple of kPartialMultiple blocks, so that 2 or 4 threads get equal shares
    blocks = std::min(t.rows, (blocks + kPartialMultiple - 1) / kPartialMultiple * kPartialMultiple);
    block = (t.rows + blocks - 1) / blocks;
    blocks = (t.rows + block - 1) / block;
  }
  const int64_t partials = std::max<int64_t>(
      1, std::min({blocks, kMaxPartials, kPartialBytes / (m_size * int64_t{sizeof(float)})}));
  const HostScratch<float> m(static_cast<size_t>(partials * m_size));
  parallel_for(0, partials, 1, [&](int64_t q0, int64_t q1) {
    const HostScratch<float> v(static_cast<size_t>(kPositions * g.in_channels * block * t.tiles_w));
    const HostScratch<float> ud(static_cast<size_t>(kPositions * g.out_channels * block * t.tiles_w));
    for (int64_t part = q0; part < q1; ++part) {
      for (int64_t b = part; b < blocks; b += partials) {
        const int64_t row0 = b * block;
        weight_gradient_block(g, t, grad_out, x, row0, std::min(block, t.rows - row0), b == part ? 0.0f : 1.0f,
                              v.data(), ud.data(), m.data() + part * m_size);
      }
    }
  });
  float* total = m.data();
  if (partials > 1) {
    parallel_for(0, m_size, 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t part = 1; part < partials; ++part) {
        const float* __restrict add = m.data() + part * m_size;
        for (int64_t i = i0; i < i1; ++i) total[i] += add[i];
      }
    });
  }
  transform_weight_gradient(g, total, grad_weight);
}

}  // namespace loupe::cpu::winograd
