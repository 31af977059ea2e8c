// Small models and helpers shared by the explain/ tests.
#pragma once

#include <cmath>

#include "explain/explain.hpp"
#include "tests/support.hpp"

namespace loupe::test::explain_util {

using namespace loupe::explain;

// f(x) = x W^T + b: (N, D) -> (N, K). Every gradient method has a closed form on it.
inline ForwardFn linear_model(const Tensor& w, const Tensor& b = Tensor()) {
  return [w, b](const std::vector<Tensor>& in) { return linear(in[0], w, b); };
}

// Row t of w, repeated for each target: the gradient of a linear model's target scores.
inline Tensor weight_rows(const Tensor& w, const std::vector<int64_t>& targets) {
  return ops::index_select(w, 0, from_values(targets, {static_cast<int64_t>(targets.size())}));
}

// A smooth two-layer net (tanh hidden layer): (N, D) -> (N, K).
inline ForwardFn tanh_mlp(const Tensor& w1, const Tensor& b1, const Tensor& w2) {
  return [=](const std::vector<Tensor>& in) { return linear(tanh(linear(in[0], w1, b1)), w2); };
}

// Largest |a - b| relative to the largest |b| (0 when b is all zeros and a == b).
inline double max_relative_error(const Tensor& a, const Tensor& b) {
  const auto va = values(a), vb = values(b);
  double err = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    err = std::max(err, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return scale > 0 ? err / scale : err;
}

}  // namespace loupe::test::explain_util
