// Shared machinery of the perturbation methods (occlusion, feature ablation, LIME, C-LIME,
// KernelSHAP, Shapley value sampling): they all evaluate the model on many perturbed copies of
// one input row and read off the explained scores.
//
// Two things make them fast, and both live here so every method gets them:
//   - Perturbed copies are stacked along the batch dim and evaluated in chunks of
//     `perturbations_per_eval` rows (default: as many as fit a memory budget), without a graph.
//   - Several targets of the same input row are answered from the same forward passes: the
//     result rows of a Prepared query are grouped by input row, and each chunk's (P, K) output
//     gives the scores of all of that row's classes at once.
// The caller builds each chunk's inputs on the input's device (no host round-trip per chunk);
// scores stay on the device until the method reads them.
// Tests: tests/explain/test_perturbation.cpp
#pragma once

#include <functional>
#include <vector>

#include "explain/attribution.hpp"

namespace loupe::explain::detail {

// The result rows of a Prepared query grouped by the input row they explain (in first-seen order).
struct RowGroup {
  int64_t input_row = 0;             // row of the original batch (p.rows[results[j]] == input_row)
  std::vector<int64_t> results;      // result rows r of p, one per target of this input row
  std::vector<int64_t> classes;      // p.classes[results[j]]
};
std::vector<RowGroup> group_rows(const Prepared& p);

// Builds the perturbed copies [start, end) of one input row: one tensor per model input, each
// (end - start, ...) on the input's device.
using PerturbFn = std::function<std::vector<Tensor>(int64_t start, int64_t end)>;

// Evaluates `count` perturbed copies built by `perturb`, in chunks of at most `per_eval` rows
// (0: default_per_eval), without recording a graph. Returns (count, T) float64 scores on the
// device: column j is the explained score (output transform applied) for class classes[j];
// classes == {-1} means the model gives one score per row (T = 1).
Tensor score_perturbations(const ForwardFn& model, Output output, const std::vector<int64_t>& classes,
                           int64_t count, int64_t per_eval, const PerturbFn& perturb);

// The explained scores (1, T) of an unperturbed row set (1, ...) each: f_t(x) for every class.
Tensor score_row(const ForwardFn& model, Output output, const std::vector<int64_t>& classes,
                 const std::vector<Tensor>& row_inputs);

// How many perturbed copies of a row (one tensor per input, each (1, ...)) fit `budget_bytes`
// of input data per forward pass, at least 1. The activations of a network are a multiple of
// its input, so the budget is deliberately modest: 64 MiB of inputs is about 330 images of
// 3x224x224 in float32.
int64_t default_per_eval(const std::vector<Tensor>& row_inputs, int64_t budget_bytes = int64_t{64} << 20);

// The copies of x where mask is 1 and of the baseline where it is 0, with mask (P, ...)
// broadcastable against x (1, ...). A bool mask selects (where: both values kept exactly, which
// baseline + mask * (x - baseline) does not do in floating point); a fractional mask of x's dtype
// interpolates, baseline + mask * (x - baseline).
Tensor blend(const Tensor& x, const Tensor& baseline, const Tensor& mask);

}  // namespace loupe::explain::detail
