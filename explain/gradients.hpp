// Plain-gradient methods: saliency (vanilla gradient) and input x gradient.
//   saliency:          |d f_t / d x|  (Captum's default), or signed with absolute = false
//   input x gradient:  x * d f_t / d x  (multiply_by_inputs = false returns the gradient itself)
// One forward and one backward over the rows, split by internal_batch_size.
// Tests: tests/explain/test_attribution.cpp, tests/explain/test_captum.cpp
#pragma once

#include "explain/attribution.hpp"

namespace loupe::explain {

struct SaliencyOptions {
  bool absolute = true;             // Captum's abs=True
  int64_t internal_batch_size = 0;  // rows per forward/backward; 0: all at once
};

struct InputXGradientOptions {
  bool multiply_by_inputs = true;
  int64_t internal_batch_size = 0;
};

Attribution saliency(const Query& query, const SaliencyOptions& options = {});
Attribution input_x_gradient(const Query& query, const InputXGradientOptions& options = {});

namespace detail {
// Gradients of the prepared rows' scores, chunk by chunk (inside the active RuleScope).
std::vector<Tensor> batched_gradients(const Prepared& p, int64_t internal_batch_size);
}  // namespace detail

}  // namespace loupe::explain
