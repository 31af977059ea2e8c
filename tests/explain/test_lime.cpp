// LIME and C-LIME (explain/lime.hpp): exact recovery on linear models (LIME with least squares:
// sum over the group of (x - x') w; C-LIME: w itself), C-LIME's slope tends to the gradient as
// the noise shrinks, the kernel weights and Lasso against an independent computation over the
// same coalitions (cosine and euclidean), independence of perturbations_per_eval and of how
// targets are grouped, seeding, and bad options. Captum comparison: test_captum_surrogate.cpp.
#include <doctest/doctest.h>

#include "explain/lime.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

// sum over the scalars of feature g of (x - x') w_t: the coefficient of g in f(z) for linear f.
std::vector<double> group_contributions(const Tensor& x, const Tensor& base, const Tensor& w, int64_t t,
                                        const std::vector<int64_t>& ids, int64_t m) {
  const auto xv = values(x), bv = values(base), wv = values(w);
  std::vector<double> c(static_cast<size_t>(m), 0.0);
  for (size_t e = 0; e < ids.size(); ++e) {
    c[static_cast<size_t>(ids[e])] += (xv[e] - bv[e]) * wv[static_cast<size_t>(t) * ids.size() + e];
  }
  return c;
}

Tensor spread_ids(const std::vector<double>& c, const std::vector<int64_t>& ids) {
  std::vector<double> out;
  for (int64_t id : ids) out.push_back(c[static_cast<size_t>(id)]);
  return from_values(out, {1, static_cast<int64_t>(ids.size())}, DType::f64);
}

}  // namespace

TEST_CASE("lime: least squares recovers a linear model's group contributions exactly") {
  const Tensor w = random_tensor({2, 6}, DType::f64, -1, 1, 1);
  const Tensor x = random_tensor({1, 6}, DType::f64, -1, 1, 3);
  const Tensor base = random_tensor({1, 6}, DType::f64, -0.5, 0.5, 4);
  const std::vector<int64_t> ids = {0, 0, 1, 2, 2, 3};
  Generator gen(11);
  LimeOptions o;
  o.feature_mask = {from_values(ids, {6})};
  o.fit = SurrogateFit::least_squares;
  o.n_samples = 60;
  o.generator = &gen;
  const Attribution a =
      lime(Query{linear_model(w, random_tensor({2}, DType::f64)), {x}, Target(1), Output::logit, {Baseline(base)}}, o);
  check_close(a.attributions[0], spread_ids(group_contributions(x, base, w, 1, ids, 4), ids), 1e-9, 0, "coef");
}

TEST_CASE("lime: kernel weights and Lasso equal an independent computation on the same coalitions") {
  const Tensor w1 = random_tensor({5, 6}, DType::f64, -1, 1, 1), b1 = random_tensor({5}, DType::f64, -1, 1, 2);
  const Tensor w2 = random_tensor({3, 5}, DType::f64, -2, 2, 3);
  const ForwardFn model = tanh_mlp(w1, b1, w2);
  const Tensor x = random_tensor({1, 6}, DType::f64, -1, 1, 4), base = random_tensor({1, 6}, DType::f64, -0.3, 0.3, 5);
  const std::vector<int64_t> ids = {0, 1, 1, 2, 3, 3};
  const int64_t n = 40, m = 4;
  const Tensor z = bernoulli({n, m}, 0.5, DType::f64, nullptr);  // any 0/1 matrix
  const auto zv = values(z);
  for (LimeDistance distance : {LimeDistance::cosine, LimeDistance::euclidean}) {
    // Independently: each perturbed copy, its distance to x, kernel weight, model score.
    std::vector<double> weights, ys;
    const auto xv = values(x), bv = values(base);
    for (int64_t s = 0; s < n; ++s) {
      std::vector<double> copy;
      for (size_t e = 0; e < 6; ++e) copy.push_back(zv[static_cast<size_t>(s * m + ids[e])] > 0 ? xv[e] : bv[e]);
      double dot = 0, nx = 0, nc = 0, d2 = 0;
      for (size_t e = 0; e < 6; ++e) {
        dot += xv[e] * copy[e];
        nx += xv[e] * xv[e];
        nc += copy[e] * copy[e];
        d2 += (xv[e] - copy[e]) * (xv[e] - copy[e]);
      }
      const double d = distance == LimeDistance::cosine ? 1 - dot / (std::sqrt(nx) * std::sqrt(nc)) : std::sqrt(d2);
      weights.push_back(std::exp(-d * d / (2 * 0.7 * 0.7)));
      ys.push_back(values(model({from_values(copy, {1, 6}, DType::f64)}))[2]);
    }
    LassoOptions lasso;
    lasso.alpha = 0.003;
    const LinearFit fit =
        weighted_lasso(z, from_values(ys, {n}, DType::f64), from_values(weights, {n}, DType::f64), lasso);
    LimeOptions o;
    o.feature_mask = {from_values(ids, {6})};
    o.coalitions = z;
    o.distance = distance;
    o.kernel_width = 0.7;
    o.alpha = 0.003;
    o.perturbations_per_eval = 7;
    const Attribution a = lime(Query{model, {x}, Target(2), Output::logit, {Baseline(base)}}, o);
    check_close(a.attributions[0], spread_ids(values(fit.coef), ids), 1e-10, 0,
                distance == LimeDistance::cosine ? "cosine" : "euclidean");
    // Both penalised and unpenalised features occur, so the Lasso is really tested.
    const auto c = values(fit.coef);
    CHECK(std::count(c.begin(), c.end(), 0.0) < m);
  }
}

TEST_CASE("lime: independent of perturbations_per_eval; several targets equal each target alone") {
  const Tensor w1 = random_tensor({5, 6}, DType::f64, -1, 1, 1), b1 = random_tensor({5}, DType::f64, -1, 1, 2);
  const Tensor w2 = random_tensor({3, 5}, DType::f64, -2, 2, 3);
  const Tensor x = random_tensor({2, 6}, DType::f64, -1, 1, 4);
  const Query q{tanh_mlp(w1, b1, w2), {x}, Target::several({{2, 0}, {1}})};
  auto run = [&](const Query& query, int64_t per_eval) {
    Generator gen(5);
    LimeOptions o;
    o.n_samples = 50;
    o.perturbations_per_eval = per_eval;
    o.generator = &gen;
    o.alpha = 0.001;
    return lime(query, o);
  };
  const Attribution all = run(q, 0);
  check_close(run(q, 3).attributions[0], all.attributions[0], 1e-12, 0, "per_eval 3");
  check_close(run(q, 1).attributions[0], all.attributions[0], 1e-12, 0, "per_eval 1");
  // Row 0 target 2 alone (the generator draws row by row, so row 0 sees the same coalitions).
  const Attribution alone = run(Query{q.model, {x}, Target::per_row({2, 1})}, 0);
  check_close(ops::narrow(alone.attributions[0], 0, 0, 1), ops::narrow(all.attributions[0], 0, 0, 1), 1e-12, 0,
              "row 0 target 2");
  check_close(ops::narrow(alone.attributions[0], 0, 1, 1), ops::narrow(all.attributions[0], 0, 2, 1), 1e-12, 0,
              "row 1 target 1");
  const Attribution alone0 = run(Query{q.model, {x}, Target::per_row({0, 1})}, 0);
  check_close(ops::narrow(alone0.attributions[0], 0, 0, 1), ops::narrow(all.attributions[0], 0, 1, 1), 1e-12, 0,
              "row 0 target 0");
}

TEST_CASE("clime: recovers a linear model's weights; the slope tends to the gradient") {
  const Tensor w = random_tensor({3, 5}, DType::f64, -1, 1, 1);
  const Tensor x = random_tensor({2, 5}, DType::f64, -1, 1, 2);
  Generator gen(3);
  CLimeOptions o;
  o.n_samples = 40;
  o.generator = &gen;
  o.perturbations_per_eval = 16;
  const Attribution a = clime(Query{linear_model(w, random_tensor({3}, DType::f64)), {x}, Target::per_row({2, 0})}, o);
  check_close(a.attributions[0], weight_rows(w, {2, 0}), 1e-10, 0, "linear");
  // A smooth net: slope - gradient = O(stdev^2) (the quadratic term averages out to first order).
  const Tensor w1 = random_tensor({4, 5}, DType::f64, -1, 1, 4), b1 = random_tensor({4}, DType::f64, -1, 1, 5);
  const Tensor w2 = random_tensor({3, 4}, DType::f64, -1, 1, 6);
  const ForwardFn net = tanh_mlp(w1, b1, w2);
  const Tensor grad = explain::detail::target_gradients(net, {x}, {1, 1}, Output::logit)[0];
  CLimeOptions small;
  small.n_samples = 400;
  small.stdev = 1e-3;
  small.generator = &gen;
  const Attribution s = clime(Query{net, {x}, Target(1)}, small);
  CHECK(max_relative_error(s.attributions[0], grad) < 1e-3);
}

TEST_CASE("lime and clime: bad options raise") {
  const Tensor w = random_tensor({2, 4}, DType::f64);
  const Query q{linear_model(w), {random_tensor({1, 4}, DType::f64)}, Target(0)};
  LimeOptions o;
  o.coalitions = zeros({5, 3}, DType::f64);
  CHECK_THROWS_WITH_AS(lime(q, o), doctest::Contains("lime: coalitions must be (n, M) with M = 4"), Error);
  o.coalitions = full({5, 4}, 0.5, DType::f64);
  CHECK_THROWS_WITH_AS(lime(q, o), doctest::Contains("coalitions must hold 0 or 1"), Error);
  LimeOptions width;
  width.kernel_width = 0;
  CHECK_THROWS_WITH_AS(lime(q, width), doctest::Contains("kernel_width"), Error);
  // Every scalar of a large input as a feature: a clear error instead of a huge dense fit.
  const Query wide{
      linear_model(random_tensor({1, 10001}, DType::f64)), {random_tensor({1, 10001}, DType::f64)}, Target(0)};
  CHECK_THROWS_WITH_AS(lime(wide), doctest::Contains("lime: 10001 features is more than a surrogate fit can take"),
                       Error);
  CHECK_THROWS_WITH_AS(clime(wide), doctest::Contains("clime: 10001 features"), Error);
  CLimeOptions c;
  c.stdev = -1;
  CHECK_THROWS_WITH_AS(clime(q, c), doctest::Contains("clime: stdev must be > 0"), Error);
}

}  // namespace loupe::test
