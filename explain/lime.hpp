// LIME (Ribeiro et al. 2016, as Captum's Lime) and C-LIME (continuous LIME, Han et al. 2022):
// local linear surrogates fitted to the model's scores on perturbed copies of one input row.
//
// LIME: n coalitions z (n, M), z_gi ~ Bernoulli(0.5) over the M features of the feature mask
// (off = baseline: x_z = x' + z[g] (x - x')); each copy is weighted by the exponential kernel
//   pi(z) = exp(-d(x, x_z)^2 / (2 w^2)),   w = kernel_width,
// d the cosine distance 1 - x.x_z / (max(|x|, 1e-8) max(|x_z|, 1e-8)) (Captum's default) or the
// euclidean |x - x_z|, over all inputs of the row flattened together. The surrogate is a weighted
// Lasso (scikit-learn's objective, alpha 0.01, with intercept: linear_fit.hpp) or weighted least
// squares of f_t(x_z) on z; feature g's coefficient is the attribution of each of its scalars.
// The distances need no pass over the copies: with per-feature sums A_g = sum x^2, B_g = sum x x',
// C_g = sum x'^2 and D_g = sum (x - x')^2, x.x_z = sum_g z_g A_g + (1 - z_g) B_g,
// |x_z|^2 = sum_g z_g A_g + (1 - z_g) C_g and |x - x_z|^2 = sum_g (1 - z_g) D_g.
// Defaults: n_samples 1000 (the LFA paper's; Captum's 25 leaves a 64-feature fit underdetermined),
// cosine distance, width 1, Lasso alpha 0.01 (Captum's). The LFA paper's LIME (euclidean distance,
// kernel exp(-d^2 / w^2), least squares) is distance = euclidean, kernel_width = w / sqrt(2),
// fit = least_squares.
//
// C-LIME: n Gaussian perturbations x + e[g], e (n, M) ~ N(0, stdev^2) (one value per feature,
// shared by its scalars; the default mask makes every scalar a feature), unweighted least squares
// of f_t(x + e) on e with intercept; attribution = the slope. On a linear model it recovers w.
// Defaults: stdev 0.1, n_samples 1000 (REFERENCE section 2).
//
// Random numbers: the engine's Philox generator (LIME's masks: bernoulli; C-LIME's noise: normal),
// drawn on the input's device, row after row (input order), so a seed gives the same result on
// the CPU and the GPU and with any perturbations_per_eval.
// Tests: tests/explain/test_lime.cpp, tests/explain/test_captum_surrogate.cpp
#pragma once

#include "explain/coalitions.hpp"
#include "explain/linear_fit.hpp"

namespace loupe::explain {

enum class LimeDistance { cosine, euclidean };
enum class SurrogateFit { lasso, least_squares };

struct LimeOptions {
  std::vector<Tensor> feature_mask;    // one int64 mask per input (coalitions.hpp); empty: every scalar
  int64_t n_samples = 1000;            // coalitions per row (Captum: 25)
  int64_t perturbations_per_eval = 0;  // copies per forward pass; 0: as many as fit the memory budget
  Generator* generator = nullptr;      // null: the default generator
  LimeDistance distance = LimeDistance::cosine;
  double kernel_width = 1.0;
  SurrogateFit fit = SurrogateFit::lasso;
  double alpha = 0.01;  // Lasso penalty
  Tensor coalitions;    // given (n, M) 0/1 coalitions used for every row instead of sampling
};

Attribution lime(const Query& query, const LimeOptions& options = {});

struct CLimeOptions {
  std::vector<Tensor> feature_mask;  // empty: every scalar its own feature
  int64_t n_samples = 1000;
  double stdev = 0.1;
  int64_t perturbations_per_eval = 0;
  Generator* generator = nullptr;
};

Attribution clime(const Query& query, const CLimeOptions& options = {});

}  // namespace loupe::explain
