// KernelSHAP (Lundberg and Lee 2017, as Captum's KernelShap), sampled or exact.
//
// Sampled (REFERENCE section 2): n coalitions z (n, M) over the M features of the feature mask
// (off = baseline: x_z = x' + z[g] (x - x')): first all ones and all zeros, each with weight 1e6
// (standing in for the kernel's infinite weight there), then for each further sample a size k in
// 1..M-1 drawn with p(k) ~ (M - 1) / (k (M - k)) and a uniform random k-subset, weight 1 (this
// samples the Shapley kernel (M - 1) / (C(M, k) k (M - k))). The attribution of feature g is its
// coefficient in the weighted least squares fit (with intercept) of f_t(x_z) on z (linear_fit.hpp).
// n_samples counts the two anchors, as Captum's does; with M = 1 only the anchors are used.
// Default n_samples 1000 (the LFA paper's; Captum's 25 is fewer than a 64-feature grid needs).
//
// Exact (exact = true, M <= 16): all 2^M coalitions are evaluated and the baseline Shapley values
//   phi_g = sum_{S not containing g} |S|! (M - |S| - 1)! / M! * (v(S + g) - v(S)),  v(S) = f_t(x_S)
// are computed from them in float64, so sum_g phi_g = f_t(x) - f_t(x') up to rounding (1e-12).
// (The 1e6-anchored regression over all coalitions would only approach them.)
//
// Random numbers: the engine's Philox generator, uniform draws on the host (one (n - 2, M + 1)
// block per row: the first column picks k by inverse CDF, the k smallest of the other M columns
// form the subset); the coalitions go to the input's device once per row.
// Tests: tests/explain/test_kernel_shap.cpp, tests/explain/test_captum_surrogate.cpp
#pragma once

#include "explain/coalitions.hpp"

namespace loupe::explain {

struct KernelShapOptions {
  std::vector<Tensor> feature_mask;    // one int64 mask per input (coalitions.hpp); empty: every scalar
  int64_t n_samples = 1000;            // coalitions per row, the two anchors included (Captum: 25)
  int64_t perturbations_per_eval = 0;  // copies per forward pass; 0: as many as fit the memory budget
  Generator* generator = nullptr;      // null: the default generator
  bool exact = false;                  // enumerate all 2^M coalitions (M <= 16): exact Shapley values
  Tensor coalitions;                   // given (n, M) 0/1 coalitions used for every row instead of
                                       // sampling (weight 1e6 for all ones / all zeros, else 1)
};

Attribution kernel_shap(const Query& query, const KernelShapOptions& options = {});

// The (n, M) sampled coalitions of one row as described above (host, row-major float64).
std::vector<double> kernel_shap_coalitions(int64_t n_samples, int64_t m, Generator& generator);

}  // namespace loupe::explain
