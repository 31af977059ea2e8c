// The Uni-X two-end-separated decoder. See model.hpp.
#include "unix/model.hpp"

#include "autograd/autograd.hpp"
#include "unix/mot.hpp"

namespace loupe::unix {

nn::DecoderConfig UnixConfig::decoder() const {
  nn::DecoderConfig d;
  d.vocab_size = vocab_size;
  d.hidden = hidden;
  d.intermediate = intermediate;
  d.n_layers = n_layers;
  d.n_heads = n_heads;
  d.n_kv_heads = n_kv_heads;
  d.head_dim = head_dim;
  d.qk_norm = qk_norm;
  d.rope_theta = rope_theta;
  d.norm_eps = norm_eps;
  d.tie_embeddings = tie_embeddings;
  return d;
}

bool UnixConfig::is_separated(int64_t layer) const {
  return layer < n_separated_start || layer >= n_layers - m_separated_end;
}

void UnixConfig::check() const {
  LOUPE_CHECK(vocab_size > 0 && hidden > 0 && intermediate > 0 && n_layers >= 0 && n_heads > 0,
              "UnixConfig: vocab_size, hidden, intermediate and n_heads must be positive and n_layers >= 0, got ",
              vocab_size, ", ", hidden, ", ", intermediate, ", ", n_heads, ", ", n_layers);
  LOUPE_CHECK(n_separated_start >= 0 && m_separated_end >= 0 && n_separated_start + m_separated_end <= n_layers,
              "UnixConfig: need N, M >= 0 and N + M <= L, got N = ", n_separated_start, ", M = ", m_separated_end,
              ", L = ", n_layers);
  LOUPE_CHECK(!mixture_of_transformers || n_separated_start + m_separated_end == 0,
              "UnixConfig: a Mixture-of-Transformers model has per-modality weights in every layer; N and M must be 0, "
              "got N = ", n_separated_start, ", M = ", m_separated_end);
}

Tensor same_modality_causal_mask(const Tensor& vision) {
  LOUPE_CHECK(vision.defined() && vision.dim() == 2 && vision.dtype() == DType::b8,
              "same_modality_causal_mask: expected a vision mask (B, T) bool, got ",
              vision.defined() ? shape_str(vision.shape()) + " " + dtype_name(vision.dtype()) : std::string("undefined"));
  const int64_t t = vision.size(1);
  const Tensor pos = ops::to_device(arange(t), vision.device());
  const Tensor causal = ops::le(ops::unsqueeze(pos, 0), ops::unsqueeze(pos, 1));              // (T, T): j <= i
  const Tensor same = ops::eq(ops::unsqueeze(vision, 2), ops::unsqueeze(vision, 1));          // (B, T, T)
  return ops::unsqueeze(ops::logical_and(same, causal), 1);                                   // (B, 1, T, T)
}

Tensor same_modality_mask(const Tensor& query_vision, const Tensor& key_vision) {
  LOUPE_CHECK(query_vision.defined() && key_vision.defined() && query_vision.dim() == 2 && key_vision.dim() == 2 &&
                  query_vision.size(0) == key_vision.size(0) && query_vision.dtype() == DType::b8 &&
                  key_vision.dtype() == DType::b8,
              "same_modality_mask: expected vision masks (B, Tq) and (B, Tk) bool, got ",
              query_vision.defined() ? shape_str(query_vision.shape()) : std::string("undefined"), " and ",
              key_vision.defined() ? shape_str(key_vision.shape()) : std::string("undefined"));
  return ops::unsqueeze(ops::eq(ops::unsqueeze(query_vision, 2), ops::unsqueeze(key_vision, 1)), 1);  // (B,1,Tq,Tk)
}

SeparatedLayer::SeparatedLayer(const nn::DecoderConfig& config, Generator* generator) {
  text = register_module("text", std::make_shared<nn::DecoderLayer>(config, generator));
  vision = register_module("vision", std::make_shared<nn::DecoderLayer>(config, generator));
}

Tensor SeparatedLayer::forward(const Tensor&) {
  LOUPE_CHECK(false, "SeparatedLayer: routing needs the vision mask; call forward(x, vision, positions)");
  return {};
}

Tensor SeparatedLayer::forward(const Tensor& x, const Tensor& vision_mask, const Tensor& positions) {
  LOUPE_CHECK(x.defined() && x.dim() == 3, "SeparatedLayer: expected x (B, T, C), got ",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  LOUPE_CHECK(vision_mask.defined() && vision_mask.dim() == 2 && vision_mask.size(0) == x.size(0) &&
                  vision_mask.size(1) == x.size(1) && vision_mask.dtype() == DType::b8,
              "SeparatedLayer: expected a vision mask (B, T) = (", x.size(0), ", ", x.size(1), ") bool, got ",
              vision_mask.defined() ? shape_str(vision_mask.shape()) + " " + dtype_name(vision_mask.dtype())
                                    : std::string("undefined"));
  nn::AttentionCall call;
  call.positions = positions;
  call.mask = same_modality_causal_mask(vision_mask);
  call.causal = true;
  // Both copies see every token; the same-modality mask keeps each token's copy output
  // independent of the other modality, and `where` keeps only the token's own copy (so the other
  // copy gets a zero gradient from it).
  const Tensor out_text = text->forward(x, call);
  const Tensor out_vision = vision->forward(x, call);
  return where(ops::unsqueeze(vision_mask, 2), out_vision, out_text);
}

Tensor SeparatedLayer::forward_cached(const Tensor& x, const Tensor& vision_mask, const Tensor& positions,
                                      const Tensor& mask, nn::LayerCache* text_cache, nn::LayerCache* vision_cache) {
  nn::AttentionCall call;
  call.positions = positions;
  call.mask = mask;
  call.causal = true;  // bottom-right: the new tokens see every cached one, causally among themselves
  call.cache = text_cache;
  const Tensor out_text = text->forward(x, call);
  call.cache = vision_cache;
  const Tensor out_vision = vision->forward(x, call);
  return where(ops::unsqueeze(vision_mask, 2), out_vision, out_text);
}

UnixModel::UnixModel(const UnixConfig& config, Generator* generator) : config_(config) {
  config.check();
  const nn::DecoderConfig d = config.decoder();
  // Same registration order as nn::DecoderModel, so N = M = 0 draws the same initial weights.
  embed_tokens = register_module(
      "embed_tokens", std::make_shared<nn::Embedding>(d.vocab_size, d.hidden, nn::Embedding::no_padding, generator));
  auto list = register_module("layers", std::make_shared<nn::Sequential>());
  for (int64_t i = 0; i < config.n_layers; ++i) {
    if (config.mixture_of_transformers) {
      layers.push_back(std::make_shared<MoTLayer>(d, generator));
    } else if (config.is_separated(i)) {
      layers.push_back(std::make_shared<SeparatedLayer>(d, generator));
    } else {
      layers.push_back(std::make_shared<nn::DecoderLayer>(d, generator));
    }
    list->push_back(layers.back());
  }
  norm = register_module("norm", std::make_shared<nn::RMSNorm>(Shape{d.hidden}, d.norm_eps));
}

Tensor UnixModel::forward(const Tensor& ids) {
  LOUPE_CHECK(config_.n_separated_start == 0 && config_.m_separated_end == 0 && !config_.mixture_of_transformers,
              "UnixModel: a model with separated or MoT layers needs the vision mask; call forward(ids, vision)");
  return forward(ids, Tensor{});
}

Tensor UnixModel::forward(const Tensor& ids, const Tensor& vision) {
  LOUPE_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::i64,
              "UnixModel: expected token ids (B, T) int64, got ",
              ids.defined() ? shape_str(ids.shape()) + " " + dtype_name(ids.dtype()) : std::string("undefined"));
  return forward_embeddings((*embed_tokens)(ids), vision);
}

Tensor UnixModel::forward_embeddings(const Tensor& embeddings, const Tensor& vision) {
  LOUPE_CHECK(embeddings.defined() && embeddings.dim() == 3, "UnixModel: expected embeddings (B, T, C), got ",
              embeddings.defined() ? shape_str(embeddings.shape()) : std::string("undefined"));
  // Absolute positions 0..T-1, the same for both modalities and in every layer.
  const Tensor positions = nn::default_positions(0, embeddings.size(1), embeddings.device());
  nn::AttentionCall shared;
  shared.positions = positions;
  shared.causal = true;
  Tensor h = embeddings;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (auto* sep = dynamic_cast<SeparatedLayer*>(layers[i].get())) {
      LOUPE_CHECK(vision.defined(), "UnixModel: layer ", i, " is separated and needs the vision mask");
      h = sep->forward(h, vision, positions);
    } else if (auto* mot = dynamic_cast<MoTLayer*>(layers[i].get())) {
      LOUPE_CHECK(vision.defined(), "UnixModel: layer ", i, " is a MoT layer and needs the vision mask");
      h = mot->forward(h, vision, positions);
    } else {
      h = static_cast<nn::DecoderLayer*>(layers[i].get())->forward(h, shared);
    }
  }
  return (*norm)(h);
}

UnixCache UnixModel::make_cache() const {
  UnixCache cache;
  cache.text.resize(layers.size());
  cache.vision.resize(layers.size());
  return cache;
}

Tensor UnixModel::forward_cached(const Tensor& ids, const Tensor& vision, UnixCache& cache) {
  LOUPE_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::i64 && ids.size(1) > 0,
              "UnixModel::forward_cached: expected token ids (B, T) int64 with T > 0, got ",
              ids.defined() ? shape_str(ids.shape()) + " " + dtype_name(ids.dtype()) : std::string("undefined"));
  LOUPE_CHECK(vision.defined() && vision.dim() == 2 && vision.size(0) == ids.size(0) && vision.size(1) == ids.size(1) &&
                  vision.dtype() == DType::b8,
              "UnixModel::forward_cached: expected a vision mask (B, T) bool matching ids ", shape_str(ids.shape()));
  LOUPE_CHECK(cache.text.size() == layers.size() && cache.vision.size() == layers.size(),
              "UnixModel::forward_cached: the cache has ", cache.text.size(), " layers, the model ", layers.size());
  const int64_t past = cache.length();
  LOUPE_CHECK(past == 0 || (cache.past_vision.defined() && cache.past_vision.size(0) == ids.size(0) &&
                            cache.past_vision.size(1) == past),
              "UnixModel::forward_cached: the cache holds ", past, " tokens of another batch");
  const Tensor embeddings = (*embed_tokens)(ids);
  const Tensor positions = nn::default_positions(past, ids.size(1), embeddings.device());
  const Tensor key_vision = past > 0 ? ops::cat({cache.past_vision, vision}, 1) : vision;  // (B, past + T)
  const Tensor mask = same_modality_mask(vision, key_vision);                           // (B, 1, T, past + T)
  nn::AttentionCall shared;
  shared.positions = positions;
  shared.causal = true;
  Tensor h = embeddings;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (auto* sep = dynamic_cast<SeparatedLayer*>(layers[i].get())) {
      h = sep->forward_cached(h, vision, positions, mask, &cache.text[i], &cache.vision[i]);
    } else if (auto* mot = dynamic_cast<MoTLayer*>(layers[i].get())) {
      h = mot->forward(h, vision, positions, &cache.text[i]);
    } else {
      shared.cache = &cache.text[i];
      h = static_cast<nn::DecoderLayer*>(layers[i].get())->forward(h, shared);
    }
  }
  cache.past_vision = key_vision;
  return (*norm)(h);
}

UnixLM::UnixLM(const UnixConfig& config, Generator* generator) : config_(config) {
  model = register_module("model", std::make_shared<UnixModel>(config, generator));
  if (!config.tie_embeddings) {
    lm_head = register_module("lm_head", std::make_shared<nn::Linear>(config.hidden, config.vocab_size, false, generator));
  }
}

Tensor UnixLM::logits(const Tensor& hidden) {
  return lm_head ? (*lm_head)(hidden) : linear(hidden, model->embed_tokens->weight);
}

Tensor UnixLM::forward_cached(const Tensor& ids, const Tensor& vision, UnixCache& cache) {
  return logits(model->forward_cached(ids, vision, cache));
}
Tensor UnixLM::forward(const Tensor& ids) { return logits(model->forward(ids)); }
Tensor UnixLM::forward(const Tensor& ids, const Tensor& vision) { return logits(model->forward(ids, vision)); }
Tensor UnixLM::forward_embeddings(const Tensor& embeddings, const Tensor& vision) {
  return logits(model->forward_embeddings(embeddings, vision));
}

ParameterCount count_parameters(const UnixLM& lm) {
  ParameterCount count;
  for (const Tensor& p : lm.parameters()) count.total += p.numel();
  count.active = count.total;
  // A token uses one copy of each separated layer: leave the vision copies out of the active count.
  for (const auto& layer : lm.model->layers) {
    if (const auto* sep = dynamic_cast<const SeparatedLayer*>(layer.get())) {
      for (const Tensor& p : sep->vision->parameters()) count.active -= p.numel();
    }
    if (const auto* mot = dynamic_cast<const MoTLayer*>(layer.get())) {
      for (const Tensor& p : mot->vision->parameters()) count.active -= p.numel();
    }
  }
  return count;
}

}  // namespace loupe::unix
