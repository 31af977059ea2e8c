// PGI / PGU (explain/evaluate/perturbation_gap.hpp): on a linear model with zero perturbation the
// gap at k is |sum of w_i x_i over the top-k (bottom-k) features by |attribution||, computed here
// independently on the host; the Gaussian gap's mean tends to sqrt(2/pi) s |w_S|; standard errors
// from a known sample; independence of the chunk size; several targets per row; bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>

#include "explain/evaluate/perturbation_gap.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

// Row r's gap at k for f = x . w_t (zero perturbation), features ordered by |attr| (stable).
double linear_gap(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& attr,
                  int64_t k, bool top) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return top ? std::abs(attr[a]) > std::abs(attr[b]) : std::abs(attr[a]) < std::abs(attr[b]);
  });
  double s = 0;
  for (int64_t i = 0; i < k; ++i) s += w[order[static_cast<size_t>(i)]] * x[order[static_cast<size_t>(i)]];
  return std::abs(s);
}

}  // namespace

TEST_CASE("evaluate perturbation gap: mean and standard error of a known sample") {
  double m = 0, se = 0;
  mean_and_standard_error({1, 2, 3, 4}, m, se);
  CHECK(m == doctest::Approx(2.5));
  CHECK(se == doctest::Approx(std::sqrt(5.0 / 3.0) / 2.0));  // std (n - 1) = sqrt(5/3), / sqrt(4)
  mean_and_standard_error({7}, m, se);
  CHECK(m == 7.0);
  CHECK(se == 0.0);
  CHECK_THROWS_AS(mean_and_standard_error({}, m, se), Error);
}

TEST_CASE("evaluate perturbation gap: PGI and PGU of a linear model with zero perturbation are closed forms") {
  const int64_t n = 6, d = 7, classes = 2;
  const Tensor w = random_tensor({classes, d}, DType::f64, -2, 2, 1);
  const Tensor x = random_tensor({n, d}, DType::f64, 0, 1, 2);
  const Query q{linear_model(w), {x}, Target(1)};
  // Any attribution will do (the ranking is what matters): a random one.
  Attribution a;
  a.attributions = {random_tensor({n, d}, DType::f64, -1, 1, 3)};
  for (int64_t r = 0; r < n; ++r) {
    a.rows.push_back(r);
    a.targets.push_back(1);
  }
  const auto xv = values(x), wv = values(w), av = values(a.attributions[0]);
  const std::vector<double> w1(wv.begin() + d, wv.end());
  for (bool top : {true, false}) {
    CAPTURE(top);
    PerturbationGapOptions o;
    o.max_k = 5;
    const PerturbationGap g = perturbation_gap(q, a, top, o);
    REQUIRE(g.k == std::vector<int64_t>{1, 2, 3, 4, 5});
    REQUIRE(g.gaps.size(0) == n);
    for (int64_t k = 1; k <= 5; ++k) {
      std::vector<double> column;
      for (int64_t r = 0; r < n; ++r) {
        const std::vector<double> xr(xv.begin() + r * d, xv.begin() + (r + 1) * d);
        const std::vector<double> ar(av.begin() + r * d, av.begin() + (r + 1) * d);
        column.push_back(linear_gap(xr, w1, ar, k, top));
        CHECK(values(g.gaps)[static_cast<size_t>(r * 5 + k - 1)] == doctest::Approx(column.back()).epsilon(1e-12));
      }
      double m = 0, se = 0;
      mean_and_standard_error(column, m, se);
      CHECK(g.mean[static_cast<size_t>(k - 1)] == doctest::Approx(m).epsilon(1e-12));
      CHECK(g.standard_error[static_cast<size_t>(k - 1)] == doctest::Approx(se).epsilon(1e-12));
    }
    double area = 0;
    for (size_t i = 1; i < 5; ++i) area += 0.5 * (g.mean[i - 1] + g.mean[i]);
    CHECK(g.auc == doctest::Approx(area / 4.0));
  }
  // With the exact attribution w * x (GxI) PGI at k = d - 1 plus PGU at 1 is the full sum's split.
  Attribution exact = input_x_gradient(q);
  PerturbationGapOptions o;
  o.max_k = d;
  const PerturbationGap top = pgi(q, exact, o), bottom = pgu(q, exact, o);
  for (int64_t r = 0; r < n; ++r) {
    double total = 0;
    for (int64_t i = 0; i < d; ++i) total += xv[static_cast<size_t>(r * d + i)] * w1[static_cast<size_t>(i)];
    CHECK(values(top.gaps)[static_cast<size_t>(r * d + d - 1)] == doctest::Approx(std::abs(total)));
    CHECK(values(bottom.gaps)[static_cast<size_t>(r * d + d - 1)] == doctest::Approx(std::abs(total)));
  }
}

TEST_CASE("evaluate perturbation gap: Gaussian gaps tend to sqrt(2/pi) s |w_S| and do not depend on the chunks") {
  const int64_t d = 4;
  const Tensor w = from_values(std::vector<double>{3, -1, 0.5, 2}, {1, d}, DType::f64);
  const Tensor x = random_tensor({2, d}, DType::f64, 0, 1, 4);
  const Query q{linear_model(w), {x}, Target(0)};
  Attribution a = input_x_gradient(q);
  a.attributions[0] = ops::expand(ops::abs(w), {2, d});  // rank by |w|: 3, 2, -1, 0.5
  PerturbationGapOptions o;
  o.perturbation = GapPerturbation::gaussian;
  o.stdev = 0.2;
  o.n_samples = 20000;
  o.max_k = 2;
  Generator g1(7), g2(7);
  o.generator = &g1;
  const PerturbationGap big = pgi(q, a, o);
  o.generator = &g2;
  o.rows_per_eval = 12;
  const PerturbationGap chunked = pgi(q, a, o);
  check_close(chunked.gaps, big.gaps, 1e-12, 1e-12, "chunks");
  const double c = std::sqrt(2.0 / M_PI) * 0.2;
  CHECK(big.mean[0] == doctest::Approx(c * 3.0).epsilon(0.03));
  CHECK(big.mean[1] == doctest::Approx(c * std::sqrt(13.0)).epsilon(0.03));
}

TEST_CASE("evaluate perturbation gap: several targets per row and bad input") {
  const int64_t d = 3;
  const Tensor w = random_tensor({3, d}, DType::f64, -1, 1, 5);
  const Tensor x = random_tensor({2, d}, DType::f64, 0, 1, 6);
  const Query q{linear_model(w), {x}, Target::each_of({0, 2})};
  const Attribution a = input_x_gradient(q);
  REQUIRE(a.rows.size() == 4);
  const PerturbationGap g = pgi(q, a, {.max_k = 1});
  const auto xv = values(x), wv = values(w), av = values(a.attributions[0]);
  for (size_t r = 0; r < 4; ++r) {
    const int64_t row = a.rows[r], t = a.targets[r];
    const std::vector<double> xr(xv.begin() + row * d, xv.begin() + (row + 1) * d);
    const std::vector<double> wr(wv.begin() + t * d, wv.begin() + (t + 1) * d);
    const std::vector<double> ar(av.begin() + static_cast<int64_t>(r) * d,
                                 av.begin() + static_cast<int64_t>(r + 1) * d);
    CHECK(values(g.gaps)[r] == doctest::Approx(linear_gap(xr, wr, ar, 1, true)));
  }
  CHECK_THROWS_AS(pgi(q, a, {.max_k = 4}), Error);
  Attribution wrong = a;
  wrong.attributions[0] = zeros({4, d + 1}, DType::f64);
  CHECK_THROWS_AS(pgi(q, wrong, {}), Error);
  Query two = q;
  two.inputs.push_back(x);
  CHECK_THROWS_AS(pgu(two, a, {}), Error);
}

}  // namespace loupe::test
