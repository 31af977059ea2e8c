// Tests of unix/conflict.hpp and unix/loss.hpp: the cosine and conflict math on hand-made vectors,
// matrix-name parsing and the shared-layer filter, mean-gradient accumulation on a tiny linear
// model with known gradients, the whole analysis on losses linear in the weights (so every mean
// gradient is known in closed form), the CSV, and the weighted next-token loss.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/autograd.hpp"
#include "tests/support.hpp"
#include "unix/conflict.hpp"
#include "unix/data.hpp"
#include "unix/loss.hpp"

using namespace loupe;
using namespace loupe::unix;
namespace fs = std::filesystem;

namespace {

std::vector<double> mean_of(const std::vector<std::vector<double>>& vectors, const std::vector<int64_t>& which) {
  std::vector<double> out(vectors.front().size(), 0.0);
  for (int64_t i : which) {
    for (size_t k = 0; k < out.size(); ++k) out[k] += vectors[static_cast<size_t>(i)][k];
  }
  for (double& v : out) v /= static_cast<double>(which.size());
  return out;
}

std::vector<std::vector<double>> random_vectors(int64_t count, int64_t size, uint64_t seed) {
  std::vector<std::vector<double>> out;
  for (int64_t i = 0; i < count; ++i) {
    out.push_back(to_vector<double>(loupe::test::random_tensor({size}, DType::f64, -1.0, 1.0, seed + static_cast<uint64_t>(i))));
  }
  return out;
}

// <W, A>: a loss whose gradient with respect to W is exactly A.
Tensor linear_in(const Tensor& w, const std::vector<double>& a) {
  return sum(mul(w, from_values(a, w.shape(), w.dtype())));
}

}  // namespace

TEST_CASE("unix conflict math: cosines and the conflict score") {
  CHECK(cosine({1.0, 0.0}, {1.0, 1.0}) == doctest::Approx(1.0 / std::sqrt(2.0)));
  CHECK(cosine({1.0, 2.0, 3.0}, {2.0, 4.0, 6.0}) == doctest::Approx(1.0));
  CHECK(cosine({1.0, 2.0}, {-2.0, 1.0}) == doctest::Approx(0.0));
  CHECK(std::isnan(cosine({0.0, 0.0}, {1.0, 2.0})));
  CHECK_THROWS_AS(cosine({1.0}, {1.0, 2.0}), Error);

  const std::vector<double> g = {0.3, -1.2, 2.0, 0.5};
  const std::vector<double> a = {0.2, -1.0, 1.5, 0.9};
  const std::vector<double> b = {0.4, -1.1, 2.2, -0.1};
  const double cos_ab = cosine(a, b);
  // Identical text and image-text gradients: cos = 1, so conflict = -(1 - cos_AB) = cos_AB - 1 <= 0.
  const double same = cosine(g, g);
  CHECK(same == doctest::Approx(1.0));
  CHECK(conflict_score(same, cos_ab) == doctest::Approx(-(1.0 - cos_ab)));
  // Opposite gradients: cos = -1, so conflict = 1 + cos_AB.
  std::vector<double> minus_g;
  for (double v : g) minus_g.push_back(-v);
  const double opposite = cosine(g, minus_g);
  CHECK(opposite == doctest::Approx(-1.0));
  CHECK(conflict_score(opposite, cos_ab) == doctest::Approx(1.0 + cos_ab));
  // Orthogonal: conflict = cos_AB.
  CHECK(conflict_score(0.0, cos_ab) == doctest::Approx(cos_ab));
  CHECK(std::isnan(conflict_score(std::nan(""), 0.5)));

  // Sums of dot products are the products of the concatenated vectors (the per-layer "all" rows).
  DotProducts d = dot_products(std::vector<double>{1.0, 2.0}, std::vector<double>{3.0, -1.0});
  d += dot_products(std::vector<double>{0.5}, std::vector<double>{4.0});
  CHECK(d.cosine() == doctest::Approx(cosine({1.0, 2.0, 0.5}, {3.0, -1.0, 4.0})));
  // The tensor form agrees with the vector form, in float64 whatever the input dtype.
  const Tensor ta = from_values(a, {2, 2}, DType::f32);
  const Tensor tb = from_values(b, {4}, DType::f64);
  CHECK(dot_products(ta, tb).cosine() == doctest::Approx(cos_ab).epsilon(1e-6));
}

TEST_CASE("unix conflict: parameter names give the layer and the matrix kind") {
  auto check = [](const std::string& name, int64_t layer, const std::string& kind) {
    const auto id = parse_matrix_name(name);
    REQUIRE_MESSAGE(id.has_value(), name);
    CHECK_MESSAGE(id->layer == layer, name);
    CHECK_MESSAGE(id->kind == kind, name);
  };
  check("layers.3.self_attn.q_proj.weight", 3, "q");
  check("model.layers.0.self_attn.k_proj.weight", 0, "k");
  check("model.layers.11.self_attn.v_proj.weight", 11, "v");
  check("model.layers.2.self_attn.o_proj.weight", 2, "o");
  check("model.layers.5.mlp.gate_proj.weight", 5, "gate");
  check("model.layers.5.mlp.up_proj.weight", 5, "up");
  check("model.layers.5.mlp.down_proj.weight", 5, "down");
  check("model.layers.0.vision.self_attn.q_proj.weight", 0, "q");  // a modality copy in between
  for (const std::string name : {"model.layers.3.self_attn.q_proj.bias", "model.layers.3.input_layernorm.weight",
                                 "model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                                 "model.layers.x.self_attn.q_proj.weight", "layers.3.self_attn.qk_proj.weight",
                                 "q_proj.weight", "model.blocks.3.self_attn.q_proj.weight"}) {
    CHECK_FALSE_MESSAGE(parse_matrix_name(name).has_value(), name);
  }
  CHECK(matrix_kinds() == std::vector<std::string>{"q", "k", "v", "o", "gate", "up", "down"});
}

TEST_CASE("unix conflict: only the shared layers are measured") {
  // L = 6, N = M = 1: layers 1..4 are shared.
  const MatrixFilter shared = shared_layers(6, 1, 1);
  for (int64_t layer = 0; layer < 6; ++layer) CHECK(shared(MatrixId{layer, "q"}) == (layer >= 1 && layer <= 4));
  const MatrixFilter baseline = shared_layers(6, 0, 0);  // N = M = 0: the fully shared model
  for (int64_t layer = 0; layer < 6; ++layer) CHECK(baseline(MatrixId{layer, "down"}));
  CHECK_THROWS_AS(shared_layers(4, 2, 2), Error);
  CHECK_THROWS_AS(shared_layers(4, -1, 0), Error);

  nn::NamedTensors params;
  for (const std::string name : {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                                 "model.layers.1.self_attn.q_proj.weight", "model.layers.1.input_layernorm.weight",
                                 "model.layers.4.mlp.down_proj.weight", "model.layers.5.mlp.up_proj.weight"}) {
    params.emplace_back(name, zeros({2, 2}));
  }
  const nn::NamedTensors picked = select_matrices(params, shared);
  REQUIRE(picked.size() == 2);
  CHECK(picked[0].first == "model.layers.1.self_attn.q_proj.weight");
  CHECK(picked[1].first == "model.layers.4.mlp.down_proj.weight");
  CHECK(picked[0].second.is_same(params[2].second));
  CHECK(select_matrices(params).size() == 4);  // every layer matrix without a filter
}

TEST_CASE("unix conflict: mean gradients of a tiny linear model") {
  // loss_i = 0.5 * || W x_i - y_i ||^2, so dL/dW = (W x_i - y_i) x_i^T.
  const int64_t n = 4;
  Tensor w = loupe::test::random_tensor({2, 3}, DType::f32, -1.0, 1.0, 21);
  w.set_requires_grad();
  const auto xs = random_vectors(n, 3, 100);
  const auto ys = random_vectors(n, 2, 200);
  const std::vector<double> wv = to_vector<double>(w);
  std::vector<std::vector<double>> expected_grad;
  for (int64_t i = 0; i < n; ++i) {
    const auto& x = xs[static_cast<size_t>(i)];
    const auto& y = ys[static_cast<size_t>(i)];
    std::vector<double> g(6);
    for (int r = 0; r < 2; ++r) {
      double residual = -y[static_cast<size_t>(r)];
      for (int c = 0; c < 3; ++c) residual += wv[static_cast<size_t>(r * 3 + c)] * x[static_cast<size_t>(c)];
      for (int c = 0; c < 3; ++c) g[static_cast<size_t>(r * 3 + c)] = residual * x[static_cast<size_t>(c)];
    }
    expected_grad.push_back(g);
  }
  std::vector<int64_t> calls;
  const BatchLoss loss = [&](int64_t i) {
    calls.push_back(i);
    const Tensor x = from_values(xs[static_cast<size_t>(i)], {3, 1}, DType::f32);
    const Tensor y = from_values(ys[static_cast<size_t>(i)], {2, 1}, DType::f32);
    const Tensor r = sub(matmul(w, x), y);
    return mul(sum(mul(r, r)), 0.5);
  };
  const auto means = mean_gradients(loss, n, {{0, 1}, {2}, {}, {1, 2}}, {w});
  REQUIRE(means.size() == 4);
  CHECK(calls == std::vector<int64_t>{0, 1, 2});  // batch 3 is in no group; each batch once
  loupe::test::check_close(means[0][0], from_values(mean_of(expected_grad, {0, 1}), {2, 3}, DType::f64), 1e-5, 1e-6, "mean gradient");
  loupe::test::check_close(means[1][0], from_values(expected_grad[2], {2, 3}, DType::f64), 1e-5, 1e-6, "mean gradient");
  CHECK(ops::sum(ops::abs(means[2][0])).item() == 0.0);  // an empty group: zeros
  loupe::test::check_close(means[3][0], from_values(mean_of(expected_grad, {1, 2}), {2, 3}, DType::f64), 1e-5, 1e-6, "mean gradient");
  CHECK(means[0][0].dtype() == DType::f64);
  CHECK_FALSE(w.grad().defined());  // .grad is left alone

  // A parameter the loss does not reach gets zeros; bad input is refused.
  Tensor unused = zeros({2});
  unused.set_requires_grad();
  const auto with_unused = mean_gradients(loss, n, {{0}}, {w, unused});
  CHECK(ops::sum(ops::abs(with_unused[0][1])).item() == 0.0);
  CHECK_THROWS_AS(mean_gradients(loss, n, {{4}}, {w}), Error);
  CHECK_THROWS_AS(mean_gradients(loss, n, {{0}}, {zeros({2})}), Error);  // does not require a gradient
  const BatchLoss not_scalar = [&](int64_t) { return mul(w, 2.0); };
  CHECK_THROWS_AS(mean_gradients(not_scalar, n, {{0}}, {w}), Error);
}

TEST_CASE("unix conflict: the whole analysis on losses with known gradients") {
  // Two shared layers with q and down matrices; every loss is <W, A_i>, so each mean gradient is
  // the mean of the A_i it covers.
  nn::NamedTensors matrices;
  std::vector<Tensor> weights;
  for (const std::string name : {"model.layers.2.mlp.down_proj.weight", "model.layers.2.self_attn.q_proj.weight",
                                 "model.layers.1.self_attn.q_proj.weight"}) {
    Tensor w = zeros({2, 3});
    w.set_requires_grad();
    matrices.emplace_back(name, w);
    weights.push_back(w);
  }
  const int64_t nt = 3, nm = 4, size = 6;
  // Per matrix p and batch i: its gradient vectors for text, image-text, image-token and text-token losses.
  std::vector<std::vector<std::vector<double>>> text(3), mm(3), image_part(3), text_part(3);
  for (size_t p = 0; p < 3; ++p) {
    text[p] = random_vectors(nt, size, 1000 + 10 * p);
    mm[p] = random_vectors(nm, size, 2000 + 10 * p);
    image_part[p] = random_vectors(nm, size, 3000 + 10 * p);
    text_part[p] = random_vectors(nm, size, 4000 + 10 * p);
  }
  // Matrix 0's image-text gradients are minus its text gradients' mean: a full conflict.
  const std::vector<double> t0 = mean_of(text[0], {0, 1, 2});
  for (auto& v : mm[0]) {
    for (size_t k = 0; k < v.size(); ++k) v[k] = -t0[k];
  }
  auto total = [&](const std::vector<std::vector<std::vector<double>>>& parts, int64_t i) {
    Tensor l = linear_in(weights[0], parts[0][static_cast<size_t>(i)]);
    for (size_t p = 1; p < 3; ++p) l = add(l, linear_in(weights[p], parts[p][static_cast<size_t>(i)]));
    return l;
  };
  ConflictInputs inputs;
  inputs.text_loss = [&](int64_t i) { return total(text, i); };
  inputs.text_batches = nt;
  inputs.multimodal_loss = [&](int64_t i) { return total(mm, i); };
  inputs.multimodal_batches = nm;
  inputs.within_batch_losses = [&](int64_t i) { return std::make_pair(total(image_part, i), total(text_part, i)); };
  ConflictOptions options;
  options.seed = 9;
  options.step = 500;
  const std::vector<ConflictRow> rows = gradient_conflict(inputs, matrices, options);

  // The halves: the pool [text 0..2, image-text 3..6] permuted with the seed, 3 + 3, one left out.
  const std::vector<int64_t> order = seeded_permutation(nt + nm, 9);
  const std::vector<int64_t> half_a = {order[0], order[1], order[2]};
  const std::vector<int64_t> half_b = {order[3], order[4], order[5]};
  auto pooled = [&](size_t p) {
    std::vector<std::vector<double>> all = text[p];
    all.insert(all.end(), mm[p].begin(), mm[p].end());
    return all;
  };
  struct Expected {
    std::vector<double> gt, gm, ga, gb, gi, gx;
  };
  std::vector<Expected> e(3);
  for (size_t p = 0; p < 3; ++p) {
    e[p] = {mean_of(text[p], {0, 1, 2}), mean_of(mm[p], {0, 1, 2, 3}), mean_of(pooled(p), half_a),
            mean_of(pooled(p), half_b), mean_of(image_part[p], {0, 1, 2, 3}), mean_of(text_part[p], {0, 1, 2, 3})};
  }
  // Layer 1: q (matrix 2); layer 2: q (matrix 1), down (matrix 0), then its "all" row.
  REQUIRE(rows.size() == 4);
  const std::vector<std::pair<std::string, size_t>> order_of_rows = {{"q", 2}, {"q", 1}, {"down", 0}};
  for (size_t r = 0; r < 3; ++r) {
    const ConflictRow& row = rows[r];
    const Expected& x = e[order_of_rows[r].second];
    CHECK(row.kind == order_of_rows[r].first);
    CHECK(row.parameter == matrices[order_of_rows[r].second].first);
    CHECK(row.layer == (r == 0 ? 1 : 2));
    CHECK(row.step == 500);
    CHECK(row.numel == 6);
    CHECK(row.cos_text_mm == doctest::Approx(cosine(x.gt, x.gm)).epsilon(1e-5));
    CHECK(row.cos_a_b == doctest::Approx(cosine(x.ga, x.gb)).epsilon(1e-5));
    CHECK(row.conflict == doctest::Approx(-(cosine(x.gt, x.gm) - cosine(x.ga, x.gb))).epsilon(1e-5));
    CHECK(row.within_batch_cos_image_text == doctest::Approx(cosine(x.gi, x.gx)).epsilon(1e-5));
  }
  CHECK(rows[2].cos_text_mm == doctest::Approx(-1.0));  // the planted full conflict
  const ConflictRow& all = rows[3];
  CHECK(all.kind == "all");
  CHECK(all.layer == 2);
  CHECK(all.numel == 12);
  auto concat = [](const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> out = a;
    out.insert(out.end(), b.begin(), b.end());
    return out;
  };
  CHECK(all.cos_text_mm == doctest::Approx(cosine(concat(e[0].gt, e[1].gt), concat(e[0].gm, e[1].gm))).epsilon(1e-5));
  CHECK(all.cos_a_b == doctest::Approx(cosine(concat(e[0].ga, e[1].ga), concat(e[0].gb, e[1].gb))).epsilon(1e-5));

  // Another seed draws other halves (so another baseline); the raw cosine does not move.
  options.seed = 10;
  const auto other = gradient_conflict(inputs, matrices, options);
  CHECK(other[0].cos_text_mm == doctest::Approx(rows[0].cos_text_mm));
  // Without the within-batch losses that column is NaN; without layer rows there are 3 rows.
  inputs.within_batch_losses = nullptr;
  options.layer_rows = false;
  const auto plain = gradient_conflict(inputs, matrices, options);
  CHECK(plain.size() == 3);
  CHECK(std::isnan(plain[0].within_batch_cos_image_text));

  // Bad input.
  nn::NamedTensors not_a_matrix = {{"model.norm.weight", weights[0]}};
  CHECK_THROWS_AS(gradient_conflict(inputs, not_a_matrix, options), Error);
  CHECK_THROWS_AS(gradient_conflict(inputs, {}, options), Error);
  ConflictInputs no_text = inputs;
  no_text.text_batches = 0;
  CHECK_THROWS_AS(gradient_conflict(no_text, matrices, options), Error);
}

TEST_CASE("unix conflict: CSV text and atomic file") {
  ConflictRow a;
  a.step = 100;
  a.layer = 3;
  a.kind = "q";
  a.parameter = "model.layers.3.self_attn.q_proj.weight";
  a.numel = 4096;
  a.cos_text_mm = 0.25;
  a.cos_a_b = 0.75;
  a.conflict = 0.5;
  a.within_batch_cos_image_text = std::nan("");
  ConflictRow b = a;
  b.kind = "all";
  b.parameter = "";
  b.conflict = -0.125;
  const std::string csv = conflict_csv({a, b});
  CHECK(csv ==
        "step,layer,kind,parameter,numel,cos_text_mm,cos_a_b,conflict,within_batch_cos_image_text_not_paper_metric\n"
        "100,3,q,model.layers.3.self_attn.q_proj.weight,4096,0.25,0.75,0.5,\n"
        "100,3,all,,4096,0.25,0.75,-0.125,\n");

  const fs::path dir = fs::temp_directory_path() / ("loupe_unix_conflict_csv_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path file = dir / "conflict.csv";
  write_conflict_csv(file.string(), {a, b});
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str() == csv);
  CHECK_FALSE(fs::exists(dir / "conflict.csv.tmp"));
  CHECK_THROWS_AS(write_conflict_csv((dir / "missing" / "x.csv").string(), {a}), Error);
  ConflictRow comma = a;
  comma.parameter = "a,b";
  CHECK_THROWS_AS(conflict_csv({comma}), Error);
  fs::remove_all(dir);
}

TEST_CASE("unix masked_token_loss: weighted mean of per-token cross-entropy") {
  const int64_t B = 2, T = 3, V = 5;
  Tensor logits = loupe::test::random_tensor({B, T, V}, DType::f64, -2.0, 2.0, 5);
  logits.set_requires_grad();
  const std::vector<int64_t> targets = {0, 4, 2, 1, 1, 3};
  const std::vector<double> weights = {1, 0, 1, 1, 0, 0};
  const Tensor loss = masked_token_loss(logits, from_values(targets, {B, T}), from_values(weights, {B, T}, DType::f32));
  // By hand: -log softmax(logits[b, t])[target], averaged over the 3 weighted positions.
  const std::vector<double> lv = to_vector<double>(logits);
  double expected = 0.0;
  for (int64_t i = 0; i < B * T; ++i) {
    double denom = 0.0;
    for (int64_t v = 0; v < V; ++v) denom += std::exp(lv[static_cast<size_t>(i * V + v)]);
    const double ce = std::log(denom) - lv[static_cast<size_t>(i * V + targets[static_cast<size_t>(i)])];
    expected += weights[static_cast<size_t>(i)] * ce;
  }
  CHECK(loss.item() == doctest::Approx(expected / 3.0).epsilon(1e-10));
  // Positions with weight 0 get no gradient.
  const std::vector<Tensor> g = grad({loss}, {logits});
  const std::vector<double> gv = to_vector<double>(g[0]);
  for (int64_t v = 0; v < V; ++v) CHECK(gv[static_cast<size_t>(1 * V + v)] == 0.0);
  // An all-zero mask: zero loss, not NaN.
  const Tensor none = masked_token_loss(logits, from_values(targets, {B, T}), zeros({B, T}));
  CHECK(none.item() == 0.0);
  CHECK_THROWS_AS(masked_token_loss(logits, from_values(targets, {B * T}), zeros({B * T})), Error);
}
