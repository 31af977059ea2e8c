// The common API of every attribution method: what to explain (a Query: model, inputs, target,
// output transform, baselines) and what comes back (an Attribution: one tensor per input, shaped
// like it, plus the completeness delta where the method defines one). Conventions follow Captum
// (REFERENCE.md section 1).
//
//   explain::Query q{model_fn, {images}, explain::Target::per_row({3, 0}), explain::Output::sigmoid};
//   explain::Attribution a = explain::integrated_gradients(q, {.n_steps = 100});
//   a.attributions[0]   // (N, C, H, W), like images
//
// Shapes: every input has the batch as dim 0 (all inputs the same N rows); the model maps them to
// (N, K) scores (or (N) / (N, 1) when there is nothing to select: Target::none()).
// Several targets per row expand the rows: result row r explains input row rows[r] for class
// targets[r] (rows in input order, targets in the order given).
// Tests: tests/explain/test_attribution.cpp and the method tests beside it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <variant>
#include <vector>

#include "autograd/autograd.hpp"

namespace loupe::nn {
class Module;
}

namespace loupe::explain {

// Any differentiable function of one or more inputs with the batch along dim 0.
using ForwardFn = std::function<Tensor(const std::vector<Tensor>&)>;

// A single-input model as a ForwardFn (the module must outlive the function).
ForwardFn as_forward(nn::Module& model);
ForwardFn as_forward(std::function<Tensor(const Tensor&)> model);

// What is explained: the raw output (logit), or a probability computed from it. Softmax is over
// dim 1; sigmoid is elementwise (multilabel models: one label at a time, see Target::several).
enum class Output { logit, sigmoid, softmax };

// Which output to explain for each row.
class Target {
 public:
  Target() = default;                                            // none: the model gives one score per row
  Target(int64_t index) : per_row_({{index}}), broadcast_(true) {}  // the same class for every row
  static Target none() { return Target(); }
  static Target per_row(std::vector<int64_t> indices);           // one class per row
  static Target several(std::vector<std::vector<int64_t>> lists);  // a list of classes per row
  static Target each_of(std::vector<int64_t> indices);           // the same list for every row

  // Resolves to (input row, class) pairs for a batch of n rows; class -1 means "no selection".
  void resolve(int64_t n, std::vector<int64_t>& rows, std::vector<int64_t>& classes) const;

 private:
  std::vector<std::vector<int64_t>> per_row_;  // empty: none
  bool broadcast_ = false;                     // per_row_ has one list used for every row
};

// The reference input x'. Zeros by default; a scalar; or a tensor broadcastable to the input's
// shape (no batch dim, a batch of 1, or one row per input row).
class Baseline {
 public:
  Baseline() = default;
  Baseline(double value) : value_(value) {}
  Baseline(Tensor tensor) : value_(std::move(tensor)) {}
  Baseline(const char*) = delete;

  // The baseline as a tensor of the input's shape, dtype and device.
  Tensor resolve(const Tensor& input) const;

 private:
  std::variant<double, Tensor> value_ = 0.0;
};

// Everything a method needs to know about what to explain.
struct Query {
  ForwardFn model;
  std::vector<Tensor> inputs;
  Target target = Target::none();
  Output output = Output::logit;
  // Empty: zeros for every input; one entry: used for every input; else one per input.
  std::vector<Baseline> baselines = {};
};

struct Attribution {
  std::vector<Tensor> attributions;  // one per input, (R, ...) like the input (R = N unless expanded)
  Tensor delta;                      // (R) completeness delta (float64), undefined when not computed
  std::vector<int64_t> rows;         // result row r explains input row rows[r] ...
  std::vector<int64_t> targets;      // ... for class targets[r] (-1: no selection)
};

// A method applied to a query (what noise_tunnel and deeplift_shap wrap).
using Method = std::function<Attribution(const Query&)>;

// --- shared machinery for the methods (explain/attribution.cpp) ---
namespace detail {

// A query with its targets and baselines resolved row by row: R rows, each input and baseline
// expanded to (R, ...), one class per row. Methods work on this form.
struct Prepared {
  ForwardFn model;
  Output output = Output::logit;
  std::vector<Tensor> inputs;     // (R, ...) each, detached
  std::vector<Tensor> baselines;  // (R, ...) each, like inputs
  std::vector<int64_t> rows;
  std::vector<int64_t> classes;   // (R) class per row, -1: no selection
};
Prepared prepare(const Query& query, const char* method);

// The explained score of each row: output transform, then the row's class. (R) from (R, K).
Tensor target_scores(const Tensor& model_output, const std::vector<int64_t>& classes, Output output);

// Gradients of sum_r score_r with respect to each input (one forward, one backward), taken
// inside whatever backward RuleScope is active. `scores` receives the (R) scores when non-null.
std::vector<Tensor> target_gradients(const ForwardFn& model, const std::vector<Tensor>& inputs,
                                     const std::vector<int64_t>& classes, Output output, Tensor* scores = nullptr);

// Scores of the rows without recording a graph.
Tensor score_rows(const ForwardFn& model, const std::vector<Tensor>& inputs, const std::vector<int64_t>& classes,
                  Output output);

// Rows [start, end) of each tensor (views).
// A 1-d int64 index of `rows` on `device` (index_select / index_add need it beside the data).
Tensor row_index(const std::vector<int64_t>& rows, Device device);

std::vector<Tensor> narrow_rows(const std::vector<Tensor>& tensors, int64_t start, int64_t end);

// Calls fn(start, end) over [0, total) in consecutive chunks of at most `chunk` rows (0: one chunk).
void for_each_chunk(int64_t total, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn);

// delta_r = sum of every attribution of row r - (f(x_r) - f(x'_r)), as float64 (R).
Tensor completeness_delta(const std::vector<Tensor>& attributions, const Tensor& scores_input,
                          const Tensor& scores_baseline);

// Row sums of a tensor (R, ...) -> (R), float64.
Tensor row_sums(const Tensor& t);

// The result with rows/targets filled in from the prepared query.
Attribution make_result(const Prepared& p, std::vector<Tensor> attributions, Tensor delta = Tensor());

}  // namespace detail

}  // namespace loupe::explain
