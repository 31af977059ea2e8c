// Feature masks and coalitions: the machinery shared by feature ablation, LIME, C-LIME,
// KernelSHAP and Shapley value sampling.
//
// A feature mask groups the scalars of the inputs into M interpretable features: one int64
// tensor per input holding ids 0..M-1, broadcastable to the input's row shape (no batch dim),
// or with a batch dim of 1 (shared by all rows) or of N (one mask per input row). Several inputs
// may share ids (such a feature spans inputs). An empty mask makes each scalar its own feature,
// numbered input by input (input 0's scalars first), as Captum does. M = largest id + 1.
//
// A coalition is a row z of a (P, M) matrix: feature g is kept (z_g = 1, the input's values) or
// removed (z_g = 0, the baseline's). Its perturbed copy of input row x (1, ...) is
//   x_z = blend(x, x', z[group_ids])   i.e. x' + z[g(e)] (x - x') at every element e,
// built on the input's device: index_select(z, 1, group_ids) is (P, numel) and reshapes to
// (P, ...). C-LIME uses the same gather with additive noise instead (x + e[g(e)]).
// Tests: tests/explain/test_ablation.cpp (masks: batch dims, shared ids, bad masks) and every
// method's test beside it.
#pragma once

#include <vector>

#include "explain/perturbation.hpp"

namespace loupe::explain::detail {

// The features of one input row.
struct RowFeatures {
  int64_t count = 0;          // M
  std::vector<Tensor> ids;    // per input: (numel of one row) int64 on the input's device
  std::vector<Shape> shapes;  // per input: the row shape (1, ...)
};

// Resolves `feature_mask` (see above) for input row `input_row` of the original batch of
// `n_rows` rows; `inputs` are the prepared inputs (any number of rows, the row shape matters).
RowFeatures row_features(const std::vector<Tensor>& feature_mask, const std::vector<Tensor>& inputs, int64_t input_row,
                         int64_t n_rows, const char* method);

// Per input, the copies x' + z[g] (x - x') for the coalitions z (P, M) (any dtype, on the
// inputs' device): (P, ...) each. x and baseline are one row (1, ...) per input.
std::vector<Tensor> apply_coalitions(const RowFeatures& features, const std::vector<Tensor>& x,
                                     const std::vector<Tensor>& baseline, const Tensor& z);

// Per input, (T, ...) tensors whose element e is values[t, g(e)]; values (T, M) on the device.
std::vector<Tensor> spread(const RowFeatures& features, const Tensor& values);

// Sum over the elements of each feature of per-element values (one tensor (1, ...) per input,
// like the row): (M) float64 on the host. Features spanning inputs sum over all of them.
std::vector<double> feature_sums(const RowFeatures& features, const std::vector<Tensor>& values);

// One input row of a prepared query, its features, and the result rows (targets) it answers.
struct CoalitionRow {
  const RowGroup* group = nullptr;
  RowFeatures features;
  std::vector<Tensor> x, baseline;  // (1, ...) per input
};

// Runs `fn` for each input row of the query (in input order), then assembles the attributions:
// fn returns (T, M) float64 values per feature (host, row-major), T = the row's targets; they are
// spread to the elements of each feature and written to the rows of the result.
using RowSolver = std::function<std::vector<double>(const CoalitionRow& row)>;
Attribution attribute_features(const Prepared& p, const std::vector<Tensor>& feature_mask, int64_t n_rows,
                               const char* method, const RowSolver& fn);

// f_t of the coalitions z (count, M) (on the device, the input's dtype) of one row, in chunks of
// per_eval copies (0: as many as fit the memory budget): (count, T) float64 on the host, row-major.
std::vector<double> score_coalitions(const Prepared& p, const CoalitionRow& row, const Tensor& z, int64_t per_eval);

// The surrogate fits (LIME, C-LIME, sampled KernelSHAP) keep an (n, M) float64 design on the
// host and factor it: beyond this many features (Captum warns at the same size) they raise,
// asking for a feature mask that groups the scalars.
constexpr int64_t kMaxSurrogateFeatures = 10000;
void check_surrogate_features(int64_t m, const char* method);

// Checks user-given coalitions (n, M) of 0/1 values for M features and returns them (host,
// row-major float64).
std::vector<double> given_coalitions(const Tensor& coalitions, int64_t m, const char* method);

// Host (count, M) 0/1 values as a tensor on `device` in `dtype` (one transfer per row).
Tensor coalition_tensor(const std::vector<double>& z, int64_t count, int64_t m, DType dtype, Device device);

}  // namespace loupe::explain::detail
