// Llama-style decoder building blocks with HF transformers' parameter names, so a PyTorch
// LlamaForCausalLM / Qwen3ForCausalLM state dict maps one to one:
//
//   SwiGLU        mlp.{gate_proj, up_proj, down_proj}: down(silu(gate(x)) * up(x)), no biases
//   DecoderLayer  layers.i.{input_layernorm, self_attn, post_attention_layernorm, mlp}
//                 pre-norm: x = x + attn(rms(x)); x = x + mlp(rms(x))
//   DecoderModel  model.{embed_tokens, layers.i, norm}: ids (B, T) int64 -> hidden (B, T, C)
//   DecoderLM     {model, lm_head}: ids -> logits (B, T, V); lm_head tied to embed_tokens
//                 (no lm_head parameter) or its own (V, C) matrix
//
// KVCache holds one LayerCache per layer; generate() runs the prompt once, then one token per
// step attending to the cache (greedy with top_k = 1, else top-k sampling with a temperature).
// Tests: tests/nn/test_transformer.cpp (shapes, causality, grouped heads, a PyTorch fixture,
// KV cache equals full recomputation, training reduces the loss).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/layers/attention.hpp"
#include "nn/layers/embedding.hpp"

namespace loupe::nn {

struct DecoderConfig {
  int64_t vocab_size = 0;
  int64_t hidden = 0;
  int64_t intermediate = 0;   // SwiGLU width
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;     // 0: n_heads
  int64_t head_dim = 0;       // 0: hidden / n_heads
  bool qk_norm = false;
  double rope_theta = 10000.0;
  double norm_eps = 1e-6;
  bool tie_embeddings = false;

  AttentionConfig attention() const;
};

class SwiGLU : public Module {
 public:
  SwiGLU(int64_t hidden, int64_t intermediate, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "SwiGLU"; }

  std::shared_ptr<Linear> gate_proj, up_proj, down_proj;
};

class DecoderLayer : public Module {
 public:
  explicit DecoderLayer(const DecoderConfig& config, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;  // causal, no cache
  Tensor forward(const Tensor& x, const AttentionCall& call);
  std::string type_name() const override { return "DecoderLayer"; }

  std::shared_ptr<RMSNorm> input_layernorm, post_attention_layernorm;
  std::shared_ptr<MultiHeadAttention> self_attn;
  std::shared_ptr<SwiGLU> mlp;
};

// One LayerCache per layer.
struct KVCache {
  std::vector<LayerCache> layers;
  int64_t length() const { return layers.empty() ? 0 : layers[0].length(); }
};

// What one decoder call may add to the token ids (see AttentionCall).
struct DecoderCall {
  Tensor positions;  // (B, T) or (T) int64; undefined: past + 0..T-1
  Tensor mask;       // broadcastable to (B, H, T, past + T)
  bool causal = true;
  KVCache* cache = nullptr;
};

class DecoderModel : public Module {
 public:
  explicit DecoderModel(const DecoderConfig& config, Generator* generator = nullptr);
  Tensor forward(const Tensor& ids) override;  // (B, T) int64 -> (B, T, C)
  Tensor forward(const Tensor& ids, const DecoderCall& call);
  // From embeddings (B, T, C) instead of ids: what input-gradient attributions differentiate.
  Tensor forward_embeddings(const Tensor& embeddings, const DecoderCall& call = {});
  std::string type_name() const override { return "DecoderModel"; }

  std::shared_ptr<Embedding> embed_tokens;
  std::vector<std::shared_ptr<DecoderLayer>> layers;
  std::shared_ptr<RMSNorm> norm;
};

struct GenerateOptions {
  int64_t max_new_tokens = 16;
  int64_t top_k = 1;           // 1: greedy
  double temperature = 1.0;
  Generator* generator = nullptr;  // sampling draws (default_generator() when null)
  bool use_cache = true;       // false: recompute the whole sequence each step (for tests)
};

class DecoderLM : public Module {
 public:
  explicit DecoderLM(const DecoderConfig& config, Generator* generator = nullptr);
  Tensor forward(const Tensor& ids) override;  // (B, T) int64 -> logits (B, T, V)
  Tensor forward(const Tensor& ids, const DecoderCall& call);
  Tensor forward_embeddings(const Tensor& embeddings, const DecoderCall& call = {});
  // hidden (B, T, C) -> logits (B, T, V) through the (tied or own) head.
  Tensor logits(const Tensor& hidden);
  // prompt (B, T) int64 -> (B, T + max_new_tokens): runs without a graph, in the current mode.
  Tensor generate(const Tensor& prompt, const GenerateOptions& options = {});
  KVCache make_cache() const { return KVCache{std::vector<LayerCache>(model->layers.size())}; }
  std::string type_name() const override { return "DecoderLM"; }
  const DecoderConfig& config() const { return config_; }

  std::shared_ptr<DecoderModel> model;
  std::shared_ptr<Linear> lm_head;  // null when tied

 private:
  DecoderConfig config_;
};

// The next token of each row of logits (B, V): argmax for top_k = 1, else a draw from the
// softmax of the top_k logits divided by temperature. Returns (B) int64.
Tensor sample_next(const Tensor& logits, int64_t top_k, double temperature, Generator* generator);

}  // namespace loupe::nn
