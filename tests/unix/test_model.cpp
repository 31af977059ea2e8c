// Tests of unix/model.hpp (the Uni-X two-end-separated decoder): N = M = 0 is exactly the plain
// shared nn::DecoderLM (names, shapes, initial weights, logits); parameter names of separated
// layers parse with parse_matrix_name; total and active parameter counts; the same-modality
// causal mask against a loop; routing (a copy's weights never reach the other modality's
// positions); same-modality attention inside a separated layer; causality; a few Adam steps on a
// hand-made digits-like batch reduce masked_token_loss and reach both copies.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "autograd/autograd.hpp"
#include "nn/optim/optimizer.hpp"
#include "tests/support.hpp"
#include "unix/conflict.hpp"
#include "unix/data.hpp"
#include "unix/loss.hpp"
#include "unix/model.hpp"

using namespace loupe;
using namespace loupe::unix;
using loupe::test::max_abs_diff;

namespace {

// ids: 0..4 specials, 5..8 the characters "abc ", 9..12 the image levels 0..3.
Vocabulary tiny_vocab() { return Vocabulary("abc ", 4); }

UnixConfig tiny_unix(int64_t n, int64_t m, bool tied = false) {
  UnixConfig c;
  c.vocab_size = tiny_vocab().size();
  c.hidden = 16;
  c.intermediate = 24;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.qk_norm = true;
  c.n_separated_start = n;
  c.m_separated_end = m;
  c.tie_embeddings = tied;
  return c;
}

// Max |a - b| over the positions `rows` (dim 1).
double max_diff_at(const Tensor& a, const Tensor& b, const std::vector<int64_t>& rows) {
  double d = 0.0;
  for (int64_t t : rows) d = std::max(d, max_abs_diff(ops::select(a, 1, t), ops::select(b, 1, t)));
  return d;
}

void perturb(nn::Module& module, double amount) {
  NoGradGuard guard;
  for (const Tensor& p : module.parameters()) ops::add_(p, full_like(p, amount));
}

Tensor ids_of(const std::vector<int64_t>& ids) { return from_values(ids, {1, static_cast<int64_t>(ids.size())}); }

}  // namespace

TEST_CASE("unix model: N = M = 0 is the plain shared decoder (names, weights, logits)") {
  for (bool tied : {false, true}) {
    const UnixConfig c = tiny_unix(0, 0, tied);
    Generator g1(5), g2(5);
    UnixLM unix_lm(c, &g1);
    nn::DecoderLM plain(c.decoder(), &g2);
    const nn::NamedTensors a = unix_lm.named_parameters(), b = plain.named_parameters();
    REQUIRE(a.size() == b.size());
    int64_t plain_total = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].first == b[i].first);
      CHECK(a[i].second.shape() == b[i].second.shape());
      CHECK(max_abs_diff(a[i].second, b[i].second) == 0.0);  // same registration order, same draws
      plain_total += b[i].second.numel();
    }
    const ParameterCount count = count_parameters(unix_lm);
    CHECK(count.total == plain_total);
    CHECK(count.active == plain_total);
    const Tensor ids = loupe::test::random_indices({2, 7}, 0, c.vocab_size, 3);
    CHECK(max_abs_diff(unix_lm(ids), plain(ids)) == 0.0);
    CHECK(max_abs_diff(unix_lm.forward(ids, tiny_vocab().vision_mask(ids)), plain(ids)) == 0.0);
  }
}

TEST_CASE("unix model: separated layer names, conflict parsing and parameter counts") {
  const UnixConfig c = tiny_unix(1, 1);
  Generator g(6);
  UnixLM lm(c, &g);
  std::map<std::string, int64_t> kinds_per_copy;  // "0.text" -> number of matrices
  for (const auto& named : lm.named_parameters()) {
    const std::string& name = named.first;  // not a structured binding: clang < 16 cannot capture one in CHECK_MESSAGE
    if (name.rfind("model.layers.", 0) != 0) continue;
    const std::optional<MatrixId> id = parse_matrix_name(name);
    const bool is_matrix = name.find("_proj.weight") != std::string::npos;
    CHECK_MESSAGE(id.has_value() == is_matrix, name);
    if (!id) continue;
    const std::string rest = name.substr(std::string("model.layers.").size());
    const int64_t layer = std::stoll(rest.substr(0, rest.find('.')));
    CHECK(id->layer == layer);
    CHECK(name.find(id->kind + "_proj.weight") != std::string::npos);
    std::string copy = "shared";
    if (name.find(".text.") != std::string::npos) copy = "text";
    if (name.find(".vision.") != std::string::npos) copy = "vision";
    CHECK_MESSAGE((copy == "shared") == (layer == 1), name);  // layer 1 of 3 is the shared middle
    kinds_per_copy[std::to_string(layer) + "." + copy] += 1;
  }
  const std::map<std::string, int64_t> expected = {{"0.text", 7}, {"0.vision", 7}, {"1.shared", 7},
                                                   {"2.text", 7}, {"2.vision", 7}};
  CHECK(kinds_per_copy == expected);
  // The shared-layer filter of the conflict analysis picks exactly layer 1.
  const nn::NamedTensors shared = select_matrices(lm.named_parameters(), shared_layers(3, 1, 1));
  CHECK(shared.size() == 7);
  for (const auto& [name, p] : shared) CHECK(name.rfind("model.layers.1.", 0) == 0);

  // Totals: the shared model of the same shape plus one more copy of each separated layer.
  Generator g2(6);
  nn::DecoderLM plain(c.decoder(), &g2);
  int64_t plain_total = 0;
  for (const Tensor& p : plain.parameters()) plain_total += p.numel();
  int64_t layer_params = 0;
  for (const Tensor& p : plain.model->layers[0]->parameters()) layer_params += p.numel();
  const ParameterCount count = count_parameters(lm);
  CHECK(count.total == plain_total + 2 * layer_params);
  CHECK(count.active == plain_total);
  // Tied: no lm_head, and the embedding counted once.
  Generator g3(6);
  UnixLM tied(tiny_unix(1, 1, true), &g3);
  CHECK(count_parameters(tied).total == count.total - c.vocab_size * c.hidden);

  UnixConfig bad = tiny_unix(2, 2);
  CHECK_THROWS_AS(UnixLM(bad, &g), Error);
  const Tensor ids = ids_of({1, 5, 6});
  CHECK_THROWS_AS(lm(ids), Error);  // separated layers need the vision mask
}

TEST_CASE("unix model: the same-modality causal mask") {
  const std::vector<uint8_t> v = {0, 0, 1, 1, 0, 1};
  const Tensor vision = ops::ne(from_values(std::vector<int64_t>(v.begin(), v.end()), {1, 6}),
                                zeros({1, 6}, DType::i64));
  const Tensor mask = same_modality_causal_mask(vision);
  REQUIRE(mask.shape() == Shape{1, 1, 6, 6});
  const std::vector<double> m = to_vector<double>(mask);
  for (int64_t i = 0; i < 6; ++i) {
    for (int64_t j = 0; j < 6; ++j) {
      const bool expected = j <= i && v[static_cast<size_t>(i)] == v[static_cast<size_t>(j)];
      CHECK_MESSAGE((m[static_cast<size_t>(i * 6 + j)] != 0.0) == expected, i << "," << j);
    }
  }
  CHECK_THROWS_AS(same_modality_causal_mask(zeros({1, 6}, DType::i64)), Error);
}

TEST_CASE("unix model: routing keeps each copy's weights to its own modality") {
  const Vocabulary vocab = tiny_vocab();
  Generator g(7);
  UnixLM lm(tiny_unix(1, 1), &g);
  const Tensor text = ids_of({1, 5, 6, 7, 8, 5, 6});             // BOS + characters: all text
  const Tensor image = ids_of({3, 9, 12, 10, 11, 9, 12});        // IMAGE_START + levels: all vision
  const Tensor mixed = ids_of({1, 5, 6, 3, 9, 12, 4});           // text, then an image
  const Tensor text_before = lm.forward(text, vocab.vision_mask(text));
  const Tensor image_before = lm.forward(image, vocab.vision_mask(image));
  const Tensor mixed_before = lm.forward(mixed, vocab.vision_mask(mixed));

  auto& first = dynamic_cast<SeparatedLayer&>(*lm.model->layers[0]);
  auto& last = dynamic_cast<SeparatedLayer&>(*lm.model->layers[2]);
  perturb(*first.vision, 0.3);
  perturb(*last.vision, 0.3);
  CHECK(max_abs_diff(lm.forward(text, vocab.vision_mask(text)), text_before) == 0.0);
  // Positive control: the vision copies do change image positions.
  const Tensor mixed_after = lm.forward(mixed, vocab.vision_mask(mixed));
  CHECK(max_diff_at(mixed_after, mixed_before, {0, 1, 2}) == 0.0);  // text before the image (causal)
  CHECK(max_diff_at(mixed_after, mixed_before, {3, 4, 5}) > 1e-3);
  CHECK(max_diff_at(mixed_after, mixed_before, {6}) > 1e-3);  // IMAGE_END reads the image in the shared layer

  perturb(*first.text, 0.3);
  perturb(*last.text, 0.3);
  // An all-vision sequence never uses a text copy.
  // (It did change since image_before: the vision copies were perturbed above.)
  CHECK(max_abs_diff(lm.forward(image, vocab.vision_mask(image)), image_before) > 1e-3);
  const Tensor image_mid = lm.forward(image, vocab.vision_mask(image));
  perturb(*first.text, -0.5);
  perturb(*last.text, 0.2);
  CHECK(max_abs_diff(lm.forward(image, vocab.vision_mask(image)), image_mid) == 0.0);
  CHECK(max_abs_diff(lm.forward(text, vocab.vision_mask(text)), text_before) > 1e-3);
}

TEST_CASE("unix model: a separated layer attends within one modality, causally") {
  nn::DecoderConfig d = tiny_unix(1, 1).decoder();
  Generator g(8);
  SeparatedLayer layer(d, &g);
  const int64_t t = 7;
  const std::vector<int64_t> is_image = {0, 0, 1, 1, 0, 1, 0};
  const Tensor vision = ops::ne(from_values(is_image, {1, t}), zeros({1, t}, DType::i64));
  const Tensor positions = nn::default_positions(0, t, Device::cpu());
  const Tensor x = loupe::test::random_tensor({1, t, d.hidden}, DType::f32, -1.0, 1.0, 21);
  const Tensor y = layer.forward(x, vision, positions);

  // Perturb text token 1 (before the image tokens 2, 3, 5).
  Tensor x1 = ops::contiguous(ops::clone(x));
  ops::add_(ops::select(x1, 1, 1), full_like(ops::select(x1, 1, 1), 0.7));
  const Tensor y1 = layer.forward(x1, vision, positions);
  CHECK(max_diff_at(y1, y, {0}) == 0.0);         // causal
  CHECK(max_diff_at(y1, y, {2, 3, 5}) == 0.0);   // images do not attend to text
  CHECK(max_diff_at(y1, y, {4, 6}) > 1e-3);      // later text tokens do

  // Perturb image token 3: only image token 5 after it (and itself) change.
  Tensor x3 = ops::contiguous(ops::clone(x));
  ops::add_(ops::select(x3, 1, 3), full_like(ops::select(x3, 1, 3), 0.7));
  const Tensor y3 = layer.forward(x3, vision, positions);
  CHECK(max_diff_at(y3, y, {0, 1, 2, 4, 6}) == 0.0);
  CHECK(max_diff_at(y3, y, {3, 5}) > 1e-3);
}

TEST_CASE("unix model: causality of the whole model") {
  const Vocabulary vocab = tiny_vocab();
  Generator g(9);
  UnixLM lm(tiny_unix(1, 1), &g);
  const Tensor a = ids_of({1, 5, 3, 9, 10, 4, 6, 7});
  const Tensor b = ids_of({1, 5, 3, 9, 12, 4, 8, 7});  // differs from position 4 on
  const Tensor la = lm.forward(a, vocab.vision_mask(a)), lb = lm.forward(b, vocab.vision_mask(b));
  CHECK(max_diff_at(la, lb, {0, 1, 2, 3}) == 0.0);
  CHECK(max_diff_at(la, lb, {4, 5, 6, 7}) > 1e-4);
}

TEST_CASE("unix model: Adam steps on a digits-like batch reduce the loss and reach both copies") {
  const Vocabulary vocab = tiny_vocab();
  // BOS caption IMAGE_START 2x2 image IMAGE_END EOS, and the reverse layout; captions "ab"/"ca".
  const std::vector<std::vector<int64_t>> rows = {
      {1, 5, 6, 3, 9, 12, 12, 9, 4, 2},   // "ab" -> image 0 3 3 0
      {1, 7, 5, 3, 12, 9, 9, 12, 4, 2},   // "ca" -> image 3 0 0 3
      {1, 3, 9, 12, 12, 9, 4, 5, 6, 2},   // image 0 3 3 0 -> "ab"
      {1, 3, 12, 9, 9, 12, 4, 7, 5, 2},   // image 3 0 0 3 -> "ca"
  };
  std::vector<int64_t> in, out;
  for (const auto& r : rows) {
    in.insert(in.end(), r.begin(), r.end() - 1);
    out.insert(out.end(), r.begin() + 1, r.end());
  }
  const int64_t b = 4, t = 9;
  const Tensor tokens = from_values(in, {b, t}), targets = from_values(out, {b, t});
  const Tensor weights = ones({b, t}, DType::f32);
  const Tensor vision = vocab.vision_mask(tokens);

  Generator g(10);
  UnixLM lm(tiny_unix(1, 1), &g);
  nn::AdamOptions o;
  o.lr = 1e-2;
  nn::Adam adam(lm.parameters(), o);
  double first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    lm.zero_grad();
    const Tensor loss = masked_token_loss(lm.forward(tokens, vision), targets, weights);
    backward(loss);
    if (step == 0) {
      for (const auto& named : lm.named_parameters()) {
        const std::string& name = named.first;  // not a structured binding (clang < 16, REQUIRE_MESSAGE)
        const Tensor grad = named.second.grad();
        REQUIRE_MESSAGE(grad.defined(), name);
        CHECK_MESSAGE(max_abs_diff(grad, zeros_like(grad)) > 0.0, name);  // both copies, every layer
      }
    }
    adam.step();
    (step == 0 ? first : last) = loss.item();
  }
  MESSAGE("loss " << first << " -> " << last);
  CHECK(last < 0.6 * first);
}
