// DeepLIFT with the rescale rule (Shrikumar et al. 2017), as Captum computes it, and
// DeepLIFT-SHAP (the mean of DeepLIFT over a set of baselines).
//
// One forward of the doubled batch [x; x'] (2R rows) runs under autograd's
// deeplift_rescale_rules(): each nonlinearity's backward becomes (y - y') / (x - x') (the ordinary
// derivative where |x - x'| < eps), max-pool routes the difference of the two halves, softmax
// rescales and re-centres; linear ops keep their gradients. The scores of both halves are summed
// and backpropagated (as Captum does by expanding the target), and the input half's gradient is
// the multiplier m:  attribution = (x - x') * m  (or m with multiply_by_inputs = false).
// On piecewise-linear networks the attributions sum to f(x) - f(x') exactly (delta ~ 0).
// Tests: tests/explain/test_deeplift.cpp, tests/explain/test_captum.cpp
#pragma once

#include "explain/attribution.hpp"

namespace loupe::explain {

struct DeepLiftOptions {
  bool multiply_by_inputs = true;
  double eps = 1e-10;               // below this |x - x'| the ordinary derivative is used
  int64_t internal_batch_size = 0;  // rows of [x; x'] pairs per forward/backward; 0: all at once
  bool return_convergence_delta = false;
};

Attribution deeplift(const Query& query, const DeepLiftOptions& options = {});

// baseline_sets: one (K, ...) tensor per input (K baselines, each shaped like one input row; the
// same K for every input); query.baselines is ignored. Every row is explained against each of the
// K baselines (R * K pairs, run in chunks of internal_batch_size pairs) and the attributions are
// averaged over K. The delta is the mean of the K deltas, which is the delta of the averaged
// attributions against the mean baseline score.
Attribution deeplift_shap(const Query& query, const std::vector<Tensor>& baseline_sets,
                          const DeepLiftOptions& options = {});

}  // namespace loupe::explain
