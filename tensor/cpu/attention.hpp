// Fused, tiled CPU attention kernels (flash-attention style) for float32 and float64.
//
// Forward: one task per (batch, head, tile of kQueryTile queries), run on the thread pool. For each
// tile of kKeyTile keys the task forms the kQueryTile x kKeyTile block of scores with the packed
// GEMM (tensor/cpu/gemm.hpp), masks it, and folds it into a running max m, a running sum l and an
// output accumulator (the online softmax: when the max grows, l and the accumulator are scaled by
// exp(m_old - m_new)); no Tq x Tk matrix is formed. Causal tasks stop at the last key tile their
// queries can see. It writes out and the log-sum-exp lse = m + log(l) of every row.
// Backward: one task per (batch, KV head), looping over the query heads of its group, the query
// tiles and the key tiles, recomputing p = exp(s - lse) tile by tile; each task owns its rows of dk,
// dv (summed over the group) and dq, so no two threads write one element and results do not depend
// on the thread count.
// Operands are strided views (any layout); outputs are contiguous. Reference: the materialising
// path of tensor/ops/attention.cpp. Tests: tests/ops/op_table_attention.cpp
#pragma once

#include <cstdint>

#include "tensor/ops/attention.hpp"

namespace loupe::cpu {

// A 4-d operand (B, H, T, D): element (b, h, t, d) at data[b*s0 + h*s1 + t*s2 + d*s3].
template <typename T>
struct View4 {
  const T* data;
  int64_t s0, s1, s2, s3;
  const T* at(int64_t b, int64_t h, int64_t t) const { return data + b * s0 + h * s1 + t * s2; }
};

// The mask expanded to (B, H, Tq, Tk) (stride 0 along broadcast dims): bool (1 byte, true = may
// attend) or additive in the kernel's dtype; data == nullptr for none.
struct MaskView {
  const void* data = nullptr;
  bool is_bool = false;
  int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
};

constexpr int64_t kQueryTile = 64;
constexpr int64_t kKeyTile = 256;

// out (B, H, Tq, Dv) and lse (B, H, Tq), contiguous.
template <typename T>
void attention_forward(const ops::AttentionShape& s, View4<T> q, View4<T> k, View4<T> v, MaskView mask, T* out,
                       T* lse);

// g (B, H, Tq, Dv) any layout; out and lse as the forward wrote them. dq, dk, dv contiguous,
// zero-filled by the caller.
template <typename T>
void attention_backward(const ops::AttentionShape& s, View4<T> q, View4<T> k, View4<T> v, View4<T> g,
                        const T* out, const T* lse, MaskView mask, T* dq, T* dk, T* dv);

}  // namespace loupe::cpu
