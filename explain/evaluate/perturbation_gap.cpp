// PGI / PGU. See perturbation_gap.hpp.
#include "explain/evaluate/perturbation_gap.hpp"

#include <algorithm>
#include <cmath>

#include "tensor/ops/random_ops.hpp"

namespace loupe::explain {

void mean_and_standard_error(const std::vector<double>& values, double& mean, double& standard_error) {
  LOUPE_CHECK(!values.empty(), "mean_and_standard_error: no values");
  const auto n = static_cast<double>(values.size());
  mean = 0.0;
  for (double v : values) mean += v;
  mean /= n;
  standard_error = 0.0;
  if (values.size() < 2) return;
  double ss = 0.0;
  for (double v : values) ss += (v - mean) * (v - mean);
  standard_error = std::sqrt(ss / (n - 1.0)) / std::sqrt(n);
}

PerturbationGap perturbation_gap(const Query& query, const Attribution& attribution, bool important,
                                 const PerturbationGapOptions& options) {
  const char* name = important ? "pgi" : "pgu";
  LOUPE_CHECK(query.inputs.size() == 1, name, ": needs a query with one input, got ", query.inputs.size());
  LOUPE_CHECK(attribution.attributions.size() == 1, name, ": needs an attribution of one input, got ",
              attribution.attributions.size());
  const Tensor& input = query.inputs[0];
  const Tensor& attr = attribution.attributions[0];
  const auto r_rows = static_cast<int64_t>(attribution.rows.size());
  LOUPE_CHECK(
      r_rows >= 1 && attribution.targets.size() == attribution.rows.size() && attr.dim() >= 1 && attr.size(0) == r_rows,
      name, ": the attribution's rows, targets and tensor disagree (", attribution.rows.size(), ", ",
      attribution.targets.size(), ", ", shape_str(attr.shape()), ")");
  LOUPE_CHECK(input.dim() >= 2 && input.numel() / input.size(0) == attr.numel() / r_rows, name, ": the attribution ",
              shape_str(attr.shape()), " does not match the input ", shape_str(input.shape()));
  for (int64_t row : attribution.rows)
    LOUPE_CHECK(row >= 0 && row < input.size(0), name, ": attribution row ", row, " outside the input's ",
                input.size(0), " rows");
  LOUPE_CHECK(options.perturbation == GapPerturbation::zero || (options.n_samples >= 1 && options.stdev >= 0.0), name,
              ": gaussian perturbation needs n_samples >= 1 and stdev >= 0");
  const Device device = input.device();
  const DType dtype = input.dtype();
  const int64_t d = input.numel() / input.size(0);
  const int64_t k_max = options.max_k > 0 ? options.max_k : std::min<int64_t>(11, d);
  LOUPE_CHECK(k_max >= 1 && k_max <= d, name, ": max_k must be in 1..", d, ", got ", options.max_k);

  const Tensor x_in = ops::index_select(input, 0, detail::row_index(attribution.rows, device));  // (R, ...)
  const Tensor x = ops::reshape(x_in, {r_rows, d});
  // rank[r, i] = position of feature i in the order by |attr| (descending for PGI, ascending for PGU).
  const Tensor magnitude = ops::abs(ops::to_dtype(ops::reshape(ops::to_device(attr, device), {r_rows, d}), DType::f64));
  const Tensor order = ops::sort(magnitude, 1, /*descending=*/important, /*stable=*/true).indices;  // (R, d)
  const Tensor positions = ops::contiguous(
      ops::expand(ops::reshape(ops::to_device(arange(0, d, 1, DType::f64), device), {1, d}), {r_rows, d}));
  const Tensor rank = ops::scatter_add(zeros({r_rows, d}, DType::f64, device), 1, order, positions);  // (R, d)
  std::vector<double> kv;
  for (int64_t k = 1; k <= k_max; ++k) kv.push_back(static_cast<double>(k));
  const Tensor ks = ops::to_device(from_values(kv, {k_max, 1, 1}, DType::f64), device);
  const Tensor mask = ops::to_dtype(ops::lt(ops::reshape(rank, {1, r_rows, d}), ks), dtype);  // (K, R, d) 1: perturbed

  // The explained score of every row, then of every perturbed copy.
  const std::vector<int64_t> classes = attribution.targets;
  const Tensor f_x = ops::to_dtype(detail::score_rows(query.model, {x_in}, classes, query.output), DType::f64);  // (R)
  const int64_t samples = options.perturbation == GapPerturbation::zero ? 1 : options.n_samples;
  std::vector<int64_t> copy_classes;  // (K R): class of copy (k, r)
  for (int64_t k = 0; k < k_max; ++k) copy_classes.insert(copy_classes.end(), classes.begin(), classes.end());
  Shape copy_shape = input.shape();
  Generator& gen = options.generator != nullptr ? *options.generator : default_generator();
  const int64_t per_eval = options.rows_per_eval > 0 ? options.rows_per_eval : 65536;
  const int64_t samples_per_chunk = std::max<int64_t>(1, per_eval / (k_max * r_rows));
  // All the noise is drawn at once, so the result does not depend on rows_per_eval.
  const Tensor all_noise = options.perturbation == GapPerturbation::zero
                               ? Tensor()
                               : normal({samples, k_max, r_rows, d}, 0.0, options.stdev, dtype, &gen, device);
  Tensor gap_sum = zeros({k_max, r_rows}, DType::f64, device);
  for (int64_t s0 = 0; s0 < samples; s0 += samples_per_chunk) {
    const int64_t s_n = std::min(samples_per_chunk, samples - s0);
    Tensor copies;  // (S, K, R, d)
    if (options.perturbation == GapPerturbation::zero) {
      copies = ops::reshape(ops::mul(ops::reshape(x, {1, r_rows, d}), ops::sub(ones_like(mask), mask)),
                            {1, k_max, r_rows, d});
    } else {
      const Tensor noise = ops::narrow(all_noise, 0, s0, s_n);
      copies = ops::add(ops::reshape(x, {1, 1, r_rows, d}), ops::mul(ops::reshape(mask, {1, k_max, r_rows, d}), noise));
    }
    copy_shape[0] = s_n * k_max * r_rows;
    std::vector<int64_t> chunk_classes;
    for (int64_t s = 0; s < s_n; ++s)
      chunk_classes.insert(chunk_classes.end(), copy_classes.begin(), copy_classes.end());
    const Tensor f_copies = ops::to_dtype(
        detail::score_rows(query.model, {ops::reshape(copies, copy_shape)}, chunk_classes, query.output), DType::f64);
    const Tensor gaps =
        ops::abs(ops::sub(ops::reshape(f_copies, {s_n, k_max, r_rows}), ops::reshape(f_x, {1, 1, r_rows})));
    gap_sum = ops::add(gap_sum, ops::sum(gaps, {0}));
  }
  PerturbationGap out;
  out.gaps = ops::to_device(ops::contiguous(ops::transpose(ops::div(gap_sum, static_cast<double>(samples)), 0, 1)),
                            Device::cpu());  // (R, K)
  const std::vector<double> g = to_vector<double>(out.gaps);
  for (int64_t k = 0; k < k_max; ++k) {
    std::vector<double> column;
    for (int64_t r = 0; r < r_rows; ++r) column.push_back(g[static_cast<size_t>(r * k_max + k)]);
    double m = 0.0, se = 0.0;
    mean_and_standard_error(column, m, se);
    out.k.push_back(k + 1);
    out.mean.push_back(m);
    out.standard_error.push_back(se);
  }
  if (k_max == 1) {
    out.auc = out.mean[0];
  } else {
    double area = 0.0;
    for (size_t i = 1; i < out.mean.size(); ++i) area += 0.5 * (out.mean[i - 1] + out.mean[i]);
    out.auc = area / static_cast<double>(k_max - 1);
  }
  return out;
}

}  // namespace loupe::explain
