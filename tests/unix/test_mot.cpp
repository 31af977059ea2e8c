// Tests of the Mixture-of-Transformers arm (unix/mot.hpp, UnixConfig::mixture_of_transformers):
//   - with the vision copy set equal to the text copy, a MoT model is exactly the shared
//     nn::DecoderLM with those weights (checks the whole per-token q/k/v/o, norms and MLP assembly)
//   - attention is global: an image position's output depends on an earlier text token (a Uni-X
//     separated layer would hide it)
//   - routing: a text-only loss gives every vision weight a zero gradient and the text ones not
//   - the KV cache in chunks equals the full forward; parameter counts; config errors; the conflict
//     analysis refuses a model with no shared layer
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/autograd.hpp"
#include "tests/support.hpp"
#include "unix/data.hpp"
#include "unix/loss.hpp"
#include "unix/model.hpp"
#include "unix/mot.hpp"
#include "unix/run.hpp"

using namespace loupe;
using namespace loupe::unix;
using loupe::test::max_abs_diff;

namespace {

// ids: 0..4 specials, 5..8 the characters "abc ", 9..12 the image levels 0..3.
Vocabulary mot_vocab() { return Vocabulary("abc ", 4); }

UnixConfig mot_config() {
  UnixConfig c;
  c.vocab_size = mot_vocab().size();
  c.hidden = 16;
  c.intermediate = 24;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.qk_norm = true;
  c.mixture_of_transformers = true;
  return c;
}

const std::vector<int64_t> kRows = {1, 5, 6,  3, 9, 10, 12, 4, 7, 2,  //
                                    1, 3, 11, 9, 9, 4,  5,  8, 6, 2};

}  // namespace

TEST_CASE("unix mot: equal copies make exactly the shared decoder") {
  const UnixConfig c = mot_config();
  Generator g(3);
  UnixLM lm(c, &g);
  // vision := text in every layer, and the shared model's state from the text copies.
  nn::StateDict shared_state;
  {
    NoGradGuard guard;
    const nn::NamedTensors params = lm.named_parameters();
    for (const auto& [name, p] : params) {
      const size_t at = name.find(".vision.");
      if (at != std::string::npos) {
        const std::string text_name = name.substr(0, at) + ".text." + name.substr(at + 8);
        for (const auto& [other, q] : params) {
          if (other == text_name) ops::copy_(p, q);
        }
        continue;
      }
      const size_t t = name.find(".text.");
      shared_state[t == std::string::npos ? name : name.substr(0, t) + "." + name.substr(t + 6)] = p;
    }
  }
  nn::DecoderLM plain(c.decoder());
  plain.load_state_dict(shared_state, true);
  const Tensor ids = from_values(kRows, {2, 10});
  CHECK(max_abs_diff(lm.forward(ids, mot_vocab().vision_mask(ids)), plain(ids)) < 1e-5);
}

TEST_CASE("unix mot: global attention, routing of gradients, cache, counts, errors") {
  const Vocabulary vocab = mot_vocab();
  const UnixConfig c = mot_config();
  Generator g(4);
  UnixLM lm(c, &g);
  NoGradGuard guard;
  // Global attention: changing the caption character at position 1 changes the logits at the
  // image position 5 (a Uni-X model with every layer separated would not).
  std::vector<int64_t> a = {1, 5, 6, 3, 9, 10}, b = {1, 7, 6, 3, 9, 10};
  const Tensor ia = from_values(a, {1, 6}), ib = from_values(b, {1, 6});
  const Tensor la = lm.forward(ia, vocab.vision_mask(ia)), lb = lm.forward(ib, vocab.vision_mask(ib));
  CHECK(max_abs_diff(ops::select(la, 1, 5), ops::select(lb, 1, 5)) > 1e-4);
  UnixConfig all_separated = c;
  all_separated.mixture_of_transformers = false;
  all_separated.n_separated_start = 3;
  Generator g2(4);
  UnixLM uni(all_separated, &g2);
  const Tensor ua = uni.forward(ia, vocab.vision_mask(ia)), ub = uni.forward(ib, vocab.vision_mask(ib));
  CHECK(max_abs_diff(ops::select(ua, 1, 5), ops::select(ub, 1, 5)) == 0.0);

  // The KV cache in chunks.
  const Tensor ids = from_values(kRows, {2, 10});
  const Tensor full = lm.forward(ids, vocab.vision_mask(ids));
  UnixCache cache = lm.make_cache();
  for (const auto& [s, e] : std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {3, 4}, {4, 5}, {5, 10}}) {
    const Tensor part = ops::contiguous(ops::slice(ids, 1, s, e));
    CHECK(max_abs_diff(lm.forward_cached(part, vocab.vision_mask(part), cache), ops::slice(full, 1, s, e)) < 1e-5);
  }

  // Counts: every layer twice in total, once active.
  nn::DecoderLM plain(c.decoder());
  int64_t plain_total = 0, layer_total = 0;
  for (const Tensor& p : plain.parameters()) plain_total += p.numel();
  for (const Tensor& p : plain.model->layers[0]->parameters()) layer_total += p.numel();
  const ParameterCount count = count_parameters(lm);
  CHECK(count.total == plain_total + 3 * layer_total);
  CHECK(count.active == plain_total);

  UnixConfig bad = c;
  bad.n_separated_start = 1;
  CHECK_THROWS_AS(UnixLM(bad, &g), Error);
  CHECK_THROWS_AS(lm(ids), Error);  // needs the vision mask
  RunConfig run;
  run.arm = "mot";
  run.front = 1;
  run.back = 0;
  CHECK_THROWS_WITH_AS(run.check(), doctest::Contains("--separated-front"), Error);
  run.front = 0;
  CHECK(model_config(run, 20).mixture_of_transformers);
}

TEST_CASE("unix mot: a text-only loss reaches only the text copies") {
  const Vocabulary vocab = mot_vocab();
  Generator g(5);
  UnixLM lm(mot_config(), &g);
  const Tensor ids = from_values(std::vector<int64_t>{1, 5, 6, 7, 8, 5}, {1, 6});
  const Tensor targets = from_values(std::vector<int64_t>{5, 6, 7, 8, 5, 2}, {1, 6});
  const Tensor loss = masked_token_loss(lm.forward(ids, vocab.vision_mask(ids)), targets, ones({1, 6}));
  const nn::NamedTensors params = lm.named_parameters();
  std::vector<Tensor> tensors;
  for (const auto& [name, p] : params) tensors.push_back(p);
  const std::vector<Tensor> grads = grad({loss}, tensors, {}, false, true);
  int64_t text_nonzero = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const double norm = grads[i].defined() ? ops::sum(ops::abs(grads[i])).item() : 0.0;
    if (params[i].first.find(".vision.") != std::string::npos) {
      CHECK_MESSAGE(norm == 0.0, params[i].first);
    } else if (params[i].first.find(".text.") != std::string::npos && norm > 0) {
      ++text_nonzero;
    }
  }
  CHECK(text_nonzero > 20);
}
