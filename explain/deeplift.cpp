// DeepLIFT (rescale) and DeepLIFT-SHAP. See deeplift.hpp.
#include "explain/deeplift.hpp"

namespace loupe::explain {

namespace {

// Multipliers and scores for rows [start, end) of a prepared query: one forward of [x; x'].
void deeplift_chunk(const detail::Prepared& p, int64_t start, int64_t end, double eps,
                    std::vector<std::vector<Tensor>>& multipliers, std::vector<Tensor>& scores) {
  const int64_t len = end - start;
  std::vector<Tensor> doubled;
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    doubled.push_back(ops::cat({ops::narrow(p.inputs[i], 0, start, len), ops::narrow(p.baselines[i], 0, start, len)}, 0));
  }
  std::vector<int64_t> classes(p.classes.begin() + start, p.classes.begin() + end);
  classes.insert(classes.end(), p.classes.begin() + start, p.classes.begin() + end);  // the target of both halves
  Tensor s;
  std::vector<Tensor> grads;
  {
    autograd::RuleScope scope(autograd::deeplift_rescale_rules(eps));
    grads = detail::target_gradients(p.model, doubled, classes, p.output, &s);
  }
  for (size_t i = 0; i < grads.size(); ++i) multipliers[i].push_back(ops::narrow(grads[i], 0, 0, len));
  scores.push_back(s);  // (2 len): [f(x); f(x')]
}

}  // namespace

Attribution deeplift(const Query& query, const DeepLiftOptions& options) {
  const detail::Prepared p = detail::prepare(query, "deeplift");
  const auto r = static_cast<int64_t>(p.rows.size());
  std::vector<std::vector<Tensor>> parts(p.inputs.size());
  std::vector<Tensor> score_parts, input_scores, baseline_scores;
  detail::for_each_chunk(r, options.internal_batch_size, [&](int64_t start, int64_t end) {
    deeplift_chunk(p, start, end, options.eps, parts, score_parts);
    const int64_t len = end - start;
    input_scores.push_back(ops::narrow(score_parts.back(), 0, 0, len));
    baseline_scores.push_back(ops::narrow(score_parts.back(), 0, len, len));
  });
  std::vector<Tensor> multipliers, full;
  for (size_t i = 0; i < parts.size(); ++i) {
    multipliers.push_back(parts[i].size() == 1 ? ops::contiguous(parts[i][0]) : ops::cat(parts[i], 0));
    full.push_back(ops::mul(ops::sub(p.inputs[i], p.baselines[i]), multipliers.back()));
  }
  Tensor delta;
  if (options.return_convergence_delta) {
    delta = detail::completeness_delta(full, ops::cat(input_scores, 0), ops::cat(baseline_scores, 0));
  }
  return detail::make_result(p, options.multiply_by_inputs ? full : multipliers, delta);
}

Attribution deeplift_shap(const Query& query, const std::vector<Tensor>& baseline_sets,
                          const DeepLiftOptions& options) {
  // Resolve targets on the query without baselines, then pair every row with every baseline.
  Query plain = query;
  plain.baselines.clear();
  const detail::Prepared p = detail::prepare(plain, "deeplift_shap");
  LOUPE_CHECK(baseline_sets.size() == p.inputs.size(), "deeplift_shap: ", baseline_sets.size(),
              " baseline sets for ", p.inputs.size(), " inputs");
  const int64_t k = baseline_sets[0].dim() > 0 ? baseline_sets[0].size(0) : 0;
  LOUPE_CHECK(k >= 1, "deeplift_shap: the baseline sets need at least one baseline");
  const auto r = static_cast<int64_t>(p.rows.size());

  // Pair (row, baseline j) is virtual row row * K + j.
  std::vector<int64_t> row_of, baseline_of;
  for (int64_t row = 0; row < r; ++row) {
    for (int64_t j = 0; j < k; ++j) {
      row_of.push_back(row);
      baseline_of.push_back(j);
    }
  }
  const Device device = p.inputs[0].device();
  const Tensor row_index = detail::row_index(row_of, device);
  const Tensor baseline_index = detail::row_index(baseline_of, device);
  Query paired;
  paired.model = query.model;
  paired.output = query.output;
  std::vector<int64_t> classes;
  for (int64_t row : row_of) classes.push_back(p.classes[static_cast<size_t>(row)]);
  paired.target = classes[0] < 0 ? Target::none() : Target::per_row(classes);
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    const Tensor& set = baseline_sets[i];
    LOUPE_CHECK(set.dim() == p.inputs[i].dim() && set.size(0) == k, "deeplift_shap: baseline set ", i,
                " of shape ", shape_str(set.shape()), " does not hold K = ", k, " rows shaped like input ",
                shape_str(p.inputs[i].shape()));
    paired.inputs.push_back(ops::index_select(p.inputs[i], 0, row_index));
    paired.baselines.push_back(ops::index_select(ops::to_device(ops::to_dtype(set.detach(), p.inputs[i].dtype()), device), 0, baseline_index));
  }
  const Attribution each = deeplift(paired, options);

  // Mean over the K baselines of each row: (R * K, ...) -> (R, K, ...) -> (R, ...).
  std::vector<Tensor> averaged;
  for (const Tensor& a : each.attributions) {
    Shape shape = a.shape();
    shape[0] = k;
    shape.insert(shape.begin(), r);
    averaged.push_back(ops::mean(ops::reshape(a, shape), {1}));
  }
  Tensor delta;
  if (each.delta.defined()) delta = ops::mean(ops::reshape(each.delta, {r, k}), {1});
  return detail::make_result(p, std::move(averaged), delta);
}

}  // namespace loupe::explain
