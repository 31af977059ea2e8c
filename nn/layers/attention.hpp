// MultiHeadAttention: the attention block of Llama-style decoders, with PyTorch/HF parameter names
// (q_proj, k_proj, v_proj, o_proj, and q_norm, k_norm when QK-norm is on, as in Qwen3).
//
//   x (B, T, hidden) -> q (B, H, T, D), k, v (B, Hkv, T, D)   (D = head_dim, H a multiple of Hkv)
//   QK-norm: RMSNorm over D of every query and key head, before RoPE
//   RoPE: rotary_embedding with explicit position ids (B, T) (default: past_length + 0..T-1)
//   attention: scaled_dot_product_attention, causal aligned bottom-right (the last query sees
//   every key; with no cache this is PyTorch's is_causal), plus an optional mask broadcastable
//   to (B, H, T, past + T): bool (true = may attend) or additive
//   out = o_proj((B, T, H * D))
//
// KV cache: when a LayerCache is given, its keys and values (after RoPE) are prepended to this
// call's and the result stored back, so a decoding step attends to every earlier token.
// Tests: tests/nn/test_transformer.cpp
#pragma once

#include <memory>
#include <string>

#include "nn/layers/basic.hpp"
#include "nn/layers/norm.hpp"
#include "nn/module.hpp"

namespace loupe::nn {

struct AttentionConfig {
  int64_t hidden = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;     // 0: n_heads
  int64_t head_dim = 0;       // 0: hidden / n_heads
  bool qk_norm = false;
  bool rope = true;
  double rope_theta = 10000.0;
  double norm_eps = 1e-6;
  bool bias = false;          // biases on q, k, v, o
};

// Keys and values seen so far by one attention layer: (B, Hkv, T_past, D), undefined when empty.
struct LayerCache {
  Tensor k, v;
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
};

// What one call may add to x.
struct AttentionCall {
  Tensor positions;     // (B, T) or (T) int64; undefined: past + 0..T-1
  Tensor mask;          // bool or additive, broadcastable to (B, H, T, past + T); may be undefined
  bool causal = true;
  LayerCache* cache = nullptr;
};

class MultiHeadAttention : public Module {
 public:
  explicit MultiHeadAttention(const AttentionConfig& config, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;  // causal, positions 0..T-1, no cache
  Tensor forward(const Tensor& x, const AttentionCall& call);
  std::string type_name() const override { return "MultiHeadAttention"; }
  const AttentionConfig& config() const { return config_; }

  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj;
  std::shared_ptr<RMSNorm> q_norm, k_norm;  // null without QK-norm

 private:
  AttentionConfig config_;
};

// Positions past + 0..T-1 as (1, T) int64 on `device`.
Tensor default_positions(int64_t past, int64_t length, Device device);

}  // namespace loupe::nn
