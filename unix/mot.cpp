// Mixture-of-Transformers layer. See mot.hpp.
#include "unix/mot.hpp"

#include "autograd/autograd.hpp"

namespace loupe::unix {

MoTLayer::MoTLayer(const nn::DecoderConfig& config, Generator* generator) {
  text = register_module("text", std::make_shared<nn::DecoderLayer>(config, generator));
  vision = register_module("vision", std::make_shared<nn::DecoderLayer>(config, generator));
}

Tensor MoTLayer::forward(const Tensor&) {
  LOUPE_CHECK(false, "MoTLayer: routing needs the vision mask; call forward(x, vision, positions)");
  return {};
}

Tensor MoTLayer::forward(const Tensor& x, const Tensor& vision_mask, const Tensor& positions, nn::LayerCache* cache) {
  LOUPE_CHECK(x.defined() && x.dim() == 3, "MoTLayer: expected x (B, T, C), got ",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  LOUPE_CHECK(vision_mask.defined() && vision_mask.dim() == 2 && vision_mask.size(0) == x.size(0) &&
                  vision_mask.size(1) == x.size(1) && vision_mask.dtype() == DType::b8,
              "MoTLayer: expected a vision mask (B, T) = (", x.size(0), ", ", x.size(1), ") bool");
  const int64_t B = x.size(0), T = x.size(1);
  nn::MultiHeadAttention& ta = *text->self_attn;
  nn::MultiHeadAttention& va = *vision->self_attn;
  const nn::AttentionConfig& c = ta.config();                                 // both copies share the shape
  const Tensor token_sel = ops::unsqueeze(vision_mask, 2);                    // (B, T, 1)
  const Tensor head_sel = ops::unsqueeze(ops::unsqueeze(vision_mask, 1), 3);  // (B, 1, T, 1)
  const auto pick = [&](const Tensor& v, const Tensor& t) { return where(token_sel, v, t); };
  const auto heads_first = [&](const Tensor& y, int64_t heads) {
    return transpose(reshape(y, {B, T, heads, c.head_dim}), 1, 2);  // (B, heads, T, D)
  };

  const Tensor h = pick((*vision->input_layernorm)(x), (*text->input_layernorm)(x));
  Tensor q = heads_first(pick((*va.q_proj)(h), (*ta.q_proj)(h)), c.n_heads);
  Tensor k = heads_first(pick((*va.k_proj)(h), (*ta.k_proj)(h)), c.n_kv_heads);
  Tensor v = heads_first(pick((*va.v_proj)(h), (*ta.v_proj)(h)), c.n_kv_heads);
  if (ta.q_norm) {
    q = where(head_sel, (*va.q_norm)(q), (*ta.q_norm)(q));
    k = where(head_sel, (*va.k_norm)(k), (*ta.k_norm)(k));
  }
  if (c.rope) {
    q = rotary_embedding(q, positions, c.rope_theta);
    k = rotary_embedding(k, positions, c.rope_theta);
  }
  if (cache != nullptr) {
    if (cache->length() > 0) {
      LOUPE_CHECK(cache->k.size(0) == B, "MoTLayer: the cache holds batch ", cache->k.size(0), ", this call has ", B);
      k = cat({cache->k, k}, 2);
      v = cat({cache->v, v}, 2);
    }
    cache->k = k;
    cache->v = v;
  }
  AttentionOptions o;
  o.causal = CausalMode::bottom_right;  // global: every earlier token of either modality
  const Tensor y = reshape(transpose(scaled_dot_product_attention(q, k, v, o), 1, 2), {B, T, c.n_heads * c.head_dim});
  const Tensor x1 = x + pick((*va.o_proj)(y), (*ta.o_proj)(y));
  const Tensor h2 = pick((*vision->post_attention_layernorm)(x1), (*text->post_attention_layernorm)(x1));
  return x1 + pick((*vision->mlp)(h2), (*text->mlp)(h2));
}

}  // namespace loupe::unix
