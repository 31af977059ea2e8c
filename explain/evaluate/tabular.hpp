// Tabular data and models for the LFA experiments (Han et al. 2022 used HELOC and WHO life
// expectancy, which no package ships; we use scikit-learn's CSVs from Debian's python3-sklearn,
// which ./run extracts into third_party/sklearn-data/):
//   breast_cancer  569 x 30, binary (malignant 0 / benign 1)            -> logistic regression
//   wine           178 x 13, 3 cultivars; one-vs-rest "class_0 vs rest" -> logistic regression
//   diabetes       442 x 10, disease progression (regression)           -> linear regression
// Features are min-max normalised to [0, 1] per column (over the whole set, as the paper's
// pre-processing; a constant column becomes 0). The regression target is min-max normalised too.
//
// Models (all float64, trained natively by loupe's autograd and Adam, full batch, fixed seed):
//   linear  one Linear(d, 1): logistic regression (BCE with logits, explained on the sigmoid
//           probability) or linear regression (MSE, explained on the raw output)
//   mlpL    L Linear layers, hidden width 8, ReLU between (L = 3, 5, 8 as in the paper), one output
// Weights are initialised like torch.nn.Linear (uniform +-1/sqrt(fan_in)) from a Generator.
// Shapes: x (N, d), y (N) float64 on the CPU; a model maps (N, d) -> (N, 1).
// Tests: tests/explain/test_evaluate_tabular.cpp
#pragma once

#include <string>
#include <vector>

#include "explain/attribution.hpp"

namespace loupe::explain::tabular {

struct Dataset {
  std::string name;
  Tensor x;  // (N, d) float64, min-max normalised
  Tensor y;  // (N) float64: 0/1 labels (classification) or the normalised target (regression)
  bool classification = true;
  std::string task;  // one line for reports, e.g. "binary: benign vs malignant"
};

// The folder holding sklearn's data files: $LOUPE_SKLEARN_DATA, then third_party/sklearn-data/
// (relative to the working directory and to source_root), then Debian's python3-sklearn
// location; the first that holds `file`. "" when none does.
std::string find_sklearn_file(const std::string& file, const std::string& source_root = "");
// The names known to load(): breast_cancer, wine, diabetes.
const std::vector<std::string>& dataset_names();
// The files a data set needs (for skip messages).
std::vector<std::string> dataset_files(const std::string& name);
// Loads a data set by name from `dir` ("" : find_sklearn_file); raises loupe::Error naming the file.
Dataset load(const std::string& name, const std::string& dir = "");

// Per-column min-max normalisation of x (N, d) to [0, 1]; constant columns become 0.
Tensor min_max_normalise(const Tensor& x);

struct Split {
  Tensor x_train, y_train, x_test, y_test;
};
// A seeded random split: round(test_fraction * N) rows for testing.
Split split(const Dataset& data, double test_fraction, uint64_t seed);

enum class ModelKind { linear, mlp3, mlp5, mlp8 };
std::string model_name(ModelKind kind);  // "linear", "mlp3", ...
const std::vector<ModelKind>& model_kinds();

struct Model {
  ModelKind kind = ModelKind::linear;
  std::vector<Tensor> weights;  // (out, in) each, float64
  std::vector<Tensor> biases;   // (out) each
  bool classification = true;
  ForwardFn forward() const;  // (N, d) -> (N, 1) logits / outputs
  Output output() const { return classification ? Output::sigmoid : Output::logit; }
  std::string name() const;  // "logistic", "linear regression", "mlp3", ...
};

Model make_model(ModelKind kind, int64_t d, bool classification, uint64_t seed);

struct TrainOptions {
  int64_t steps = 2000;  // full-batch Adam steps
  double lr = 0.01;
  uint64_t seed = 0;
};
struct Trained {
  Model model;
  double train_loss = 0.0;
  double test_metric = 0.0;  // accuracy (classification) or R^2 (regression) on the test split
  double train_seconds = 0.0;
};
Trained train(ModelKind kind, const Dataset& data, const Split& split, const TrainOptions& options);

}  // namespace loupe::explain::tabular
