// The float64 regression solvers behind LIME, C-LIME and KernelSHAP (explain/linear_fit.hpp):
// closed forms (noiseless data is fitted exactly, the weighted 1-d formulas, the Lasso's soft
// threshold), rank-deficient designs (minimum-norm solution), and bad input. The scikit-learn
// fixture comparison is in tests/explain/test_captum_surrogate.cpp.
#include <doctest/doctest.h>

#include "explain/linear_fit.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

TEST_CASE("weighted_least_squares: noiseless data is fitted exactly, with and without intercept") {
  const Tensor x = random_tensor({20, 4}, DType::f64, -1, 1, 3);
  const Tensor beta = random_tensor({2, 4}, DType::f64, -2, 2, 5);  // (T, M)
  const Tensor b = from_values(std::vector<double>{0.5, -1.5}, {2}, DType::f64);
  const Tensor w = random_tensor({20}, DType::f64, 0.1, 3, 9);
  const Tensor y = ops::add(ops::matmul(x, ops::transpose(beta, 0, 1)), b);  // (20, 2)
  const LinearFit fit = weighted_least_squares(x, y, w, true);
  CHECK(fit.rank == 4);
  check_close(fit.coef, beta, 1e-11, 0, "coef");
  check_close(fit.intercept, b, 1e-11, 0, "intercept");
  const LinearFit no_b = weighted_least_squares(x, ops::matmul(x, ops::transpose(beta, 0, 1)), w, false);
  check_close(no_b.coef, beta, 1e-11, 0, "coef without intercept");
  check_close(no_b.intercept, zeros({2}, DType::f64), 0, 0, "no intercept");
  // A 1-d target gives (1, M).
  const LinearFit one = weighted_least_squares(x, ops::select(y, 1, 0), Tensor(), true);
  check_close(one.coef, ops::narrow(beta, 0, 0, 1), 1e-11, 0, "1-d y");
}

TEST_CASE("weighted_least_squares: the weighted 1-d closed form") {
  const std::vector<double> xs = {0, 1, 2, 3, 4}, ys = {1, 0, 4, 2, 7}, ws = {1, 2, 0.5, 3, 1};
  double sw = 0, mx = 0, my = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    sw += ws[i];
    mx += ws[i] * xs[i];
    my += ws[i] * ys[i];
  }
  mx /= sw;
  my /= sw;
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    sxy += ws[i] * (xs[i] - mx) * (ys[i] - my);
    sxx += ws[i] * (xs[i] - mx) * (xs[i] - mx);
  }
  const LinearFit fit = weighted_least_squares(from_values(xs, {5, 1}, DType::f64), from_values(ys, {5}, DType::f64),
                                               from_values(ws, {5}, DType::f64), true);
  CHECK(values(fit.coef)[0] == doctest::Approx(sxy / sxx).epsilon(1e-13));
  CHECK(values(fit.intercept)[0] == doctest::Approx(my - sxy / sxx * mx).epsilon(1e-13));
  // Large anchor weights (KernelSHAP's 1e6) pin the fit through those points.
  const std::vector<double> anchored = {1e6, 1, 1, 1, 1e6};
  const LinearFit a = weighted_least_squares(from_values(xs, {5, 1}, DType::f64), from_values(ys, {5}, DType::f64),
                                             from_values(anchored, {5}, DType::f64), true);
  CHECK(values(a.intercept)[0] == doctest::Approx(1.0).epsilon(1e-4));
  CHECK(values(a.intercept)[0] + 4 * values(a.coef)[0] == doctest::Approx(7.0).epsilon(1e-4));
}

TEST_CASE("weighted_least_squares: rank-deficient designs give the minimum-norm solution") {
  // Column 1 duplicates column 0, column 2 never varies: y = 2 x0 + 1 is split evenly over the
  // duplicates (minimum norm), the constant column gets 0 and the intercept takes the constant.
  const Tensor x0 = random_tensor({12, 1}, DType::f64, -1, 1, 4);
  const Tensor x = ops::cat({x0, x0, full_like(x0, 3.0)}, 1);
  const Tensor y = ops::add(ops::mul(x0, scalar_tensor(2.0, DType::f64)), scalar_tensor(1.0, DType::f64));
  const LinearFit fit = weighted_least_squares(x, y, Tensor(), true);
  CHECK(fit.rank == 1);
  check_close(fit.coef, from_values(std::vector<double>{1, 1, 0}, {1, 3}, DType::f64), 1e-12, 0, "min norm");
  check_close(fit.intercept, from_values(std::vector<double>{1}, {1}, DType::f64), 1e-12, 0, "intercept");
  // More features than samples: the fit interpolates and has the least norm among interpolants,
  // i.e. beta lies in the row space of x (beta = x^T a for the centred, unweighted problem).
  const Tensor wide = random_tensor({3, 6}, DType::f64, -1, 1, 8);
  const Tensor yw = from_values(std::vector<double>{1, -2, 0.5}, {3}, DType::f64);
  const LinearFit w = weighted_least_squares(wide, yw, Tensor(), false);
  CHECK(w.rank == 3);
  check_close(ops::reshape(ops::matmul(wide, ops::transpose(w.coef, 0, 1)), {3}), yw, 1e-12, 0, "interpolates");
  // beta = x^T (x x^T)^-1 y: compare through the normal equations of the 3x3 system.
  const LinearFit gram = weighted_least_squares(ops::matmul(wide, ops::transpose(wide, 0, 1)), yw, Tensor(), false);
  check_close(w.coef, ops::transpose(ops::matmul(ops::transpose(wide, 0, 1), ops::transpose(gram.coef, 0, 1)), 0, 1),
              1e-10, 0, "row space");
}

TEST_CASE("weighted_lasso: the 1-d soft-threshold closed form, and alpha 0 is least squares") {
  // One feature: beta = S(c, alpha) / v with c = sum w x_c y_c / sum w, v = sum w x_c^2 / sum w.
  const std::vector<double> xs = {0, 1, 2, 3, 4, 5}, ys = {0.5, 0.2, 1.9, 1.1, 2.8, 2.0}, ws = {1, 2, 0.5, 3, 1, 1.5};
  double sw = 0, mx = 0, my = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    sw += ws[i];
    mx += ws[i] * xs[i];
    my += ws[i] * ys[i];
  }
  mx /= sw;
  my /= sw;
  double c = 0, v = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    c += ws[i] * (xs[i] - mx) * (ys[i] - my) / sw;
    v += ws[i] * (xs[i] - mx) * (xs[i] - mx) / sw;
  }
  const Tensor x = from_values(xs, {6, 1}, DType::f64), y = from_values(ys, {6}, DType::f64);
  const Tensor w = from_values(ws, {6}, DType::f64);
  for (double alpha : {0.0, 0.1, 0.5, 10.0}) {
    LassoOptions o;
    o.alpha = alpha;
    const LinearFit fit = weighted_lasso(x, y, w, o);
    const double expected = std::copysign(std::max(std::abs(c) - alpha, 0.0), c) / v;
    CHECK(fit.converged);
    CHECK(values(fit.coef)[0] == doctest::Approx(expected).epsilon(1e-10));
    CHECK(values(fit.intercept)[0] == doctest::Approx(my - expected * mx).epsilon(1e-10));
  }
  CHECK(std::abs(c) < 10.0);  // the last alpha removes the feature
  // alpha = 0 on a full-rank problem is weighted least squares.
  const Tensor xm = random_tensor({30, 5}, DType::f64, -1, 1, 21);
  const Tensor ym = random_tensor({30, 2}, DType::f64, -1, 1, 22);
  const Tensor wm = random_tensor({30}, DType::f64, 0.2, 2, 23);
  LassoOptions zero;
  zero.alpha = 0.0;
  const LinearFit lasso = weighted_lasso(xm, ym, wm, zero), ls = weighted_least_squares(xm, ym, wm, true);
  check_close(lasso.coef, ls.coef, 1e-7, 0, "alpha 0 coef");
  check_close(lasso.intercept, ls.intercept, 1e-7, 0, "alpha 0 intercept");
}

TEST_CASE("linear_fit: bad input raises") {
  const Tensor x = random_tensor({5, 2}, DType::f64);
  const Tensor y = random_tensor({5}, DType::f64);
  CHECK_THROWS_WITH_AS(weighted_least_squares(x, random_tensor({4}, DType::f64)), doctest::Contains("y must be"),
                       Error);
  CHECK_THROWS_WITH_AS(weighted_least_squares(x, y, from_values(std::vector<double>{1, 1, -1, 1, 1}, {5}, DType::f64)),
                       doctest::Contains("weights must be finite and >= 0"), Error);
  CHECK_THROWS_WITH_AS(weighted_least_squares(x, y, zeros({5}, DType::f64)), doctest::Contains("sum to zero"), Error);
  CHECK_THROWS_WITH_AS(weighted_least_squares(random_tensor({5}, DType::f64), y), doctest::Contains("x must be (n, M)"),
                       Error);
  LassoOptions bad;
  bad.alpha = -1;
  CHECK_THROWS_WITH_AS(weighted_lasso(x, y, Tensor(), bad), doctest::Contains("alpha must be >= 0"), Error);
  const Tensor nan_y = from_values(std::vector<double>{1, 2, NAN, 4, 5}, {5}, DType::f64);
  CHECK_THROWS_WITH_AS(weighted_lasso(x, nan_y), doctest::Contains("non-finite"), Error);
}

}  // namespace loupe::test
