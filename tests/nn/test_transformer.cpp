// The transformer layers (nn/layers/attention.hpp, nn/layers/transformer.hpp): shapes and HF
// parameter names, causal masking, grouped KV heads equal repeated KV heads, the mask argument,
// a PyTorch fixture (tests/fixtures/make_transformer_fixtures.py: logits and the input-embedding
// gradient of a tiny Llama / Qwen3-style model, float32 here vs float64 there: atol 2e-5 + rtol 1e-4
// on logits, 1e-4 + 1e-3 on gradients), KV-cache decoding equal to full recomputation, sampling,
// and a few training steps reducing the loss.
#include <doctest/doctest.h>

#include <set>

#include "nn/layers/transformer.hpp"
#include "nn/optim/optimizer.hpp"
#include "tests/nn/models/fixture_support.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

using nn::DecoderConfig;
using nn::DecoderLM;

DecoderConfig tiny_config(bool qk_norm = true, bool tied = false) {
  DecoderConfig c;
  c.vocab_size = 23;
  c.hidden = 16;
  c.intermediate = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.qk_norm = qk_norm;
  c.tie_embeddings = tied;
  return c;
}

TEST_CASE("transformer: shapes and HF parameter names") {
  Generator gen(3);
  DecoderLM lm(tiny_config(), &gen);
  const Tensor ids = random_indices({2, 5}, 0, 23, 101);
  CHECK(lm(ids).shape() == Shape{2, 5, 23});
  std::set<std::string> names;
  for (const auto& [name, t] : lm.named_parameters()) names.insert(name);
  for (const char* key : {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                          "model.layers.1.self_attn.k_norm.weight", "model.layers.0.mlp.gate_proj.weight",
                          "model.layers.1.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight",
                          "model.layers.0.post_attention_layernorm.weight", "model.norm.weight", "lm_head.weight"}) {
    CHECK_MESSAGE(names.count(key) == 1, key);
  }
  CHECK(lm.model->layers[0]->self_attn->k_proj->weight.shape() == Shape{8, 16});  // 2 KV heads of 4
  DecoderLM tied(tiny_config(false, true), &gen);
  CHECK(tied.lm_head == nullptr);
  CHECK(tied.named_parameters().size() == lm.named_parameters().size() - 1 - 4);  // no head, no q/k norms
  CHECK_THROWS_WITH_AS(lm(zeros({2, 5})), doctest::Contains("int64"), Error);
  CHECK_THROWS_AS((*lm.model->layers[0]->self_attn)(zeros({2, 5, 8})), Error);
}

TEST_CASE("transformer: changing a later token does not change earlier outputs") {
  Generator gen(4);
  DecoderLM lm(tiny_config(), &gen);
  NoGradGuard no_grad;
  const Tensor ids = random_indices({1, 8}, 0, 23, 102);
  std::vector<int64_t> changed = to_vector<int64_t>(ids);
  changed[5] = (changed[5] + 7) % 23;
  const Tensor a = lm(ids), b = lm(from_values(changed, {1, 8}));
  check_close(ops::narrow(b, 1, 0, 5), ops::narrow(a, 1, 0, 5), 0, 0, "positions before the change");
  CHECK(ops::amax(ops::abs(ops::sub(ops::narrow(b, 1, 5, 3), ops::narrow(a, 1, 5, 3)))).item() > 1e-4);
}

TEST_CASE("transformer: grouped KV heads equal the same KV heads repeated") {
  Generator gen(5);
  nn::AttentionConfig gc;
  gc.hidden = 16;
  gc.n_heads = 4;
  gc.n_kv_heads = 2;
  gc.qk_norm = true;
  nn::MultiHeadAttention grouped(gc, &gen);
  nn::AttentionConfig fc = gc;
  fc.n_kv_heads = 4;
  nn::MultiHeadAttention full(fc, &gen);
  // KV head j of the grouped layer serves query heads 2j and 2j + 1: repeat its rows.
  const auto repeat_rows = [](const Tensor& w) {  // (2 * 4, 16) -> (4 * 4, 16)
    return ops::reshape(ops::expand(ops::unsqueeze(ops::reshape(w, {2, 4, 16}), 1), {2, 2, 4, 16}), {16, 16});
  };
  nn::StateDict state = grouped.state_dict();
  state["k_proj.weight"] = repeat_rows(state["k_proj.weight"]);
  state["v_proj.weight"] = repeat_rows(state["v_proj.weight"]);
  full.load_state_dict(state);
  const Tensor x = random_tensor({2, 6, 16}, DType::f64, -1, 1, 103);
  grouped.to(Device::cpu());
  const Tensor xf = ops::to_dtype(x, DType::f32);
  check_close(full(xf), grouped(xf), 1e-6, 1e-5, "grouped vs repeated heads");
}

TEST_CASE("transformer: a bool mask hiding keys equals attending to the visible ones only") {
  Generator gen(6);
  nn::AttentionConfig c;
  c.hidden = 16;
  c.n_heads = 2;
  nn::MultiHeadAttention attn(c, &gen);
  NoGradGuard no_grad;
  const Tensor x = random_tensor({1, 5, 16}, DType::f32, -1, 1, 104);
  // Non-causal, keys 3 and 4 hidden from everyone: queries 0..2 equal attention over x[:3] alone.
  std::vector<int64_t> keep{1, 1, 1, 0, 0};
  nn::AttentionCall call;
  call.causal = false;
  call.mask = ops::to_dtype(from_values(keep, {5}), DType::b8);
  const Tensor masked = attn.forward(x, call);
  nn::AttentionCall plain;
  plain.causal = false;
  const Tensor prefix = attn.forward(ops::narrow(x, 1, 0, 3), plain);
  check_close(ops::narrow(masked, 1, 0, 3), prefix, 1e-6, 1e-5, "masked keys");
}

void check_fixture(const std::string& file, bool qk_norm, bool tied, double theta, int64_t kv_heads) {
  const auto f = load_safetensors(fixture_path("transformer/" + file));
  DecoderConfig c;
  c.vocab_size = 37;
  c.hidden = 32;
  c.intermediate = 48;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = kv_heads;
  c.head_dim = 8;
  c.qk_norm = qk_norm;
  c.tie_embeddings = tied;
  c.rope_theta = theta;
  DecoderLM lm(c);
  nn::StateDict state;
  for (const auto& [name, t] : f) {
    if (name.rfind("state.", 0) == 0) state[name.substr(6)] = t;
  }
  lm.load_state_dict(state);  // strict: every HF name maps
  nn::DecoderCall call;
  call.positions = f.at("position_ids");
  Tensor embeds = ops::embedding(lm.model->embed_tokens->weight, f.at("input_ids")).detach();
  embeds.set_requires_grad(true);
  const Tensor logits = lm.forward_embeddings(embeds, call);
  check_close(logits, f.at("logits"), 2e-5, 1e-4, file + " logits");
  const Tensor cot = ops::to_dtype(f.at("cotangent"), DType::f32);
  const auto grads = grad({logits}, {embeds}, {cot});
  check_close(grads[0], f.at("embeds_grad"), 1e-4, 1e-3, file + " input-embedding gradient");
  // The same through the ids.
  check_close(lm.forward(f.at("input_ids"), call), f.at("logits"), 2e-5, 1e-4, file + " logits from ids");
}

TEST_CASE("transformer: logits and input-embedding gradients match PyTorch") {
  check_fixture("tiny_lm_qknorm.safetensors", true, false, 10000.0, 2);
  check_fixture("tiny_lm_tied.safetensors", false, true, 500.0, 1);
}

TEST_CASE("transformer: logits with a KV cache equal a full recomputation") {
  Generator gen(7);
  DecoderLM lm(tiny_config(), &gen);
  NoGradGuard no_grad;
  const Tensor ids = random_indices({2, 9}, 0, 23, 105);
  const Tensor full = lm(ids);
  nn::KVCache cache = lm.make_cache();
  nn::DecoderCall call;
  call.cache = &cache;
  // A prompt of 4, then a chunk of 2 (bottom-right causal inside the chunk), then single tokens.
  std::vector<Tensor> pieces;
  pieces.push_back(lm.forward(ops::narrow(ids, 1, 0, 4), call));
  pieces.push_back(lm.forward(ops::narrow(ids, 1, 4, 2), call));
  for (int64_t t = 6; t < 9; ++t) pieces.push_back(lm.forward(ops::narrow(ids, 1, t, 1), call));
  CHECK(cache.length() == 9);
  check_close(ops::cat(pieces, 1), full, 2e-5, 1e-4, "cached vs full logits");
}

TEST_CASE("transformer: generate with a cache gives the tokens of full recomputation; top-k sampling") {
  Generator gen(8);
  DecoderLM lm(tiny_config(true, true), &gen);
  const Tensor prompt = random_indices({2, 3}, 0, 23, 106);
  nn::GenerateOptions o;
  o.max_new_tokens = 6;
  const Tensor cached = lm.generate(prompt, o);
  o.use_cache = false;
  const Tensor recomputed = lm.generate(prompt, o);
  CHECK(cached.shape() == Shape{2, 9});
  CHECK(to_vector<int64_t>(cached) == to_vector<int64_t>(recomputed));
  check_close(ops::narrow(cached, 1, 0, 3), prompt, 0, 0, "the prompt is kept");
  // Greedy = argmax of the full model's last logits, step by step (first new token).
  const Tensor first = ops::argmax(ops::select(lm(prompt), 1, 2), 1);
  CHECK(to_vector<int64_t>(first) == to_vector<int64_t>(ops::select(cached, 1, 3)));
  // top-k: every draw is among the k largest logits; the same seed gives the same tokens.
  Generator g1(9), g2(9);
  const Tensor logits = random_tensor({64, 23}, DType::f32, -2, 2, 107);
  const Tensor a = nn::sample_next(logits, 3, 0.8, &g1), b = nn::sample_next(logits, 3, 0.8, &g2);
  CHECK(to_vector<int64_t>(a) == to_vector<int64_t>(b));
  const Tensor top = ops::topk(logits, 3, 1).indices;
  const auto av = to_vector<int64_t>(a), tv = to_vector<int64_t>(top);
  std::set<int64_t> seen;
  for (size_t r = 0; r < av.size(); ++r) {
    CHECK((av[r] == tv[r * 3] || av[r] == tv[r * 3 + 1] || av[r] == tv[r * 3 + 2]));
    seen.insert(av[r] == tv[r * 3] ? 0 : av[r] == tv[r * 3 + 1] ? 1 : 2);
  }
  CHECK(seen.size() == 3);  // not always the argmax
  CHECK_THROWS_AS(nn::sample_next(logits, 0, 1.0, &g1), Error);
}

TEST_CASE("transformer: a few training steps reduce the loss on a toy sequence") {
  Generator gen(10);
  DecoderLM lm(tiny_config(), &gen);
  // Next-token prediction of a repeating pattern.
  std::vector<int64_t> seq;
  for (int64_t i = 0; i < 2 * 12; ++i) seq.push_back((i * 5) % 7 + 1);
  const Tensor ids = from_values(seq, {2, 12});
  const Tensor inputs = ops::narrow(ids, 1, 0, 11), targets = ops::reshape(ops::narrow(ids, 1, 1, 11), {22});
  nn::AdamOptions o;
  o.lr = 1e-2;
  nn::Adam adam(lm.parameters(), o);
  double first = 0, last = 0;
  for (int step = 0; step < 15; ++step) {
    lm.zero_grad();
    const Tensor loss = cross_entropy(reshape(lm(inputs), {22, 23}), targets);
    backward(loss);
    adam.step();
    (step == 0 ? first : last) = loss.item();
  }
  MESSAGE("loss " << first << " -> " << last);
  CHECK(last < 0.5 * first);
}

}  // namespace
}  // namespace loupe::test
