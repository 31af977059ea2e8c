// Guided backprop and deconvolution: the gradient of the target score with every ReLU's backward
// replaced (autograd/rules.hpp), per graph node, so functional ReLUs, in-graph reuse of one
// module and residual/concatenating graphs need nothing special.
//   guided backprop:  ReLU input gradient := 1[x > 0] * max(g, 0)
//   deconvolution:    ReLU input gradient := max(g, 0)
// Tests: tests/explain/test_attribution.cpp, tests/explain/test_captum.cpp
#pragma once

#include "explain/attribution.hpp"

namespace loupe::explain {

struct GuidedBackpropOptions {
  int64_t internal_batch_size = 0;  // rows per forward/backward; 0: all at once
};

Attribution guided_backprop(const Query& query, const GuidedBackpropOptions& options = {});
Attribution deconvolution(const Query& query, const GuidedBackpropOptions& options = {});

}  // namespace loupe::explain
