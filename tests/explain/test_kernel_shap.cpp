// KernelSHAP (explain/kernel_shap.hpp) and Shapley value sampling (explain/shapley_sampling.hpp):
// exact enumeration equals brute-force Shapley values (every permutation) of a small nonlinear
// net and is efficient to 1e-9 (sum = f(x) - f(x')); both sampled estimators are exact on a
// linear model and converge to the exact values like 1/sqrt(n) on the net (the RMS error over
// seeds at n = 64, 256, 1024 falls by about 2 per step); the sampled coalitions follow
// p(k) ~ 1/(k (M - k)); perturbations_per_eval and target grouping do not change the results.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>

#include "explain/kernel_shap.hpp"
#include "explain/shapley_sampling.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

struct Net {
  Tensor w1 = random_tensor({6, 7}, DType::f64, -1, 1, 1), b1 = random_tensor({6}, DType::f64, -1, 1, 2);
  Tensor w2 = random_tensor({3, 6}, DType::f64, -2, 2, 3);
  ForwardFn model = tanh_mlp(w1, b1, w2);
  Tensor x = random_tensor({2, 7}, DType::f64, -1, 1, 4);
  Tensor base = random_tensor({1, 7}, DType::f64, -0.3, 0.3, 5);
  std::vector<int64_t> ids = {0, 1, 1, 2, 3, 4, 4};  // M = 5
  static constexpr int64_t m = 5;
  Query query(Target target) const { return Query{model, {x}, target, Output::logit, {Baseline(base)}}; }
};

// Shapley values of feature groups by brute force over all M! orders (independent of the
// library's coalition machinery): (1, 7) per element for row `row`, class t.
Tensor brute_force_shapley(const Net& net, int64_t row, int64_t t) {
  const auto xv = values(ops::narrow(net.x, 0, row, 1)), bv = values(net.base);
  auto v = [&](const std::vector<bool>& in) {
    std::vector<double> copy;
    for (size_t e = 0; e < 7; ++e) copy.push_back(in[static_cast<size_t>(net.ids[e])] ? xv[e] : bv[e]);
    return values(net.model({from_values(copy, {1, 7}, DType::f64)}))[static_cast<size_t>(t)];
  };
  std::vector<int64_t> order(Net::m);
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> phi(Net::m, 0.0);
  int64_t count = 0;
  do {
    std::vector<bool> in(Net::m, false);
    double prev = v(in);
    for (int64_t g : order) {
      in[static_cast<size_t>(g)] = true;
      const double now = v(in);
      phi[static_cast<size_t>(g)] += now - prev;
      prev = now;
    }
    ++count;
  } while (std::next_permutation(order.begin(), order.end()));
  std::vector<double> out;
  for (int64_t id : net.ids) out.push_back(phi[static_cast<size_t>(id)] / static_cast<double>(count));
  return from_values(out, {1, 7}, DType::f64);
}

// One value per feature from a (1, 7) attribution row.
std::vector<double> per_feature(const Tensor& row, const std::vector<int64_t>& ids, int64_t m) {
  const auto v = values(row);
  std::vector<double> out(static_cast<size_t>(m));
  for (size_t e = 0; e < ids.size(); ++e) out[static_cast<size_t>(ids[e])] = v[e];
  return out;
}

}  // namespace

TEST_CASE("kernel_shap exact: brute-force Shapley values and efficiency to 1e-9") {
  const Net net;
  KernelShapOptions o;
  o.feature_mask = {from_values(net.ids, {7})};
  o.exact = true;
  o.perturbations_per_eval = 5;
  const Attribution a = kernel_shap(net.query(Target::several({{0, 2}, {1}})), o);
  const std::vector<std::pair<int64_t, int64_t>> rows = {{0, 0}, {0, 2}, {1, 1}};
  for (size_t r = 0; r < rows.size(); ++r) {
    const Tensor got = ops::narrow(a.attributions[0], 0, static_cast<int64_t>(r), 1);
    check_close(got, brute_force_shapley(net, rows[r].first, rows[r].second), 1e-12, 0, "row " + std::to_string(r));
    const auto phi = per_feature(got, net.ids, Net::m);
    const double sum = std::accumulate(phi.begin(), phi.end(), 0.0);
    const auto fx = values(net.model({ops::narrow(net.x, 0, rows[r].first, 1)}));
    const auto fb = values(net.model({net.base}));
    CHECK(std::abs(sum - (fx[static_cast<size_t>(rows[r].second)] - fb[static_cast<size_t>(rows[r].second)])) < 1e-9);
  }
}

TEST_CASE("kernel_shap and shapley_value_sampling: exact on a linear model") {
  const Tensor w = random_tensor({2, 6}, DType::f64, -1, 1, 1);
  const Tensor x = random_tensor({1, 6}, DType::f64, -1, 1, 3), base = random_tensor({1, 6}, DType::f64, -0.5, 0.5, 4);
  const std::vector<int64_t> ids = {0, 0, 1, 2, 2, 3};
  const Query q{linear_model(w, random_tensor({2}, DType::f64)), {x}, Target(1), Output::logit, {Baseline(base)}};
  // Expected: sum over the group of (x - x') w_1.
  const auto xv = values(x), bv = values(base), wv = values(w);
  std::vector<double> c(4, 0.0), expected;
  for (size_t e = 0; e < 6; ++e) c[static_cast<size_t>(ids[e])] += (xv[e] - bv[e]) * wv[6 + e];
  for (int64_t id : ids) expected.push_back(c[static_cast<size_t>(id)]);
  Generator gen(1);
  KernelShapOptions k;
  k.feature_mask = {from_values(ids, {6})};
  k.n_samples = 30;
  k.generator = &gen;
  check_close(kernel_shap(q, k).attributions[0], from_values(expected, {1, 6}, DType::f64), 1e-9, 0, "kernel_shap");
  ShapleySamplingOptions s;
  s.feature_mask = k.feature_mask;
  s.n_samples = 3;
  s.generator = &gen;
  check_close(shapley_value_sampling(q, s).attributions[0], from_values(expected, {1, 6}, DType::f64), 1e-12, 0,
              "shapley sampling");
}

TEST_CASE("kernel_shap and shapley_value_sampling converge to the exact values like 1/sqrt(n)") {
  const Net net;
  const Query q = net.query(Target(2));
  KernelShapOptions exact_options;
  exact_options.feature_mask = {from_values(net.ids, {7})};
  exact_options.exact = true;
  const Tensor exact = kernel_shap(q, exact_options).attributions[0];
  // RMS error over seeds and both rows, per sample count.
  auto rms = [&](bool kernel, int64_t n) {
    double sq = 0;
    const int seeds = 12;
    for (int seed = 0; seed < seeds; ++seed) {
      Generator gen(static_cast<uint64_t>(100 + seed));
      Tensor got;
      if (kernel) {
        KernelShapOptions o;
        o.feature_mask = exact_options.feature_mask;
        o.n_samples = n;
        o.generator = &gen;
        got = kernel_shap(q, o).attributions[0];
      } else {
        ShapleySamplingOptions o;
        o.feature_mask = exact_options.feature_mask;
        o.n_samples = n / 4;  // M = 5 evaluations each: comparable budgets
        o.generator = &gen;
        got = shapley_value_sampling(q, o).attributions[0];
      }
      const auto d = values(ops::sub(got, exact));
      for (double v : d) sq += v * v;
    }
    return std::sqrt(sq / seeds);
  };
  for (bool kernel : {true, false}) {
    const double e64 = rms(kernel, 64), e256 = rms(kernel, 256), e1024 = rms(kernel, 1024);
    INFO(std::string(kernel ? "kernel_shap" : "shapley sampling")
         << " RMS errors " << e64 << " " << e256 << " " << e1024);
    // 1/sqrt(n): each 4x more samples halves the error; allow 1.4x-3x per step.
    CHECK(e64 / e256 > 1.4);
    CHECK(e64 / e256 < 3.0);
    CHECK(e256 / e1024 > 1.4);
    CHECK(e256 / e1024 < 3.0);
    CHECK(e1024 > 0);
  }
}

TEST_CASE("kernel_shap: sampled coalition sizes follow p(k) ~ 1 / (k (M - k)); anchors first") {
  const int64_t m = 6, n = 20002;
  Generator gen(9);
  const std::vector<double> z = kernel_shap_coalitions(n, m, gen);
  REQUIRE(z.size() == static_cast<size_t>(n * m));
  std::vector<double> counts(static_cast<size_t>(m + 1), 0.0);
  for (int64_t s = 0; s < n; ++s) {
    const auto k = static_cast<size_t>(std::accumulate(z.begin() + s * m, z.begin() + (s + 1) * m, 0.0));
    if (s == 0) CHECK(k == static_cast<size_t>(m));
    if (s == 1) CHECK(k == 0);
    if (s >= 2) counts[k] += 1;
  }
  CHECK(counts[0] == 0);
  CHECK(counts[static_cast<size_t>(m)] == 0);
  double total = 0;
  for (int64_t k = 1; k < m; ++k) total += 1.0 / static_cast<double>(k * (m - k));
  for (int64_t k = 1; k < m; ++k) {
    const double p = 1.0 / static_cast<double>(k * (m - k)) / total;
    const double expected = p * static_cast<double>(n - 2);
    CHECK(std::abs(counts[static_cast<size_t>(k)] - expected) < 5 * std::sqrt(expected));  // 5 sigma
  }
  // Each feature is equally likely to be in a coalition of a given size (uniform subsets).
  std::vector<double> per_feature_count(static_cast<size_t>(m), 0.0);
  for (int64_t s = 2; s < n; ++s) {
    for (int64_t g = 0; g < m; ++g) per_feature_count[static_cast<size_t>(g)] += z[static_cast<size_t>(s * m + g)];
  }
  const double mean = std::accumulate(per_feature_count.begin(), per_feature_count.end(), 0.0) / static_cast<double>(m);
  for (double c : per_feature_count) CHECK(std::abs(c - mean) < 5 * std::sqrt(mean));
}

TEST_CASE("kernel_shap and shapley_value_sampling: chunking and target grouping do not matter") {
  const Net net;
  const Query q = net.query(Target::several({{2, 0}, {1}}));
  for (bool kernel : {true, false}) {
    auto run = [&](const Query& query, int64_t per_eval) {
      Generator gen(5);
      if (kernel) {
        KernelShapOptions o;
        o.feature_mask = {from_values(net.ids, {7})};
        o.n_samples = 40;
        o.perturbations_per_eval = per_eval;
        o.generator = &gen;
        return kernel_shap(query, o);
      }
      ShapleySamplingOptions o;
      o.feature_mask = {from_values(net.ids, {7})};
      o.n_samples = 6;
      o.perturbations_per_eval = per_eval;
      o.generator = &gen;
      return shapley_value_sampling(query, o);
    };
    const Attribution all = run(q, 0);
    check_close(run(q, 1).attributions[0], all.attributions[0], 1e-12, 0, "per_eval 1");
    check_close(run(q, 7).attributions[0], all.attributions[0], 1e-12, 0, "per_eval 7");
    const Attribution alone = run(net.query(Target::per_row({0, 1})), 0);
    check_close(ops::narrow(alone.attributions[0], 0, 0, 1), ops::narrow(all.attributions[0], 0, 1, 1), 1e-12, 0,
                "row 0 target 0 alone");
    check_close(ops::narrow(alone.attributions[0], 0, 1, 1), ops::narrow(all.attributions[0], 0, 2, 1), 1e-12, 0,
                "row 1 target 1 alone");
  }
}

TEST_CASE("kernel_shap and shapley_value_sampling: bad options raise") {
  const Tensor w = random_tensor({2, 20}, DType::f64);
  const Query q{linear_model(w), {random_tensor({1, 20}, DType::f64)}, Target(0)};
  KernelShapOptions exact;
  exact.exact = true;
  CHECK_THROWS_WITH_AS(kernel_shap(q, exact), doctest::Contains("exact enumeration needs M <= 16"), Error);
  KernelShapOptions few;
  few.n_samples = 1;
  CHECK_THROWS_WITH_AS(kernel_shap(q, few), doctest::Contains("n_samples >= 2"), Error);
  KernelShapOptions given;
  given.coalitions = ones({3, 19}, DType::f64);
  CHECK_THROWS_WITH_AS(kernel_shap(q, given), doctest::Contains("M = 20"), Error);
  const Query wide{
      linear_model(random_tensor({1, 10001}, DType::f64)), {random_tensor({1, 10001}, DType::f64)}, Target(0)};
  CHECK_THROWS_WITH_AS(kernel_shap(wide), doctest::Contains("kernel_shap: 10001 features is more than"), Error);
  ShapleySamplingOptions s;
  s.n_samples = 0;
  CHECK_THROWS_WITH_AS(shapley_value_sampling(q, s), doctest::Contains("n_samples must be >= 1"), Error);
}

}  // namespace loupe::test
