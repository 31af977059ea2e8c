// gradcheck: compares an op's analytic backward with central finite differences in float64.
//
// Small inputs (at most `full_jacobian_limit` elements in all) get the whole Jacobian checked,
// row by row against column by column. Larger ones are checked through random projections:
// u^T J v from backward against (u . f(x + eps v) - u . f(x - eps v)) / (2 eps).
// Only float64 inputs are differentiated; other inputs (indices, masks) pass through unchanged.
// Tests: tests/autograd/test_gradcheck.cpp and every differentiable entry of the op table.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  int64_t full_jacobian_limit = 300;  // input elements
  int projections = 3;
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  double max_error = 0.0;  // largest |analytic - numeric| seen
  std::string message;     // what failed, with the input index and element
};

using DifferentiableFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const DifferentiableFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace loupe
