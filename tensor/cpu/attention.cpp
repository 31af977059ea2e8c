// Fused, tiled CPU attention kernels. See attention.hpp.
#include "tensor/cpu/attention.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/cpu/gemm.hpp"
#include "tensor/parallel.hpp"

namespace loupe::cpu {

namespace {

template <typename T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// x[j] = exp(x[j]) over n contiguous elements (the vectorised float32 exp where it exists).
template <typename T>
void exp_inplace(T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (fast::unary_f32(ops::UnaryOp::exp, x, x, n)) return;
  }
  for (int64_t j = 0; j < n; ++j) x[j] = std::exp(x[j]);
}

// max of n contiguous elements (NaN-blind, as the online softmax only needs the shift).
template <typename T>
T row_max(const T* x, int64_t n) {
  T m = kNegInf<T>;
  int64_t j = 0;
  if constexpr (std::is_same_v<T, float>) {
    __m256 acc = _mm256_set1_ps(kNegInf<float>);
    for (; j + 8 <= n; j += 8) acc = _mm256_max_ps(acc, _mm256_loadu_ps(x + j));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    for (float lane : lanes) m = lane > m ? lane : m;
  }
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// x[j] = exp(x[j] - shift) over n contiguous elements; returns their sum. float32 sums in 8
// lanes (a scalar chain of adds would cost more than the exp itself).
template <typename T>
T exp_shifted_sum(T* x, int64_t n, T shift) {
  for (int64_t j = 0; j < n; ++j) x[j] -= shift;
  exp_inplace(x, n);
  T total = 0;
  int64_t j = 0;
  if constexpr (std::is_same_v<T, float>) {
    __m256 acc = _mm256_setzero_ps();
    for (; j + 8 <= n; j += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + j));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    for (float lane : lanes) total += lane;
  }
  for (; j < n; ++j) total += x[j];
  return total;
}

// Masks one rows x cols block of scores (row r = query i0 + r, column c = key j0 + c, leading
// dimension ld): forbidden keys become -inf, an additive mask is added.
template <typename T>
void mask_block(const ops::AttentionShape& s, const MaskView& mask, int64_t b, int64_t h, int64_t i0, int64_t rows,
                int64_t j0, int64_t cols, T* block, int64_t ld) {
  const bool causal = s.causal != CausalMode::none;
  const int64_t offset = s.causal_offset();
  for (int64_t r = 0; r < rows; ++r) {
    T* row = block + r * ld;
    if (mask.data != nullptr) {
      const int64_t base = b * mask.s0 + h * mask.s1 + (i0 + r) * mask.s2 + j0 * mask.s3;
      if (mask.is_bool) {
        const bool* m = static_cast<const bool*>(mask.data) + base;
        for (int64_t c = 0; c < cols; ++c) {
          if (!m[c * mask.s3]) row[c] = kNegInf<T>;
        }
      } else {
        const T* m = static_cast<const T*>(mask.data) + base;
        for (int64_t c = 0; c < cols; ++c) row[c] += m[c * mask.s3];
      }
    }
    if (causal) {
      // Keys j > i + offset are forbidden: columns from (i + offset + 1 - j0) on.
      const int64_t first_forbidden = std::clamp<int64_t>(i0 + r + offset + 1 - j0, 0, cols);
      for (int64_t c = first_forbidden; c < cols; ++c) row[c] = kNegInf<T>;
    }
  }
}

// The number of keys a causal tile of queries [i0, i0 + rows) can see (all of them otherwise).
int64_t visible_keys(const ops::AttentionShape& s, int64_t i0, int64_t rows) {
  if (s.causal == CausalMode::none) return s.kv_len;
  return std::clamp<int64_t>(i0 + rows - 1 + s.causal_offset() + 1, 0, s.kv_len);
}

template <typename T>
MatrixRef<const T> rows_of(const View4<T>& x, int64_t b, int64_t h, int64_t t) {
  return {x.at(b, h, t), x.s2, x.s3};
}
// The transpose (D, T) of rows [t, ...) of one head.
template <typename T>
MatrixRef<const T> transposed_rows_of(const View4<T>& x, int64_t b, int64_t h, int64_t t) {
  return {x.at(b, h, t), x.s3, x.s2};
}

}  // namespace

template <typename T>
void attention_forward(const ops::AttentionShape& s, View4<T> q, View4<T> k, View4<T> v, MaskView mask, T* out,
                       T* lse) {
  const int64_t q_tiles = (s.q_len + kQueryTile - 1) / kQueryTile;
  const int64_t group = s.heads / s.kv_heads;
  const int64_t tasks = s.batch * s.heads * q_tiles;
  parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<T> scores(static_cast<size_t>(kQueryTile * kKeyTile));
    std::vector<T> acc(static_cast<size_t>(kQueryTile * s.v_dim));
    std::vector<T> m(kQueryTile), l(kQueryTile);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t qt = task % q_tiles, bh = task / q_tiles;
      const int64_t b = bh / s.heads, h = bh % s.heads, hk = h / group;
      const int64_t i0 = qt * kQueryTile, rows = std::min(kQueryTile, s.q_len - i0);
      std::fill(acc.begin(), acc.end(), T(0));
      std::fill(m.begin(), m.end(), kNegInf<T>);
      std::fill(l.begin(), l.end(), T(0));
      const int64_t keys = visible_keys(s, i0, rows);
      for (int64_t j0 = 0; j0 < keys; j0 += kKeyTile) {
        const int64_t cols = std::min(kKeyTile, keys - j0);
        // scores = scale * q_tile k_tile^T   (rows, cols)
        gemm<T>(rows, cols, s.head_dim, static_cast<T>(s.scale), rows_of(q, b, h, i0), transposed_rows_of(k, b, hk, j0),
                T(0), {scores.data(), kKeyTile, 1});
        mask_block(s, mask, b, h, i0, rows, j0, cols, scores.data(), kKeyTile);
        for (int64_t r = 0; r < rows; ++r) {
          T* row = scores.data() + r * kKeyTile;
          const T m_new = std::max(m[r], row_max(row, cols));
          if (m_new == kNegInf<T>) {  // nothing allowed yet: p = 0 for this tile
            std::fill(row, row + cols, T(0));
            continue;
          }
          const T total = exp_shifted_sum(row, cols, m_new);
          const T alpha = std::exp(m[r] - m_new);  // 0 when m[r] was -inf
          if (alpha != T(1)) {
            T* a = acc.data() + r * s.v_dim;
            for (int64_t d = 0; d < s.v_dim; ++d) a[d] *= alpha;
          }
          l[r] = l[r] * alpha + total;
          m[r] = m_new;
        }
        // acc += p v_tile   (rows, Dv)
        gemm<T>(rows, s.v_dim, cols, T(1), {scores.data(), kKeyTile, 1}, rows_of(v, b, hk, j0), T(1),
                {acc.data(), s.v_dim, 1});
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t row_index = (b * s.heads + h) * s.q_len + i0 + r;
        T* o = out + row_index * s.v_dim;
        const T* a = acc.data() + r * s.v_dim;
        if (l[r] > T(0)) {
          const T inv = T(1) / l[r];
          for (int64_t d = 0; d < s.v_dim; ++d) o[d] = a[d] * inv;
          lse[row_index] = m[r] + std::log(l[r]);
        } else {  // every key masked: zeros (see tensor/ops/attention.hpp)
          std::fill(o, o + s.v_dim, T(0));
          lse[row_index] = kNegInf<T>;
        }
      }
    }
  });
}

template <typename T>
void attention_backward(const ops::AttentionShape& s, View4<T> q, View4<T> k, View4<T> v, View4<T> g,
                        const T* out, const T* lse, MaskView mask, T* dq, T* dk, T* dv) {
  const int64_t group = s.heads / s.kv_heads;
  const T scale = static_cast<T>(s.scale);
  parallel_for(0, s.batch * s.kv_heads, 1, [&](int64_t t0, int64_t t1) {
    std::vector<T> p(static_cast<size_t>(kQueryTile * kKeyTile)), dp(static_cast<size_t>(kQueryTile * kKeyTile));
    std::vector<T> di(kQueryTile);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / s.kv_heads, hk = task % s.kv_heads;
      T* dk_head = dk + (b * s.kv_heads + hk) * s.kv_len * s.head_dim;
      T* dv_head = dv + (b * s.kv_heads + hk) * s.kv_len * s.v_dim;
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        for (int64_t i0 = 0; i0 < s.q_len; i0 += kQueryTile) {
          const int64_t rows = std::min(kQueryTile, s.q_len - i0);
          const int64_t row0 = (b * s.heads + h) * s.q_len + i0;
          // di = rowsum(g * out): the softmax backward's sum of g_ij p_ij, per query.
          for (int64_t r = 0; r < rows; ++r) {
            const T* gr = g.at(b, h, i0 + r);
            const T* o = out + (row0 + r) * s.v_dim;
            T total = 0;
            for (int64_t d = 0; d < s.v_dim; ++d) total += gr[d * g.s3] * o[d];
            di[r] = total;
          }
          const int64_t keys = visible_keys(s, i0, rows);
          for (int64_t j0 = 0; j0 < keys; j0 += kKeyTile) {
            const int64_t cols = std::min(kKeyTile, keys - j0);
            // p = exp(scale * q k^T + mask - lse), recomputed.
            gemm<T>(rows, cols, s.head_dim, scale, rows_of(q, b, h, i0), transposed_rows_of(k, b, hk, j0), T(0),
                    {p.data(), kKeyTile, 1});
            mask_block(s, mask, b, h, i0, rows, j0, cols, p.data(), kKeyTile);
            for (int64_t r = 0; r < rows; ++r) {
              T* row = p.data() + r * kKeyTile;
              const T row_lse = lse[row0 + r];
              if (row_lse == kNegInf<T>) {
                std::fill(row, row + cols, T(0));
                continue;
              }
              for (int64_t c = 0; c < cols; ++c) row[c] -= row_lse;
              exp_inplace(row, cols);
            }
            // dv_tile += p^T g   (cols, Dv)
            gemm<T>(cols, s.v_dim, rows, T(1), {p.data(), 1, kKeyTile}, rows_of(g, b, h, i0), T(1),
                    {dv_head + j0 * s.v_dim, s.v_dim, 1});
            // dp = g v_tile^T   (rows, cols); then ds = p * (dp - di)
            gemm<T>(rows, cols, s.v_dim, T(1), rows_of(g, b, h, i0), transposed_rows_of(v, b, hk, j0), T(0),
                    {dp.data(), kKeyTile, 1});
            for (int64_t r = 0; r < rows; ++r) {
              T* ds = dp.data() + r * kKeyTile;
              const T* pr = p.data() + r * kKeyTile;
              for (int64_t c = 0; c < cols; ++c) ds[c] = pr[c] * (ds[c] - di[r]);
            }
            // dq_tile += scale * ds k_tile;  dk_tile += scale * ds^T q_tile
            gemm<T>(rows, s.head_dim, cols, scale, {dp.data(), kKeyTile, 1}, rows_of(k, b, hk, j0), T(1),
                    {dq + row0 * s.head_dim, s.head_dim, 1});
            gemm<T>(cols, s.head_dim, rows, scale, {dp.data(), 1, kKeyTile}, rows_of(q, b, h, i0), T(1),
                    {dk_head + j0 * s.head_dim, s.head_dim, 1});
          }
        }
      }
    }
  });
}

template void attention_forward<float>(const ops::AttentionShape&, View4<float>, View4<float>, View4<float>, MaskView,
                                       float*, float*);
template void attention_forward<double>(const ops::AttentionShape&, View4<double>, View4<double>, View4<double>,
                                        MaskView, double*, double*);
template void attention_backward<float>(const ops::AttentionShape&, View4<float>, View4<float>, View4<float>,
                                        View4<float>, const float*, const float*, MaskView, float*, float*, float*);
template void attention_backward<double>(const ops::AttentionShape&, View4<double>, View4<double>, View4<double>,
                                         View4<double>, const double*, const double*, MaskView, double*, double*,
                                         double*);

}  // namespace loupe::cpu
