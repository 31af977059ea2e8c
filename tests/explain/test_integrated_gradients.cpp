// Integrated gradients: the quadrature rules, exactness on linear and quadratic models,
// completeness (the delta shrinks as steps grow), chunking independence.
#include <doctest/doctest.h>

#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

TEST_CASE("Gauss-Legendre nodes and weights match the known values") {
  auto check = [](int64_t n, const std::vector<double>& nodes, const std::vector<double>& weights) {
    const Quadrature q = gauss_legendre(n);
    REQUIRE(q.alphas.size() == nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      CHECK(q.alphas[i] == doctest::Approx(nodes[i]).epsilon(1e-15));
      CHECK(q.weights[i] == doctest::Approx(weights[i]).epsilon(1e-14));
    }
  };
  check(1, {0.0}, {2.0});
  check(2, {-1 / std::sqrt(3.0), 1 / std::sqrt(3.0)}, {1, 1});
  check(3, {-std::sqrt(0.6), 0, std::sqrt(0.6)}, {5.0 / 9, 8.0 / 9, 5.0 / 9});
  check(5, {-0.9061798459386640, -0.5384693101056831, 0, 0.5384693101056831, 0.9061798459386640},
        {0.2369268850561891, 0.4786286704993665, 0.5688888888888889, 0.4786286704993665, 0.2369268850561891});
  // n points integrate polynomials up to degree 2n - 1 exactly: int_{-1}^{1} x^k = 2 / (k + 1) (k even).
  for (int64_t n : {10, 20, 50, 200}) {
    const Quadrature q = gauss_legendre(n);
    for (int64_t k : {int64_t{0}, int64_t{2}, 2 * n - 2}) {
      double integral = 0;
      for (size_t i = 0; i < q.alphas.size(); ++i) integral += q.weights[i] * std::pow(q.alphas[i], static_cast<double>(k));
      CHECK(integral == doctest::Approx(2.0 / static_cast<double>(k + 1)).epsilon(1e-12));
    }
    for (size_t i = 1; i < q.alphas.size(); ++i) CHECK(q.alphas[i] > q.alphas[i - 1]);
  }
}

TEST_CASE("the Riemann rules follow Captum's definitions") {
  const Quadrature left = quadrature(IntegrationRule::riemann_left, 4);
  CHECK(left.alphas == std::vector<double>{0, 0.25, 0.5, 0.75});
  CHECK(left.weights == std::vector<double>(4, 0.25));
  CHECK(quadrature(IntegrationRule::riemann_right, 4).alphas == std::vector<double>{0.25, 0.5, 0.75, 1});
  CHECK(quadrature(IntegrationRule::riemann_middle, 4).alphas == std::vector<double>{0.125, 0.375, 0.625, 0.875});
  const Quadrature trap = quadrature(IntegrationRule::riemann_trapezoid, 5);
  CHECK(trap.alphas == std::vector<double>{0, 0.25, 0.5, 0.75, 1});
  CHECK(trap.weights == std::vector<double>{0.1, 0.2, 0.2, 0.2, 0.1});  // Captum's: sums to 1 - 1/n
  const Quadrature exact = quadrature(IntegrationRule::trapezoid, 5);
  CHECK(exact.weights == std::vector<double>{0.125, 0.25, 0.25, 0.25, 0.125});
  const Quadrature gl = quadrature(IntegrationRule::gauss_legendre, 2);
  CHECK(gl.alphas[0] == doctest::Approx((1 - 1 / std::sqrt(3.0)) / 2));
  CHECK(gl.weights[1] == doctest::Approx(0.5));
  CHECK_THROWS_AS(quadrature(IntegrationRule::riemann_left, 1), Error);
  CHECK_THROWS_AS(gauss_legendre(0), Error);
}

TEST_CASE("IG of a linear model is (x - x') * w for every rule") {
  const Tensor w = random_tensor({3, 5}, DType::f64, -1, 1, 31), b = random_tensor({3}, DType::f64, -1, 1, 32);
  const Tensor x = random_tensor({4, 5}, DType::f64, -2, 2, 33);
  const Tensor x0 = random_tensor({5}, DType::f64, -1, 1, 34);
  Query q{linear_model(w, b), {x}, Target::per_row({0, 2, 1, 2})};
  q.baselines = {x0};
  const Tensor expected = ops::mul(ops::sub(x, ops::expand(x0, {4, 5})), weight_rows(w, {0, 2, 1, 2}));
  for (auto rule : {IntegrationRule::gauss_legendre, IntegrationRule::riemann_left, IntegrationRule::riemann_right,
                    IntegrationRule::riemann_middle, IntegrationRule::trapezoid}) {
    const Attribution a = integrated_gradients(q, {.n_steps = 7, .method = rule, .return_convergence_delta = true});
    check_close(a.attributions[0], expected, 1e-14, 1e-12, "IG, linear model");
    for (double d : values(a.delta)) CHECK(std::abs(d) < 1e-12);
  }
  // Captum's riemann_trapezoid weights sum to 1 - 1/n, so it gives (1 - 1/n) of the exact answer.
  const Attribution t = integrated_gradients(q, {.n_steps = 8, .method = IntegrationRule::riemann_trapezoid});
  check_close(t.attributions[0], ops::mul(expected, ops::scalar_like(7.0 / 8.0, expected)), 1e-14, 1e-12,
              "Captum trapezoid");
  // Without multiply_by_inputs: the integrated gradient w_t itself.
  check_close(integrated_gradients(q, {.n_steps = 3, .multiply_by_inputs = false}).attributions[0],
              weight_rows(w, {0, 2, 1, 2}), 1e-14, 1e-12, "multipliers");
}

TEST_CASE("IG of a quadratic is exact for rules exact on linear integrands") {
  // f(x) = sum(x^2): the integrand 2 (x' + a (x - x')) is linear in a, so the midpoint, trapezoid and
  // Gauss-Legendre rules are exact: IG = x^2 - x'^2.
  auto f = [](const std::vector<Tensor>& in) { return sum(square(in[0]), {1}); };
  const Tensor x = random_tensor({2, 6}, DType::f64, -2, 2, 41);
  const Tensor x0 = random_tensor({2, 6}, DType::f64, -1, 1, 42);
  Query q{f, {x}};
  q.baselines = {x0};
  const Tensor expected = ops::sub(ops::mul(x, x), ops::mul(x0, x0));
  for (auto rule : {IntegrationRule::gauss_legendre, IntegrationRule::riemann_middle, IntegrationRule::trapezoid}) {
    check_close(integrated_gradients(q, {.n_steps = 3, .method = rule}).attributions[0], expected, 1e-13, 1e-12,
                "quadratic");
  }
}

TEST_CASE("IG completeness: the delta shrinks as the steps grow on a smooth net") {
  const Tensor w1 = random_tensor({8, 5}, DType::f64, -1.5, 1.5, 51), b1 = random_tensor({8}, DType::f64, -1, 1, 52);
  const Tensor w2 = random_tensor({3, 8}, DType::f64, -1.5, 1.5, 53);
  Query q{tanh_mlp(w1, b1, w2), {random_tensor({3, 5}, DType::f64, -2, 2, 54)}, Target::per_row({0, 1, 2})};
  auto worst_delta = [&](IntegrationRule rule, int64_t n) {
    const Attribution a = integrated_gradients(q, {.n_steps = n, .method = rule, .return_convergence_delta = true});
    double worst = 0;
    for (double d : values(a.delta)) worst = std::max(worst, std::abs(d));
    return worst;
  };
  // Riemann middle: error O(1/n^2).
  const double m5 = worst_delta(IntegrationRule::riemann_middle, 5), m20 = worst_delta(IntegrationRule::riemann_middle, 20),
               m100 = worst_delta(IntegrationRule::riemann_middle, 100);
  CHECK(m20 < m5 / 4);
  CHECK(m100 < m20 / 4);
  CHECK(m100 < 1e-3);
  // Gauss-Legendre converges much faster on a smooth integrand.
  const double g5 = worst_delta(IntegrationRule::gauss_legendre, 5), g20 = worst_delta(IntegrationRule::gauss_legendre, 20);
  CHECK(g20 < g5);
  CHECK(g20 < 1e-8);
  CHECK(g20 < m100);
}

TEST_CASE("IG: internal_batch_size splits the stacked steps without changing the result") {
  const Tensor w1 = random_tensor({8, 5}, DType::f32, -1, 1, 61), b1 = random_tensor({8}, DType::f32, -1, 1, 62);
  const Tensor w2 = random_tensor({3, 8}, DType::f32, -1, 1, 63);
  Query q{tanh_mlp(w1, b1, w2), {random_tensor({3, 5}, DType::f32, -2, 2, 64)}, Target::per_row({2, 1, 0})};
  const Attribution all = integrated_gradients(q, {.n_steps = 10, .return_convergence_delta = true});
  for (int64_t chunk : {1, 4, 7, 29, 30}) {
    const Attribution part =
        integrated_gradients(q, {.n_steps = 10, .internal_batch_size = chunk, .return_convergence_delta = true});
    check_close(part.attributions[0], all.attributions[0], 1e-7, 1e-5, "chunked IG");
    check_close(part.delta, all.delta, 1e-6, 0, "chunked delta");
  }
}

}  // namespace loupe::test
