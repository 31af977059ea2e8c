// Shared machinery of the attribution methods: resolving targets and baselines, selecting the
// explained score, one forward/backward for the gradients, chunking, completeness deltas.
// See attribution.hpp. Tests: tests/explain/test_attribution.cpp
#include "explain/attribution.hpp"

#include <algorithm>

#include "nn/module.hpp"

namespace loupe::explain {

ForwardFn as_forward(nn::Module& model) {
  return [&model](const std::vector<Tensor>& inputs) {
    LOUPE_CHECK(inputs.size() == 1, "explain: a Module takes one input, got ", inputs.size());
    return model.forward(inputs[0]);
  };
}

ForwardFn as_forward(std::function<Tensor(const Tensor&)> model) {
  return [model = std::move(model)](const std::vector<Tensor>& inputs) {
    LOUPE_CHECK(inputs.size() == 1, "explain: the model takes one input, got ", inputs.size());
    return model(inputs[0]);
  };
}

Target Target::per_row(std::vector<int64_t> indices) {
  Target t;
  for (int64_t index : indices) t.per_row_.push_back({index});
  return t;
}

Target Target::several(std::vector<std::vector<int64_t>> lists) {
  Target t;
  t.per_row_ = std::move(lists);
  return t;
}

Target Target::each_of(std::vector<int64_t> indices) {
  Target t;
  t.per_row_ = {std::move(indices)};
  t.broadcast_ = true;
  return t;
}

void Target::resolve(int64_t n, std::vector<int64_t>& rows, std::vector<int64_t>& classes) const {
  rows.clear();
  classes.clear();
  if (per_row_.empty()) {  // none: one result row per input row
    for (int64_t r = 0; r < n; ++r) {
      rows.push_back(r);
      classes.push_back(-1);
    }
    return;
  }
  LOUPE_CHECK(broadcast_ || static_cast<int64_t>(per_row_.size()) == n, "explain: ", per_row_.size(),
              " target lists for a batch of ", n, " rows");
  for (int64_t r = 0; r < n; ++r) {
    const auto& list = per_row_[broadcast_ ? 0 : static_cast<size_t>(r)];
    for (int64_t c : list) {
      LOUPE_CHECK(c >= 0, "explain: target class ", c, " of row ", r, " is negative");
      rows.push_back(r);
      classes.push_back(c);
    }
  }
}

Tensor Baseline::resolve(const Tensor& input) const {
  if (const double* value = std::get_if<double>(&value_)) {
    return full_like(input, *value);
  }
  const Tensor& b = std::get<Tensor>(value_);
  LOUPE_CHECK(b.defined(), "explain: undefined baseline tensor");
  // A baseline given on the CPU follows the input to its device.
  LOUPE_CHECK(b.dim() <= input.dim(), "explain: baseline of shape ", shape_str(b.shape()),
              " has more dims than the input ", shape_str(input.shape()));
  // A baseline without the batch dim (C, H, W) or with a batch of 1 broadcasts over the rows.
  Tensor expanded = ops::expand(ops::to_device(ops::to_dtype(b.detach(), input.dtype()), input.device()), input.shape());
  return ops::contiguous(expanded);
}

namespace detail {

Tensor row_index(const std::vector<int64_t>& rows, Device device) {
  return ops::to_device(from_values(rows, {static_cast<int64_t>(rows.size())}), device);
}

Prepared prepare(const Query& query, const char* method) {
  LOUPE_CHECK(static_cast<bool>(query.model), method, ": no model");
  LOUPE_CHECK(!query.inputs.empty(), method, ": no inputs");
  const int64_t n = query.inputs[0].dim() > 0 ? query.inputs[0].size(0) : -1;
  for (const Tensor& x : query.inputs) {
    LOUPE_CHECK(x.defined() && x.dim() >= 1, method, ": every input needs a batch dim");
    LOUPE_CHECK(x.size(0) == n, method, ": inputs disagree on the batch size (", n, " vs ", x.size(0), ")");
    LOUPE_CHECK(is_floating(x.dtype()), method, ": inputs must be floating point, got ", dtype_name(x.dtype()));
  }
  const size_t nb = query.baselines.size();
  LOUPE_CHECK(nb <= 1 || nb == query.inputs.size(), method, ": ", nb, " baselines for ", query.inputs.size(),
              " inputs");

  Prepared p;
  p.model = query.model;
  p.output = query.output;
  query.target.resolve(n, p.rows, p.classes);
  const bool identity = static_cast<int64_t>(p.rows.size()) == n;  // no row was expanded
  const Tensor index = row_index(p.rows, query.inputs[0].device());
  for (size_t i = 0; i < query.inputs.size(); ++i) {
    const Tensor x = query.inputs[i].detach();
    const Baseline baseline = nb == 0 ? Baseline() : query.baselines[nb == 1 ? 0 : i];
    const Tensor b = baseline.resolve(x);
    p.inputs.push_back(identity ? x : ops::index_select(x, 0, index));
    p.baselines.push_back(identity ? b : ops::index_select(b, 0, index));
  }
  return p;
}

Tensor target_scores(const Tensor& model_output, const std::vector<int64_t>& classes, Output output) {
  const auto r = static_cast<int64_t>(classes.size());
  const bool select = !classes.empty() && classes[0] >= 0;
  Tensor out = model_output;
  if (!select) {
    // One score per row: (R) or (R, 1).
    LOUPE_CHECK((out.dim() == 1 && out.size(0) == r) || (out.dim() == 2 && out.size(0) == r && out.size(1) == 1),
                "explain: without a target the model must give one score per row ((", r, ") or (", r,
                ", 1)), got ", shape_str(out.shape()));
    LOUPE_CHECK(output != Output::softmax, "explain: softmax needs a (rows, classes) output and a target");
    out = reshape(out, {r});
    return output == Output::sigmoid ? sigmoid(out) : out;
  }
  LOUPE_CHECK(out.dim() == 2 && out.size(0) == r, "explain: the model output must be (rows, classes) = (", r,
              ", K), got ", shape_str(out.shape()));
  for (int64_t c : classes) {
    LOUPE_CHECK(c >= 0 && c < out.size(1), "explain: target ", c, " is out of range for ", out.size(1),
                " outputs");
  }
  if (output == Output::sigmoid) out = sigmoid(out);
  if (output == Output::softmax) out = softmax(out, 1);
  const Tensor index = ops::to_device(from_values(classes, {r, 1}), out.device());
  return reshape(gather(out, 1, index), {r});
}

std::vector<Tensor> target_gradients(const ForwardFn& model, const std::vector<Tensor>& inputs,
                                     const std::vector<int64_t>& classes, Output output, Tensor* scores) {
  EnableGradGuard grad_mode;
  std::vector<Tensor> leaves;
  leaves.reserve(inputs.size());
  for (const Tensor& x : inputs) leaves.push_back(x.detach().set_requires_grad());
  const Tensor s = target_scores(model(leaves), classes, output);
  std::vector<Tensor> grads = grad({sum(s)}, leaves);
  for (size_t i = 0; i < grads.size(); ++i) {
    // An input the score does not depend on has zero gradient.
    if (!grads[i].defined()) grads[i] = zeros_like(inputs[i]);
  }
  if (scores != nullptr) *scores = s.detach();
  return grads;
}

Tensor score_rows(const ForwardFn& model, const std::vector<Tensor>& inputs, const std::vector<int64_t>& classes,
                  Output output) {
  NoGradGuard no_grad;
  return target_scores(model(inputs), classes, output);
}

std::vector<Tensor> narrow_rows(const std::vector<Tensor>& tensors, int64_t start, int64_t end) {
  std::vector<Tensor> out;
  out.reserve(tensors.size());
  for (const Tensor& t : tensors) out.push_back(ops::narrow(t, 0, start, end - start));
  return out;
}

void for_each_chunk(int64_t total, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
  LOUPE_CHECK(chunk >= 0, "explain: internal_batch_size must be >= 0 (0: all at once), got ", chunk);
  const int64_t step = chunk == 0 ? std::max<int64_t>(total, 1) : chunk;
  for (int64_t start = 0; start < total; start += step) fn(start, std::min(total, start + step));
}

Tensor row_sums(const Tensor& t) {
  const Tensor flat = ops::reshape(ops::to_dtype(t, DType::f64), {t.size(0), -1});
  return ops::sum(flat, {1});
}

Tensor completeness_delta(const std::vector<Tensor>& attributions, const Tensor& scores_input,
                          const Tensor& scores_baseline) {
  Tensor total = ops::neg(ops::sub(ops::to_dtype(scores_input, DType::f64), ops::to_dtype(scores_baseline, DType::f64)));
  for (const Tensor& a : attributions) total = ops::add(total, row_sums(a));
  return total;
}

Attribution make_result(const Prepared& p, std::vector<Tensor> attributions, Tensor delta) {
  Attribution result;
  result.attributions = std::move(attributions);
  result.delta = std::move(delta);
  result.rows = p.rows;
  result.targets = p.classes;
  return result;
}

}  // namespace detail

}  // namespace loupe::explain
