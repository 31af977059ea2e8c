// Float64 linear regression solvers for the surrogate methods (LIME, C-LIME, KernelSHAP).
// Everything runs on the CPU in float64: the problems are small (n samples x M features, M the
// number of interpretable features), and the KernelSHAP anchors (weight 1e6) need the precision.
//
// Shapes: x (n, M), y (n, T) or (n) (T targets fitted at once, sharing x and the weights),
// weights (n) >= 0 (undefined: all ones). Results: coef (T, M), intercept (T), float64 on the CPU.
//
// Weighted least squares:   min_{b, beta} sum_i w_i (y_i - b - x_i . beta)^2
//   With an intercept, x and y are centred by their weighted means (x_bar = sum w x / sum w),
//   beta solves the centred problem and b = y_bar - x_bar . beta. The centred problem
//   min || sqrt(w) (y_c - x_c beta) || is solved by Householder QR with column pivoting; when it
//   is rank deficient (rank r < M: fewer distinct samples than features, a feature that never
//   varies), the minimum-norm solution is returned (complete orthogonal decomposition), as
//   scikit-learn's LinearRegression (LAPACK gelsd) does. Rank cutoff: |R_kk| <= eps * max(n, M) * |R_00|.
//
// Weighted Lasso (scikit-learn's objective for Lasso.fit(x, y, sample_weight=w)):
//   min_{b, beta} 1 / (2 sum_i w_i) * sum_i w_i (y_i - b - x_i . beta)^2 + alpha * ||beta||_1
//   Centring as above (weighted means; the intercept is not penalised), then cyclic coordinate
//   descent on sqrt(w') x_c with w' = w * n / sum(w) (scikit-learn's rescaling, so the penalty is
//   alpha * n), stopped when the duality gap (scikit-learn's formula) is <= tol * ||sqrt(w') y_c||^2
//   (alpha = 0, plain least squares, has no such bound: it stops once no coefficient moves by more
//   than tol of the largest).
//   loupe's default tol (1e-10) is far tighter than scikit-learn's 1e-4, so the result is the
//   optimum itself rather than one stage of the iteration.
// Tests: tests/explain/test_linear_fit.cpp (closed forms), tests/explain/test_captum_surrogate.cpp
// (a scikit-learn fixture)
#pragma once

#include "autograd/autograd.hpp"

namespace loupe::explain {

struct LinearFit {
  Tensor coef;             // (T, M) float64, CPU
  Tensor intercept;        // (T) float64, CPU (zeros when fitted without an intercept)
  int64_t rank = 0;        // least squares: numerical rank of the (centred, weighted) design
  int64_t iterations = 0;  // Lasso: most coordinate descent sweeps over the targets
  bool converged = true;   // Lasso: every target met tol within max_iter sweeps
};

LinearFit weighted_least_squares(const Tensor& x, const Tensor& y, const Tensor& weights = Tensor(),
                                 bool fit_intercept = true);

struct LassoOptions {
  double alpha = 0.01;  // Captum's LIME default (SkLearnLasso(alpha=0.01))
  bool fit_intercept = true;
  double tol = 1e-10;         // relative duality gap at which descent stops (scikit-learn: 1e-4)
  int64_t max_iter = 100000;  // sweeps over the features (then it stops; converged says false)
};

LinearFit weighted_lasso(const Tensor& x, const Tensor& y, const Tensor& weights = Tensor(),
                         const LassoOptions& options = {});

}  // namespace loupe::explain
