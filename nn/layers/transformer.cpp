// Decoder blocks and the decoder-only language model. See transformer.hpp.
#include "nn/layers/transformer.hpp"

#include <algorithm>
#include <cmath>

namespace loupe::nn {

AttentionConfig DecoderConfig::attention() const {
  AttentionConfig a;
  a.hidden = hidden;
  a.n_heads = n_heads;
  a.n_kv_heads = n_kv_heads;
  a.head_dim = head_dim;
  a.qk_norm = qk_norm;
  a.rope_theta = rope_theta;
  a.norm_eps = norm_eps;
  return a;
}

SwiGLU::SwiGLU(int64_t hidden, int64_t intermediate, Generator* generator) {
  gate_proj = register_module("gate_proj", std::make_shared<Linear>(hidden, intermediate, false, generator));
  up_proj = register_module("up_proj", std::make_shared<Linear>(hidden, intermediate, false, generator));
  down_proj = register_module("down_proj", std::make_shared<Linear>(intermediate, hidden, false, generator));
}

Tensor SwiGLU::forward(const Tensor& x) { return (*down_proj)(silu((*gate_proj)(x)) * (*up_proj)(x)); }

DecoderLayer::DecoderLayer(const DecoderConfig& config, Generator* generator) {
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(config.attention(), generator));
  mlp = register_module("mlp", std::make_shared<SwiGLU>(config.hidden, config.intermediate, generator));
  input_layernorm = register_module("input_layernorm", std::make_shared<RMSNorm>(Shape{config.hidden}, config.norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", std::make_shared<RMSNorm>(Shape{config.hidden}, config.norm_eps));
}

Tensor DecoderLayer::forward(const Tensor& x) { return forward(x, AttentionCall{}); }

Tensor DecoderLayer::forward(const Tensor& x, const AttentionCall& call) {
  const Tensor h = x + self_attn->forward((*input_layernorm)(x), call);
  return h + (*mlp)((*post_attention_layernorm)(h));
}

DecoderModel::DecoderModel(const DecoderConfig& config, Generator* generator) {
  LOUPE_CHECK(config.vocab_size > 0 && config.hidden > 0 && config.intermediate > 0 && config.n_layers >= 0,
              "DecoderModel: vocab_size, hidden and intermediate must be positive, got ", config.vocab_size, ", ",
              config.hidden, ", ", config.intermediate);
  embed_tokens = register_module("embed_tokens", std::make_shared<Embedding>(config.vocab_size, config.hidden,
                                                                             Embedding::no_padding, generator));
  auto list = register_module("layers", std::make_shared<Sequential>());
  for (int64_t i = 0; i < config.n_layers; ++i) {
    layers.push_back(std::make_shared<DecoderLayer>(config, generator));
    list->push_back(layers.back());
  }
  norm = register_module("norm", std::make_shared<RMSNorm>(Shape{config.hidden}, config.norm_eps));
}

Tensor DecoderModel::forward(const Tensor& ids) { return forward(ids, DecoderCall{}); }

Tensor DecoderModel::forward(const Tensor& ids, const DecoderCall& call) {
  LOUPE_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::i64,
              "DecoderModel: expected token ids (B, T) int64, got ",
              ids.defined() ? shape_str(ids.shape()) + " " + dtype_name(ids.dtype()) : std::string("undefined"));
  return forward_embeddings((*embed_tokens)(ids), call);
}

Tensor DecoderModel::forward_embeddings(const Tensor& embeddings, const DecoderCall& call) {
  if (call.cache != nullptr) {
    LOUPE_CHECK(call.cache->layers.size() == layers.size(), "DecoderModel: the cache has ", call.cache->layers.size(),
                " layers, the model ", layers.size());
  }
  // Positions are fixed before the first layer fills its cache.
  const int64_t past = call.cache != nullptr ? call.cache->length() : 0;
  AttentionCall a;
  a.positions = call.positions.defined() ? call.positions
                                         : default_positions(past, embeddings.size(1), embeddings.device());
  a.mask = call.mask;
  a.causal = call.causal;
  Tensor h = embeddings;
  for (size_t i = 0; i < layers.size(); ++i) {
    a.cache = call.cache != nullptr ? &call.cache->layers[i] : nullptr;
    h = layers[i]->forward(h, a);
  }
  return (*norm)(h);
}

DecoderLM::DecoderLM(const DecoderConfig& config, Generator* generator) : config_(config) {
  model = register_module("model", std::make_shared<DecoderModel>(config, generator));
  if (!config.tie_embeddings) {
    lm_head = register_module("lm_head", std::make_shared<Linear>(config.hidden, config.vocab_size, false, generator));
  }
}

Tensor DecoderLM::logits(const Tensor& hidden) {
  return lm_head ? (*lm_head)(hidden) : linear(hidden, model->embed_tokens->weight);
}

Tensor DecoderLM::forward(const Tensor& ids) { return logits(model->forward(ids)); }
Tensor DecoderLM::forward(const Tensor& ids, const DecoderCall& call) { return logits(model->forward(ids, call)); }
Tensor DecoderLM::forward_embeddings(const Tensor& embeddings, const DecoderCall& call) {
  return logits(model->forward_embeddings(embeddings, call));
}

Tensor sample_next(const Tensor& logits, int64_t top_k, double temperature, Generator* generator) {
  LOUPE_CHECK(logits.dim() == 2, "sample_next: expected logits (B, V), got ", shape_str(logits.shape()));
  LOUPE_CHECK(top_k >= 1, "sample_next: top_k must be at least 1, got ", top_k);
  LOUPE_CHECK(top_k == 1 || temperature > 0, "sample_next: temperature must be positive, got ", temperature);
  if (top_k == 1) return ops::argmax(logits, 1);
  const int64_t k = std::min(top_k, logits.size(1));
  const ops::ValuesIndices top = ops::topk(logits, k, 1);                    // (B, k), largest first
  const Tensor probs = ops::to_device(ops::softmax(ops::div(top.values, temperature), 1), Device::cpu());
  const Tensor indices = ops::to_device(top.indices, Device::cpu());
  const Tensor u = ops::to_device(uniform({logits.size(0)}, 0.0, 1.0, DType::f64, generator, logits.device()),
                                  Device::cpu());
  const std::vector<double> p = to_vector<double>(probs), draws = to_vector<double>(u);
  const std::vector<int64_t> ids = to_vector<int64_t>(indices);
  std::vector<int64_t> out(static_cast<size_t>(logits.size(0)));
  for (size_t b = 0; b < out.size(); ++b) {
    // Inverse CDF over the k candidates; the last one takes any rounding remainder.
    size_t j = 0;
    double cumulative = p[b * static_cast<size_t>(k)];
    while (j + 1 < static_cast<size_t>(k) && draws[b] >= cumulative) cumulative += p[b * static_cast<size_t>(k) + ++j];
    out[b] = ids[b * static_cast<size_t>(k) + j];
  }
  return ops::to_device(from_values(out, {logits.size(0)}), logits.device());
}

Tensor DecoderLM::generate(const Tensor& prompt, const GenerateOptions& options) {
  LOUPE_CHECK(prompt.defined() && prompt.dim() == 2 && prompt.dtype() == DType::i64 && prompt.size(1) > 0,
              "DecoderLM::generate: expected a prompt (B, T) int64 with T > 0, got ",
              prompt.defined() ? shape_str(prompt.shape()) : std::string("undefined"));
  LOUPE_CHECK(options.max_new_tokens >= 0, "DecoderLM::generate: max_new_tokens must be >= 0");
  NoGradGuard no_grad;
  Tensor sequence = prompt;
  KVCache cache = make_cache();
  Tensor step_input = prompt;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    Tensor last;  // (B, V) logits of the last position
    if (options.use_cache) {
      DecoderCall call;
      call.cache = &cache;
      const Tensor l = forward(step_input, call);
      last = ops::select(l, 1, l.size(1) - 1);
    } else {
      const Tensor l = forward(sequence);
      last = ops::select(l, 1, l.size(1) - 1);
    }
    const Tensor next = ops::unsqueeze(sample_next(last, options.top_k, options.temperature, options.generator), 1);
    sequence = ops::cat({sequence, next}, 1);
    step_input = next;
  }
  return sequence;
}

}  // namespace loupe::nn
