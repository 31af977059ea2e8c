// Tests of the Uni-X KV cache (unix/model.hpp UnixCache) and sampling (unix/generate.hpp):
//   - the logits of a mixed text/image sequence fed through the cache in chunks (a prompt, then one
//     token at a time, then two) equal the full forward's at every position, for Uni-X (N = M = 1,
//     separated layers at both ends) and the shared model; the same-modality mask with a cache
//     against a loop
//   - generate with and without the cache gives the same tokens, greedy and top-k (same draws)
//   - `allowed` restricts the drawn ids; caption_prompt and levels_image (values, nearest upscaling,
//     errors); bad prompts and a cache of another batch are refused
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "autograd/autograd.hpp"
#include "tests/support.hpp"
#include "unix/data.hpp"
#include "unix/generate.hpp"
#include "unix/model.hpp"

using namespace loupe;
using namespace loupe::unix;
using loupe::test::max_abs_diff;

namespace {

// ids: 0..4 specials, 5..8 the characters "abc ", 9..12 the image levels 0..3.
Vocabulary tiny_vocab() { return Vocabulary("abc ", 4); }

UnixConfig tiny(int64_t n, int64_t m) {
  UnixConfig c;
  c.vocab_size = tiny_vocab().size();
  c.hidden = 16;
  c.intermediate = 24;
  c.n_layers = 4;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.qk_norm = true;
  c.n_separated_start = n;
  c.m_separated_end = m;
  return c;
}

}  // namespace

TEST_CASE("unix cache: chunked decoding equals the full forward, Uni-X and shared") {
  const Vocabulary vocab = tiny_vocab();
  // Two rows mixing text, IMAGE_START, image levels and IMAGE_END (both routings interleaved).
  const std::vector<int64_t> rows = {1, 5, 6,  3, 9, 10, 12, 4, 7, 2,  //
                                     1, 3, 11, 9, 9, 4,  5,  8, 6, 2};
  const Tensor ids = from_values(rows, {2, 10});
  // Plain variables, not a structured binding: clang before 16 cannot capture one in CAPTURE's lambda.
  for (const std::pair<int64_t, int64_t>& copies : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {0, 0}, {2, 1}}) {
    const int64_t n = copies.first, m = copies.second;
    CAPTURE(n);
    CAPTURE(m);
    Generator g(21);
    UnixLM lm(tiny(n, m), &g);
    NoGradGuard guard;
    const Tensor full = lm.forward(ids, vocab.vision_mask(ids));  // (2, 10, V)
    UnixCache cache = lm.make_cache();
    // Chunks: [0, 4), then 4, 5, 6 one at a time, then [7, 10).
    const std::vector<std::pair<int64_t, int64_t>> chunks = {{0, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 10}};
    for (const auto& [a, b] : chunks) {
      const Tensor part = ops::contiguous(ops::slice(ids, 1, a, b));
      const Tensor logits = lm.forward_cached(part, vocab.vision_mask(part), cache);
      CHECK(cache.length() == b);
      CHECK(max_abs_diff(logits, ops::slice(full, 1, a, b)) < 1e-5);
    }
    // A cache of batch 2 refuses a batch of 1.
    const Tensor one = from_values(std::vector<int64_t>{5}, {1, 1});
    CHECK_THROWS_AS(lm.forward_cached(one, vocab.vision_mask(one), cache), Error);
  }
}

TEST_CASE("unix cache: the same-modality mask over past and new tokens") {
  const Tensor q = ops::ne(from_values(std::vector<int64_t>{1, 0}, {1, 2}), zeros({1, 2}, DType::i64));
  const Tensor k = ops::ne(from_values(std::vector<int64_t>{0, 1, 1, 0, 1}, {1, 5}), zeros({1, 5}, DType::i64));
  const Tensor mask = same_modality_mask(q, k);
  REQUIRE(mask.shape() == Shape{1, 1, 2, 5});
  const std::vector<double> got = to_vector<double>(mask);
  const std::vector<int> qv = {1, 0}, kv = {0, 1, 1, 0, 1};
  for (size_t i = 0; i < 2; ++i) {
    for (size_t j = 0; j < 5; ++j) CHECK((got[i * 5 + j] != 0.0) == (qv[i] == kv[j]));
  }
  CHECK_THROWS_AS(same_modality_mask(q, zeros({2, 5}, DType::b8)), Error);
}

TEST_CASE("unix generate: the cache gives the same tokens as recomputation, greedy and top-k") {
  const Vocabulary vocab = tiny_vocab();
  Generator g(33);
  UnixLM lm(tiny(1, 1), &g);
  const Tensor prompt = from_values(std::vector<int64_t>{1, 5, 7, 3, 1, 6, 6, 3}, {2, 4});
  for (int64_t top_k : {1, 3}) {
    CAPTURE(top_k);
    SampleOptions options;
    options.max_new_tokens = 12;
    options.top_k = top_k;
    options.temperature = 1.5;
    Generator draws_a(4), draws_b(4);
    options.generator = &draws_a;
    options.use_cache = true;
    const Tensor cached = generate(lm, vocab, prompt, options);
    options.generator = &draws_b;
    options.use_cache = false;
    const Tensor recomputed = generate(lm, vocab, prompt, options);
    REQUIRE(cached.shape() == Shape{2, 16});
    CHECK(to_vector<int64_t>(cached) == to_vector<int64_t>(recomputed));
    CHECK(to_vector<int64_t>(ops::slice(cached, 1, 0, 4)) == to_vector<int64_t>(prompt));
  }
  // Allowed ids only: every drawn token is an image level.
  SampleOptions options;
  options.max_new_tokens = 10;
  options.top_k = 4;
  Generator draws(5);
  options.generator = &draws;
  options.allowed = image_token_ids(vocab);
  CHECK(options.allowed == std::vector<int64_t>{9, 10, 11, 12});
  const std::vector<int64_t> out = to_vector<int64_t>(generate(lm, vocab, prompt, options));
  for (size_t r = 0; r < 2; ++r) {
    for (size_t t = 4; t < 14; ++t) CHECK(vocab.is_image_level_token(out[r * 14 + t]));
  }
  options.allowed = {99};
  CHECK_THROWS_AS(generate(lm, vocab, prompt, options), Error);
  CHECK_THROWS_AS(generate(lm, vocab, zeros({2, 0}, DType::i64)), Error);
  CHECK_THROWS_AS(generate(lm, vocab, zeros({2, 3}, DType::f32)), Error);
}

TEST_CASE("unix generate: caption prompts and images of levels") {
  const Vocabulary vocab = tiny_vocab();
  CHECK(caption_prompt(vocab, "ab c") == std::vector<int64_t>{1, 5, 6, 8, 7, 3});
  CHECK_THROWS_AS(caption_prompt(vocab, "abz"), Error);
  // 2x2 levels 0, 1, 2, 3 -> x3 upscaling, values l / 3.
  const Tensor image = levels_image(vocab, {9, 10, 11, 12}, 2, 2, 3);
  REQUIRE(image.shape() == Shape{1, 6, 6});
  const std::vector<double> v = to_vector<double>(image);
  for (int64_t y = 0; y < 6; ++y) {
    for (int64_t x = 0; x < 6; ++x) {
      const double expected = static_cast<double>((y / 3) * 2 + x / 3) / 3.0;
      CHECK(v[static_cast<size_t>(y * 6 + x)] == doctest::Approx(expected));
    }
  }
  CHECK_THROWS_AS(levels_image(vocab, {9, 10, 11}, 2, 2, 3), Error);     // 3 tokens for 2x2
  CHECK_THROWS_AS(levels_image(vocab, {9, 10, 11, 5}, 2, 2, 3), Error);  // a character is not a level
  CHECK_THROWS_AS(levels_image(vocab, {9, 10, 11, 12}, 2, 2, 0), Error);
}
