// The Uni-X two-end-separated decoder (REFERENCE.md section 8): an L-layer Llama-style decoder
// whose layers [0, N) and [L-M, L) exist once per modality (a whole nn::DecoderLayer each: attention
// with its QK-norms, MLP, both RMSNorms) and whose layers [N, L-M) are shared. Shared by all: the
// token embedding, the final RMSNorm, the head (tied to the embedding or its own), rotary positions.
//
//   ids (B, T) int64, vision (B, T) bool (Vocabulary::vision_mask(ids): true routes a token to the
//   vision copy) -> logits (B, T, V)
//   positions: absolute, 0..T-1 for every token in every layer (the same in both copies)
//   separated layer: both copies run on every token under the causal AND same-modality mask
//                    (B, 1, T, T), then each token keeps its own copy's output (where(vision, ...))
//                    — simplest correct; a token's output never depends on the other copy's weights
//                    nor, inside the layer, on tokens of the other modality
//   shared layer:    plain causal attention over all tokens
// N = M = 0 is the fully shared baseline, with exactly nn::DecoderLM's parameter names.
// mixture_of_transformers: every layer a MoTLayer (unix/mot.hpp: per-modality weights, global
// attention), the experiment's `mot` arm.
// Decoding: UnixCache + forward_cached (a few new tokens after the cached ones; unix/generate.hpp).
//
// Parameter names (so unix/conflict.hpp's parse_matrix_name finds layer and matrix kind):
//   model.embed_tokens.weight, model.norm.weight, lm_head.weight (untied only)
//   model.layers.<i>.text.<decoder layer names>, model.layers.<i>.vision.<...>   (separated i)
//   model.layers.<i>.<decoder layer names>                                        (shared i)
// Tests: tests/unix/test_model.cpp
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/layers/transformer.hpp"

#if defined(unix)
#error "unix/ needs -std=c++20 (GNU dialects predefine the macro 'unix', the name of this namespace)"
#endif

namespace loupe::unix {

struct UnixConfig {
  int64_t vocab_size = 0;
  int64_t hidden = 0;
  int64_t intermediate = 0;      // SwiGLU width
  int64_t n_layers = 0;          // L
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;        // 0: n_heads
  int64_t head_dim = 0;          // 0: hidden / n_heads
  int64_t n_separated_start = 0;  // N: layers [0, N) per modality
  int64_t m_separated_end = 0;    // M: layers [L-M, L) per modality
  bool qk_norm = false;
  bool tie_embeddings = false;
  // Every layer a Mixture-of-Transformers layer (unix/mot.hpp: per-modality weights, global
  // attention) instead of the Uni-X split; needs N = M = 0.
  bool mixture_of_transformers = false;
  double rope_theta = 10000.0;
  double norm_eps = 1e-6;

  nn::DecoderConfig decoder() const;     // the same model with every layer shared
  bool is_separated(int64_t layer) const;  // layer in [0, N) or [L-M, L)
  void check() const;                    // throws loupe::Error for an inconsistent config
};

// (B, 1, T, T) bool: key j may be seen by query i when j <= i and vision[i] == vision[j].
Tensor same_modality_causal_mask(const Tensor& vision);
// (B, 1, Tq, Tk) bool: key j may be seen by query i when query_vision[i] == key_vision[j] (no causal
// part: with a KV cache the attention's bottom-right causal mode adds it).
Tensor same_modality_mask(const Tensor& query_vision, const Tensor& key_vision);

// Keys and values of the tokens seen so far, for decoding a few tokens at a time (unix/generate.hpp):
// layer i keeps text[i] (a shared layer, or the text copy of a separated one) and vision[i] (the
// vision copy; unused for shared layers). Both copies of a separated layer cache every token, so
// a new token's same-modality mask over past ∪ new tokens (past_vision) gives exactly the
// attention of a full recomputation. Positions continue at length().
struct UnixCache {
  std::vector<nn::LayerCache> text, vision;
  Tensor past_vision;  // (B, T_past) bool: routing of the cached tokens (undefined when empty)
  int64_t length() const { return text.empty() ? 0 : text[0].length(); }
};

// One separated layer: a text and a vision copy of a decoder layer.
class SeparatedLayer : public nn::Module {
 public:
  SeparatedLayer(const nn::DecoderConfig& config, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;  // throws: routing needs the vision mask
  // x (B, T, C), vision (B, T) bool, positions (B, T) or (T) int64 -> (B, T, C).
  Tensor forward(const Tensor& x, const Tensor& vision, const Tensor& positions);
  // With a cache: x (B, T, C) new tokens, vision (B, T) their routing, mask (B, 1, T, past + T)
  // from same_modality_mask; each copy reads and extends its own cache.
  Tensor forward_cached(const Tensor& x, const Tensor& vision, const Tensor& positions, const Tensor& mask,
                        nn::LayerCache* text_cache, nn::LayerCache* vision_cache);
  std::string type_name() const override { return "SeparatedLayer"; }

  std::shared_ptr<nn::DecoderLayer> text, vision;
};

class UnixModel : public nn::Module {
 public:
  explicit UnixModel(const UnixConfig& config, Generator* generator = nullptr);
  Tensor forward(const Tensor& ids) override;  // only without separated layers (no routing needed)
  Tensor forward(const Tensor& ids, const Tensor& vision);  // (B, T) int64, (B, T) bool -> (B, T, C)
  Tensor forward_embeddings(const Tensor& embeddings, const Tensor& vision);
  // The new tokens `ids` (B, T) after the cache's tokens (positions past..past+T-1); extends the cache.
  Tensor forward_cached(const Tensor& ids, const Tensor& vision, UnixCache& cache);
  UnixCache make_cache() const;
  std::string type_name() const override { return "UnixModel"; }

  std::shared_ptr<nn::Embedding> embed_tokens;
  // layers[i] is a SeparatedLayer where config.is_separated(i), a MoTLayer for a
  // mixture_of_transformers model, else an nn::DecoderLayer.
  std::vector<std::shared_ptr<nn::Module>> layers;
  std::shared_ptr<nn::RMSNorm> norm;

 private:
  UnixConfig config_;
};

class UnixLM : public nn::Module {
 public:
  explicit UnixLM(const UnixConfig& config, Generator* generator = nullptr);
  Tensor forward(const Tensor& ids) override;  // only without separated layers
  Tensor forward(const Tensor& ids, const Tensor& vision);  // -> logits (B, T, V)
  Tensor forward_embeddings(const Tensor& embeddings, const Tensor& vision);
  Tensor logits(const Tensor& hidden);  // (B, T, C) -> (B, T, V) through the tied or own head
  // Logits of the new tokens given the cache (see UnixModel::forward_cached).
  Tensor forward_cached(const Tensor& ids, const Tensor& vision, UnixCache& cache);
  UnixCache make_cache() const { return model->make_cache(); }
  std::string type_name() const override { return "UnixLM"; }
  const UnixConfig& config() const { return config_; }

  std::shared_ptr<UnixModel> model;
  std::shared_ptr<nn::Linear> lm_head;  // null when tied

 private:
  UnixConfig config_;
};

// Total parameters, and the active ones per token (one copy of each separated or MoT layer): Uni-X
// matches the shared model of the same shape in active parameters, not in total.
struct ParameterCount {
  int64_t total = 0;
  int64_t active = 0;
};
ParameterCount count_parameters(const UnixLM& lm);

}  // namespace loupe::unix
