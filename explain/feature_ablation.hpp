// Feature ablation (Captum's FeatureAblation): the attribution of feature g (a group of scalars
// given by the feature mask) is what the explained score loses when the group is set to the
// baseline,
//   attr_g = f_t(x) - f_t(x with the scalars of g replaced by x'),
// and every scalar of the group gets attr_g (not divided by the group's size).
// The M ablated copies (coalitions 1 - e_g) and x itself are evaluated in chunks of
// perturbations_per_eval rows; every target of a row comes from the same passes.
// On a linear model f(x) = w . x this is sum_{e in g} (x_e - x'_e) w_e.
// Tests: tests/explain/test_ablation.cpp
#pragma once

#include "explain/coalitions.hpp"

namespace loupe::explain {

struct FeatureAblationOptions {
  std::vector<Tensor> feature_mask;    // one int64 mask per input (coalitions.hpp); empty: every scalar
  int64_t perturbations_per_eval = 0;  // copies per forward pass; 0: as many as fit the memory budget
};

Attribution feature_ablation(const Query& query, const FeatureAblationOptions& options = {});

}  // namespace loupe::explain
