// Shared machinery of the perturbation methods. See perturbation.hpp.
#include "explain/perturbation.hpp"

#include <algorithm>
#include <map>

namespace loupe::explain::detail {

std::vector<RowGroup> group_rows(const Prepared& p) {
  std::vector<RowGroup> groups;
  std::map<int64_t, size_t> index_of;
  for (size_t r = 0; r < p.rows.size(); ++r) {
    auto [it, inserted] = index_of.try_emplace(p.rows[r], groups.size());
    if (inserted) groups.push_back(RowGroup{p.rows[r], {}, {}});
    groups[it->second].results.push_back(static_cast<int64_t>(r));
    groups[it->second].classes.push_back(p.classes[r]);
  }
  return groups;
}

namespace {

// (P, K) model output -> (P, T) float64 scores of the classes.
Tensor select_classes(const Tensor& out, const std::vector<int64_t>& classes, Output output) {
  const bool select = !classes.empty() && classes[0] >= 0;
  Tensor scores = out;
  if (!select) {
    const int64_t rows = out.dim() >= 1 ? out.size(0) : 0;
    LOUPE_CHECK((out.dim() == 1) || (out.dim() == 2 && out.size(1) == 1),
                "explain: without a target the model must give one score per row ((", rows, ") or (", rows,
                ", 1)), got ", shape_str(out.shape()));
    LOUPE_CHECK(output != Output::softmax, "explain: softmax needs a (rows, classes) output and a target");
    scores = ops::reshape(out, {rows, 1});
    if (output == Output::sigmoid) scores = ops::sigmoid(scores);
    return ops::to_dtype(scores, DType::f64);
  }
  LOUPE_CHECK(out.dim() == 2, "explain: the model output must be (rows, classes), got ", shape_str(out.shape()));
  for (int64_t c : classes) {
    LOUPE_CHECK(c >= 0 && c < out.size(1), "explain: target ", c, " is out of range for ", out.size(1), " outputs");
  }
  if (output == Output::sigmoid) scores = ops::sigmoid(scores);
  if (output == Output::softmax) scores = ops::softmax(scores, 1);
  const Tensor index = row_index(classes, out.device());
  return ops::to_dtype(ops::index_select(scores, 1, index), DType::f64);
}

}  // namespace

Tensor score_perturbations(const ForwardFn& model, Output output, const std::vector<int64_t>& classes,
                           int64_t count, int64_t per_eval, const PerturbFn& perturb) {
  LOUPE_CHECK(count >= 1, "explain: no perturbations to evaluate");
  LOUPE_CHECK(per_eval >= 0, "explain: perturbations_per_eval must be >= 0 (0: as many as fit), got ", per_eval);
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  int64_t step = per_eval;
  for (int64_t start = 0; start < count; start += step) {
    if (step == 0) step = default_per_eval(perturb(0, 1));  // sized from one copy of the row
    const int64_t end = std::min(count, start + step);
    const std::vector<Tensor> chunk = perturb(start, end);
    for (const Tensor& t : chunk) {
      LOUPE_CHECK(t.defined() && t.dim() >= 1 && t.size(0) == end - start, "explain: a perturbation chunk of ",
                  end - start, " rows came back with shape ", t.defined() ? shape_str(t.shape()) : "undefined");
    }
    parts.push_back(select_classes(model(chunk), classes, output));
  }
  return parts.size() == 1 ? parts[0] : ops::cat(parts, 0);
}

Tensor score_row(const ForwardFn& model, Output output, const std::vector<int64_t>& classes,
                 const std::vector<Tensor>& row_inputs) {
  return score_perturbations(model, output, classes, 1, 1, [&](int64_t, int64_t) { return row_inputs; });
}

int64_t default_per_eval(const std::vector<Tensor>& row_inputs, int64_t budget_bytes) {
  int64_t bytes = 0;
  for (const Tensor& t : row_inputs) {
    const int64_t rows = std::max<int64_t>(t.size(0), 1);
    bytes += t.numel() / rows * static_cast<int64_t>(dtype_size(t.dtype()));
  }
  return std::max<int64_t>(1, budget_bytes / std::max<int64_t>(bytes, 1));
}

Tensor blend(const Tensor& x, const Tensor& baseline, const Tensor& mask) {
  if (mask.dtype() == DType::b8) return ops::where(mask, x, baseline);
  const Tensor m = mask.dtype() == x.dtype() ? mask : ops::to_dtype(mask, x.dtype());
  return ops::add(baseline, ops::mul(m, ops::sub(x, baseline)));
}

}  // namespace loupe::explain::detail
