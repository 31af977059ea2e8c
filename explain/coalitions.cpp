// Feature masks and coalitions. See coalitions.hpp.
#include "explain/coalitions.hpp"

#include <algorithm>

namespace loupe::explain::detail {

namespace {

Shape row_shape(const Tensor& input) {
  Shape shape = input.shape();
  shape[0] = 1;
  return shape;
}

}  // namespace

RowFeatures row_features(const std::vector<Tensor>& feature_mask, const std::vector<Tensor>& inputs, int64_t input_row,
                         int64_t n_rows, const char* method) {
  LOUPE_CHECK(feature_mask.empty() || feature_mask.size() == inputs.size(), method, ": ", feature_mask.size(),
              " feature masks for ", inputs.size(), " inputs (give one per input, or none)");
  RowFeatures f;
  int64_t offset = 0;  // default mask: each scalar its own feature, numbered across the inputs
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    const Shape shape = row_shape(input);
    const int64_t numel = shape_numel(shape);
    f.shapes.push_back(shape);
    if (feature_mask.empty()) {
      f.ids.push_back(
          ops::to_device(arange(static_cast<double>(offset), static_cast<double>(offset + numel)), input.device()));
      offset += numel;
      f.count = offset;
      continue;
    }
    Tensor mask = feature_mask[i];
    LOUPE_CHECK(mask.defined() && mask.dtype() == DType::i64, method, ": feature mask ", i,
                " must be an int64 tensor of feature ids, got ",
                mask.defined() ? dtype_name(mask.dtype()) : "undefined");
    LOUPE_CHECK(mask.dim() <= input.dim(), method, ": feature mask ", i, " of shape ", shape_str(mask.shape()),
                " has more dims than input ", i, " ", shape_str(input.shape()));
    if (mask.dim() == input.dim()) {  // with a batch dim: 1 (shared) or one per input row
      LOUPE_CHECK(mask.size(0) == 1 || mask.size(0) == n_rows, method, ": feature mask ", i, " of shape ",
                  shape_str(mask.shape()), " has ", mask.size(0), " rows for a batch of ", n_rows,
                  " (use 1 row, one per input row, or no batch dim)");
      mask = ops::narrow(mask, 0, mask.size(0) == 1 ? 0 : input_row, 1);
    } else {
      Shape padded(static_cast<size_t>(input.dim() - mask.dim()), 1);
      padded.insert(padded.end(), mask.shape().begin(), mask.shape().end());
      mask = ops::reshape(mask, padded);
    }
    for (int64_t d = 1; d < input.dim(); ++d) {
      LOUPE_CHECK(mask.size(d) == 1 || mask.size(d) == shape[static_cast<size_t>(d)], method, ": feature mask ", i,
                  " of shape ", shape_str(feature_mask[i].shape()), " does not broadcast to the input's row shape ",
                  shape_str(shape));
    }
    const Tensor flat = ops::reshape(ops::contiguous(ops::expand(mask, shape)), {numel});
    const std::vector<int64_t> ids = to_vector<int64_t>(flat);
    for (int64_t id : ids) {
      LOUPE_CHECK(id >= 0, method, ": feature mask ", i, " holds the negative id ", id, " (ids are 0..M-1)");
      f.count = std::max(f.count, id + 1);
    }
    f.ids.push_back(ops::to_device(flat, input.device()));
  }
  return f;
}

std::vector<Tensor> apply_coalitions(const RowFeatures& features, const std::vector<Tensor>& x,
                                     const std::vector<Tensor>& baseline, const Tensor& z) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < x.size(); ++i) {
    Shape shape = features.shapes[i];
    shape[0] = z.size(0);
    const Tensor z_i = z.dtype() == x[i].dtype() ? z : ops::to_dtype(z, x[i].dtype());
    const Tensor mask = ops::reshape(ops::index_select(z_i, 1, features.ids[i]), shape);  // (P, ...)
    out.push_back(blend(x[i], baseline[i], mask));
  }
  return out;
}

std::vector<Tensor> spread(const RowFeatures& features, const Tensor& values) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < features.ids.size(); ++i) {
    Shape shape = features.shapes[i];
    shape[0] = values.size(0);
    out.push_back(ops::reshape(ops::index_select(values, 1, features.ids[i]), shape));
  }
  return out;
}

std::vector<double> feature_sums(const RowFeatures& features, const std::vector<Tensor>& values) {
  Tensor sums;
  for (size_t i = 0; i < values.size(); ++i) {
    const Tensor flat = ops::reshape(ops::to_dtype(values[i], DType::f64), {values[i].numel()});
    if (!sums.defined()) sums = zeros({features.count}, DType::f64, flat.device());
    sums = ops::index_add(sums, 0, features.ids[i], flat);
  }
  return to_vector<double>(sums);
}

std::vector<double> score_coalitions(const Prepared& p, const CoalitionRow& row, const Tensor& z, int64_t per_eval) {
  const Tensor scores =
      score_perturbations(p.model, p.output, row.group->classes, z.size(0), per_eval, [&](int64_t start, int64_t end) {
        return apply_coalitions(row.features, row.x, row.baseline, ops::narrow(z, 0, start, end - start));
      });
  return to_vector<double>(scores);
}

void check_surrogate_features(int64_t m, const char* method) {
  LOUPE_CHECK(m <= kMaxSurrogateFeatures, method, ": ", m, " features is more than a surrogate fit can take (at most ",
              kMaxSurrogateFeatures, "); group the scalars with a feature_mask (e.g. a grid of patches)");
}

std::vector<double> given_coalitions(const Tensor& coalitions, int64_t m, const char* method) {
  LOUPE_CHECK(coalitions.dim() == 2 && coalitions.size(1) == m && coalitions.size(0) >= 1, method,
              ": coalitions must be (n, M) with M = ", m, " features, got ", shape_str(coalitions.shape()));
  std::vector<double> z = to_vector<double>(coalitions);
  for (double v : z) LOUPE_CHECK(v == 0.0 || v == 1.0, method, ": coalitions must hold 0 or 1, got ", v);
  return z;
}

Tensor coalition_tensor(const std::vector<double>& z, int64_t count, int64_t m, DType dtype, Device device) {
  return ops::to_device(from_values(z, {count, m}, dtype), device);
}

Attribution attribute_features(const Prepared& p, const std::vector<Tensor>& feature_mask, int64_t n_rows,
                               const char* method, const RowSolver& fn) {
  const std::vector<RowGroup> groups = group_rows(p);
  // Every row uses the batch's feature count (Captum: largest id + 1 over the whole mask).
  std::vector<RowFeatures> features;
  int64_t m = 0;
  for (const RowGroup& g : groups) {
    features.push_back(row_features(feature_mask, p.inputs, g.input_row, n_rows, method));
    m = std::max(m, features.back().count);
  }
  LOUPE_CHECK(m >= 1, method, ": the inputs have no features");
  std::vector<Tensor> result;
  for (const Tensor& x : p.inputs) result.push_back(zeros_like(x));
  for (size_t k = 0; k < groups.size(); ++k) {
    CoalitionRow row;
    row.group = &groups[k];
    row.features = std::move(features[k]);
    row.features.count = m;
    const int64_t r0 = groups[k].results[0];  // every target of the row shares x and the baseline
    for (size_t i = 0; i < p.inputs.size(); ++i) {
      row.x.push_back(ops::narrow(p.inputs[i], 0, r0, 1));
      row.baseline.push_back(ops::narrow(p.baselines[i], 0, r0, 1));
    }
    const auto t = static_cast<int64_t>(groups[k].results.size());
    const std::vector<double> values = fn(row);
    LOUPE_CHECK(static_cast<int64_t>(values.size()) == t * m, method, ": internal: ", values.size(),
                " feature values for ", t, " targets x ", m, " features");
    const Tensor index = row_index(groups[k].results, p.inputs[0].device());
    const Tensor v = ops::to_device(from_values(values, {t, m}, DType::f64), p.inputs[0].device());
    for (size_t i = 0; i < p.inputs.size(); ++i) {
      Shape shape = row.features.shapes[i];
      shape[0] = t;
      const Tensor rows = ops::index_select(ops::to_dtype(v, p.inputs[i].dtype()), 1, row.features.ids[i]);
      result[i] = ops::index_add(result[i], 0, index, ops::reshape(rows, shape));  // (T, ...) into the result rows
    }
  }
  return make_result(p, result);
}

}  // namespace loupe::explain::detail
