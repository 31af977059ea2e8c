// Differentiable scaled dot-product attention (grouped KV heads, bool / additive masks, causal
// modes) and rotary position embeddings. Forward and backward kernels: tensor/ops/attention.hpp,
// tensor/ops/rotary.hpp.
// attention nodes save {q, k, v, out, lse, mask} and attrs {causal mode, scale}; the backward
// recomputes the probabilities from lse. The mask is a constant (it gets no gradient).
// rotary nodes save {positions} and attrs {theta}; the backward is the inverse rotation.
// Tests: tests/ops/op_table_attention.cpp
#pragma once

#include "tensor/ops/attention.hpp"
#include "tensor/ops/rotary.hpp"

namespace loupe {

// q (B, H, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv) -> (B, H, Tq, Dv).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

// x (B, H, T, D) rotated by the angles of positions (B, T) int64 (half-split, as Llama).
Tensor rotary_embedding(const Tensor& x, const Tensor& positions, double theta = 10000.0);

}  // namespace loupe
