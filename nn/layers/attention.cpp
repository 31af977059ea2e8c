// MultiHeadAttention. See attention.hpp.
#include "nn/layers/attention.hpp"

namespace loupe::nn {

MultiHeadAttention::MultiHeadAttention(const AttentionConfig& config, Generator* generator) : config_(config) {
  AttentionConfig& c = config_;
  if (c.n_kv_heads == 0) c.n_kv_heads = c.n_heads;
  LOUPE_CHECK(c.hidden > 0 && c.n_heads > 0 && c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0,
              "MultiHeadAttention: need hidden > 0 and n_heads a positive multiple of n_kv_heads, got hidden ",
              c.hidden, ", n_heads ", c.n_heads, ", n_kv_heads ", c.n_kv_heads);
  if (c.head_dim == 0) {
    LOUPE_CHECK(c.hidden % c.n_heads == 0, "MultiHeadAttention: hidden ", c.hidden, " is not divisible by n_heads ",
                c.n_heads, " (give head_dim)");
    c.head_dim = c.hidden / c.n_heads;
  }
  LOUPE_CHECK(!c.rope || c.head_dim % 2 == 0, "MultiHeadAttention: RoPE needs an even head_dim, got ", c.head_dim);
  q_proj = register_module("q_proj", std::make_shared<Linear>(c.hidden, c.n_heads * c.head_dim, c.bias, generator));
  k_proj = register_module("k_proj", std::make_shared<Linear>(c.hidden, c.n_kv_heads * c.head_dim, c.bias, generator));
  v_proj = register_module("v_proj", std::make_shared<Linear>(c.hidden, c.n_kv_heads * c.head_dim, c.bias, generator));
  o_proj = register_module("o_proj", std::make_shared<Linear>(c.n_heads * c.head_dim, c.hidden, c.bias, generator));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", std::make_shared<RMSNorm>(Shape{c.head_dim}, c.norm_eps));
    k_norm = register_module("k_norm", std::make_shared<RMSNorm>(Shape{c.head_dim}, c.norm_eps));
  }
}

Tensor default_positions(int64_t past, int64_t length, Device device) {
  return to_device(ops::reshape(arange(past, past + length, 1.0, DType::i64), {1, length}), device);
}

Tensor MultiHeadAttention::forward(const Tensor& x) { return forward(x, AttentionCall{}); }

Tensor MultiHeadAttention::forward(const Tensor& x, const AttentionCall& call) {
  const AttentionConfig& c = config_;
  LOUPE_CHECK(x.defined() && x.dim() == 3 && x.size(2) == c.hidden, "MultiHeadAttention: expected x (B, T, ",
              c.hidden, "), got ", x.defined() ? shape_str(x.shape()) : "undefined");
  const int64_t B = x.size(0), T = x.size(1);
  // (B, T, heads * D) -> (B, heads, T, D)
  const auto heads_first = [&](const Tensor& y, int64_t heads) {
    return transpose(reshape(y, {B, T, heads, c.head_dim}), 1, 2);
  };
  Tensor q = heads_first((*q_proj)(x), c.n_heads);
  Tensor k = heads_first((*k_proj)(x), c.n_kv_heads);
  Tensor v = heads_first((*v_proj)(x), c.n_kv_heads);
  if (q_norm) {
    q = (*q_norm)(q);
    k = (*k_norm)(k);
  }
  const int64_t past = call.cache != nullptr ? call.cache->length() : 0;
  if (c.rope) {
    const Tensor positions = call.positions.defined() ? call.positions : default_positions(past, T, x.device());
    q = rotary_embedding(q, positions, c.rope_theta);
    k = rotary_embedding(k, positions, c.rope_theta);
  }
  if (call.cache != nullptr) {
    if (past > 0) {
      LOUPE_CHECK(call.cache->k.size(0) == B, "MultiHeadAttention: the cache holds batch ", call.cache->k.size(0),
                  ", this call has ", B);
      k = cat({call.cache->k, k}, 2);
      v = cat({call.cache->v, v}, 2);
    }
    call.cache->k = k;
    call.cache->v = v;
  }
  AttentionOptions o;
  o.mask = call.mask;
  o.causal = call.causal ? CausalMode::bottom_right : CausalMode::none;
  const Tensor y = scaled_dot_product_attention(q, k, v, o);  // (B, H, T, D)
  return (*o_proj)(reshape(transpose(y, 1, 2), {B, T, c.n_heads * c.head_dim}));
}

}  // namespace loupe::nn
