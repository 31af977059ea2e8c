// Rotary position embeddings (RoPE) with explicit position ids, half-split as in Llama
// (HF transformers' rotate_half / apply_rotary_pos_emb):
//
//   x (B, H, T, D), D even; positions (B, T), (1, T) or (T) int64 (the position of each token).
//   inv_freq[i] = theta^(-2i / D), i < D/2;  angle[b, t, i] = positions[b, t] * inv_freq[i]
//   out[..., i]       = x[..., i] cos(angle_i) - x[..., i + D/2] sin(angle_i)
//   out[..., i + D/2] = x[..., i + D/2] cos(angle_i) + x[..., i] sin(angle_i)
//
// inverse = true rotates by -angle: the inverse rotation, which is also the adjoint (the backward).
// Angles are computed in float64 and the tables cast to x's dtype (HF computes them in float32;
// the difference is within float32 rounding for the positions a small model sees).
// Built from tensor ops, so it runs on any device.
// Tests: tests/ops/op_table_attention.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe::ops {

Tensor rotary_embedding(const Tensor& x, const Tensor& positions, double theta = 10000.0, bool inverse = false);

struct RotaryTables {
  Tensor cos, sin;  // (B or 1, 1, T, D/2) in `dtype`
};
RotaryTables rotary_tables(const Tensor& positions, int64_t head_dim, double theta, DType dtype);

}  // namespace loupe::ops
