// Shapley value sampling (Castro et al. 2009; Captum's ShapleyValueSampling): the unbiased
// permutation estimator of the baseline Shapley values of the M features of the feature mask,
//   phi_g = 1/n sum_{j=1..n} [ v(P_j(g) + g) - v(P_j(g)) ],   v(S) = f_t(x' + 1_S[g] (x - x')),
// where P_j(g) is the set of features before g in the j-th random permutation. Each permutation
// adds the features one by one to the baseline: M evaluations (the baseline itself is evaluated
// once per row). Permutations come from the engine's Philox generator (permutation()), row after
// row; the coalitions go to the input's device once per row.
// Default n_samples 25 permutations (Captum's).
// Tests: tests/explain/test_kernel_shap.cpp (convergence to the exact values)
#pragma once

#include "explain/coalitions.hpp"

namespace loupe::explain {

struct ShapleySamplingOptions {
  std::vector<Tensor> feature_mask;    // one int64 mask per input (coalitions.hpp); empty: every scalar
  int64_t n_samples = 25;              // permutations
  int64_t perturbations_per_eval = 0;  // copies per forward pass; 0: as many as fit the memory budget
  Generator* generator = nullptr;      // null: the default generator
};

Attribution shapley_value_sampling(const Query& query, const ShapleySamplingOptions& options = {});

}  // namespace loupe::explain
