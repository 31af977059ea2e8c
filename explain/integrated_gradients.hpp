// Integrated gradients (Sundararajan et al. 2017), as in Captum:
//   IG(x) = (x - x') * sum_i w_i * grad f_t(x' + a_i (x - x'))
// with quadrature nodes a_i in [0, 1] and weights w_i. The n_steps points of every row are stacked
// along the batch dim (virtual row v = step * R + row) and run as forward/backward passes of at
// most internal_batch_size rows; each row accumulates its weighted gradients in step order, so the
// result does not depend on the split.
// Tests: tests/explain/test_integrated_gradients.cpp, tests/explain/test_captum.cpp
#pragma once

#include "explain/attribution.hpp"

namespace loupe::explain {

enum class IntegrationRule {
  gauss_legendre,     // default: a = (1 + node) / 2, w = weight / 2 of the n-point Gauss-Legendre rule
  riemann_left,       // a = i / n,             w = 1 / n
  riemann_right,      // a = (i + 1) / n,       w = 1 / n
  riemann_middle,     // a = (i + 0.5) / n,     w = 1 / n
  riemann_trapezoid,  // Captum's: a = i / (n - 1), w = 1 / n with both ends halved (weights sum to 1 - 1/n)
  trapezoid,          // the composite trapezoid rule: a = i / (n - 1), w = 1 / (n - 1), ends halved
};

// Nodes (ascending) and weights of a rule over [0, 1].
struct Quadrature {
  std::vector<double> alphas;
  std::vector<double> weights;
};
Quadrature quadrature(IntegrationRule rule, int64_t n_steps);

// The n-point Gauss-Legendre rule on [-1, 1]: roots of P_n found by Newton iteration from
// Chebyshev-like guesses, weights 2 / ((1 - x^2) P_n'(x)^2). Nodes ascending.
Quadrature gauss_legendre(int64_t n);

struct IntegratedGradientsOptions {
  int64_t n_steps = 50;
  IntegrationRule method = IntegrationRule::gauss_legendre;
  bool multiply_by_inputs = true;  // false: the integrated gradient sum_i w_i grad f (no (x - x'))
  int64_t internal_batch_size = 0;  // rows per forward/backward; 0: all steps at once
  bool return_convergence_delta = false;
};

Attribution integrated_gradients(const Query& query, const IntegratedGradientsOptions& options = {});

}  // namespace loupe::explain
