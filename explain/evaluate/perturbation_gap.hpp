// Prediction gaps on important and unimportant features (PGI / PGU; Han et al. 2022 experiment 3,
// OpenXAI's metrics), computed for any Attribution of a single-input query.
//
// For each result row r of the attribution (input row rows[r], class targets[r]) the features are
// ranked by |attribution| (ties: lower index first). For k = 1..K:
//   PGI_k(r) = E | f_t(x) - f_t(x with its top-k features perturbed) |
//   PGU_k(r) = E | f_t(x) - f_t(x with its bottom-k features perturbed) |
// Perturbation: zero (the features are set to 0: one copy, no expectation) or gaussian (x_i + e_i,
// e_i ~ N(0, stdev^2), the mean over n_samples draws). A faithful attribution has a large PGI and
// a small PGU. Reported per k: the mean over the R rows and its standard error std / sqrt(R)
// (std with R - 1 in the denominator; 0 when R = 1), and the area under the mean curve by the
// trapezoid rule over k = 1..K divided by K - 1 (the curve's mean height; the one value when K = 1).
//
// Everything is batched on the input's device: ranks come from a sort of (R, d), the K masks are
// one comparison (K, R, d), the noise (S, K, R, d) is drawn in one call (so the result does not
// depend on the chunking), and the perturbed copies are scored in chunks of at most rows_per_eval
// rows (default 65536) without a graph; only the (R, K) gaps go to the host.
// Shapes: the input (N, ...) is flattened to (N, d) features (d = its non-batch elements).
// Tests: tests/explain/test_evaluate_perturbation_gap.cpp
#pragma once

#include <vector>

#include "explain/attribution.hpp"
#include "tensor/random.hpp"

namespace loupe::explain {

enum class GapPerturbation { zero, gaussian };

struct PerturbationGapOptions {
  int64_t max_k = 0;  // K: k = 1..K; 0: min(11, d) (the LFA paper's 11)
  GapPerturbation perturbation = GapPerturbation::zero;
  double stdev = 0.1;       // gaussian (OpenXAI's)
  int64_t n_samples = 100;  // gaussian draws per row and k (OpenXAI's)
  int64_t rows_per_eval = 0;
  Generator* generator = nullptr;  // null: the default generator
};

struct PerturbationGap {
  std::vector<int64_t> k;              // 1..K
  Tensor gaps;                         // (R, K) float64, CPU: the gap of each row at each k
  std::vector<double> mean;            // (K) over rows
  std::vector<double> standard_error;  // (K)
  double auc = 0.0;
};

// important = true: PGI (top-k); false: PGU (bottom-k).
PerturbationGap perturbation_gap(const Query& query, const Attribution& attribution, bool important,
                                 const PerturbationGapOptions& options = {});
inline PerturbationGap pgi(const Query& q, const Attribution& a, const PerturbationGapOptions& o = {}) {
  return perturbation_gap(q, a, true, o);
}
inline PerturbationGap pgu(const Query& q, const Attribution& a, const PerturbationGapOptions& o = {}) {
  return perturbation_gap(q, a, false, o);
}

// Mean, standard error (std with n - 1 / sqrt(n); 0 for n = 1) of values; the helper the curves use.
void mean_and_standard_error(const std::vector<double>& values, double& mean, double& standard_error);

}  // namespace loupe::explain
