// Faithfulness metrics: deletion/insertion curves, infidelity, max-sensitivity, faithfulness
// correlation and region mass. See faithfulness.hpp; formulas in docs/explain.md.
#include "explain/evaluate/faithfulness.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "autograd/grad_mode.hpp"
#include "explain/baselines.hpp"
#include "explain/perturbation.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace loupe::explain::evaluate {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The single input of a prepared query and its attribution, checked against each other.
struct Rows {
  detail::Prepared p;
  Tensor x;     // (R, ...) the input rows
  Tensor attr;  // (R, ...) float64, on x's device
  Shape row_shape;
};

Rows prepare_rows(const Query& query, const Attribution& a, const char* metric) {
  Rows rows{detail::prepare(query, metric), Tensor(), Tensor(), {}};
  LOUPE_CHECK(rows.p.inputs.size() == 1, metric, ": expected one model input, got ", rows.p.inputs.size());
  LOUPE_CHECK(a.attributions.size() == 1, metric, ": expected one attribution tensor, got ", a.attributions.size());
  rows.x = rows.p.inputs[0];
  LOUPE_CHECK(a.attributions[0].defined() && a.attributions[0].shape() == rows.x.shape(), metric,
              ": the attribution has shape ",
              a.attributions[0].defined() ? shape_str(a.attributions[0].shape()) : std::string("(none)"),
              " but the query's rows are ", shape_str(rows.x.shape()), " (same query, same targets?)");
  rows.attr = ops::to_device(ops::to_dtype(a.attributions[0], DType::f64), rows.x.device());
  rows.row_shape = Shape(rows.x.shape().begin() + 1, rows.x.shape().end());
  return rows;
}

// Unit id of every element of a row: flat (E) int64 on `device`, and the number of units U.
struct Units {
  Tensor ids;
  int64_t count = 0;
};

Units make_units(const Shape& row_shape, const Tensor& feature_mask, Device device, const char* metric) {
  const int64_t elements = shape_numel(row_shape);
  Units u;
  if (feature_mask.defined()) {
    LOUPE_CHECK(feature_mask.dtype() == DType::i64, metric, ": the feature mask must be int64, got ",
                dtype_name(feature_mask.dtype()));
    LOUPE_CHECK(feature_mask.dim() <= static_cast<int64_t>(row_shape.size()), metric, ": a feature mask of shape ",
                shape_str(feature_mask.shape()), " does not broadcast to a row ", shape_str(row_shape));
    Tensor ids;
    try {
      ids = ops::contiguous(ops::expand(ops::to_device(feature_mask, Device::cpu()), row_shape));
    } catch (const Error&) {
      throw Error(std::string(metric) + ": a feature mask of shape " + shape_str(feature_mask.shape()) +
                  " does not broadcast to a row " + shape_str(row_shape));
    }
    const std::vector<int64_t> values = to_vector<int64_t>(ids);
    const int64_t lo = *std::min_element(values.begin(), values.end());
    u.count = *std::max_element(values.begin(), values.end()) + 1;
    LOUPE_CHECK(lo >= 0, metric, ": feature ids must be >= 0, got ", lo);
    u.ids = ops::to_device(ops::reshape(ids, {elements}), device);
    return u;
  }
  if (row_shape.size() == 3) {  // (C, H, W): all channels of a pixel are one unit
    const int64_t h = row_shape[1], w = row_shape[2];
    u.count = h * w;
    const Tensor plane = ops::reshape(arange(h * w), {1, h, w});
    u.ids = ops::to_device(ops::reshape(ops::contiguous(ops::expand(plane, row_shape)), {elements}), device);
    return u;
  }
  u.count = elements;
  u.ids = ops::to_device(arange(elements), device);
  return u;
}

// (U) float64 on the CPU: the sum of row r's attribution over each unit.
std::vector<double> unit_attribution(const Tensor& attr_row, const Units& u) {
  const Tensor flat = ops::reshape(ops::contiguous(attr_row), {u.ids.size(0)});
  const Tensor sums = ops::index_add(zeros({u.count}, DType::f64, flat.device()), 0, u.ids, flat);
  return to_vector<double>(ops::to_device(sums, Device::cpu()));
}

// Rank of every unit when ordered by decreasing attribution (ties: lower id first).
std::vector<int64_t> descending_ranks(const std::vector<double>& values) {
  std::vector<int64_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return values[static_cast<size_t>(a)] > values[static_cast<size_t>(b)];
  });
  std::vector<int64_t> rank(values.size());
  for (size_t i = 0; i < order.size(); ++i) rank[static_cast<size_t>(order[i])] = static_cast<int64_t>(i);
  return rank;
}

Tensor fill_rows(const Rows& rows, Fill fill, double blur_sigma) {
  if (fill == Fill::baseline) return rows.p.baselines[0];
  LOUPE_CHECK(rows.x.dim() >= 3, "deletion/insertion: a blur fill needs image rows (R, C, H, W), got ",
              shape_str(rows.x.shape()));
  const double sigma =
      blur_sigma > 0.0 ? blur_sigma : std::max(1.0, static_cast<double>(rows.x.size(-1)) / 16.0);
  return gaussian_blur(rows.x, sigma);
}

Curve run_curve(const Query& query, const Attribution& a, const CurveOptions& o, bool insertion) {
  const char* metric = insertion ? "insertion_curve" : "deletion_curve";
  LOUPE_CHECK(o.steps >= 0, metric, ": steps must be >= 0 (0: one per unit), got ", o.steps);
  const Rows rows = prepare_rows(query, a, metric);
  const Device device = rows.x.device();
  const Units units = make_units(rows.row_shape, o.feature_mask, device, metric);
  const Tensor fill = fill_rows(rows, o.fill, o.blur_sigma);
  const int64_t steps = o.steps == 0 ? units.count : o.steps;
  const int64_t r_count = rows.x.size(0);

  // n_k units removed after step k, as (K, 1, ..., 1) for broadcasting against a row's ranks.
  Curve curve;
  std::vector<int64_t> removed;
  for (int64_t k = 0; k <= steps; ++k) {
    removed.push_back(k * units.count / steps);
    curve.fractions.push_back(static_cast<double>(removed.back()) / static_cast<double>(units.count));
  }
  Shape n_shape(rows.x.shape().size(), 1);
  n_shape[0] = steps + 1;
  const Tensor n = ops::to_device(ops::reshape(from_values(removed, {steps + 1}), n_shape), device);

  std::vector<Tensor> score_rows;
  for (int64_t r = 0; r < r_count; ++r) {
    const std::vector<int64_t> rank = descending_ranks(unit_attribution(ops::select(rows.attr, 0, r), units));
    const Tensor unit_rank = ops::to_device(from_values(rank, {units.count}), device);
    Shape one_row = rows.row_shape;
    one_row.insert(one_row.begin(), 1);
    const Tensor element_rank = ops::reshape(ops::index_select(unit_rank, 0, units.ids), one_row);  // (1, ...)
    const Tensor xr = ops::narrow(rows.x, 0, r, 1), fr = ops::narrow(fill, 0, r, 1);
    const Tensor scores = detail::score_perturbations(
        rows.p.model, rows.p.output, {rows.p.classes[static_cast<size_t>(r)]}, steps + 1, o.perturbations_per_eval,
        [&](int64_t start, int64_t end) {
          const Tensor placed = ops::lt(element_rank, ops::narrow(n, 0, start, end - start));  // (k, ...) bool
          return std::vector<Tensor>{detail::blend(xr, fr, insertion ? placed : ops::logical_not(placed))};
        });
    score_rows.push_back(ops::reshape(scores, {1, steps + 1}));
  }
  curve.scores = ops::to_device(ops::to_dtype(ops::cat(score_rows, 0), DType::f64), Device::cpu());
  std::vector<double> auc;
  for (int64_t r = 0; r < r_count; ++r)
    auc.push_back(trapezoid_auc(curve.fractions, to_vector<double>(ops::select(curve.scores, 0, r))));
  curve.auc = from_values(auc, {r_count}, DType::f64);
  return curve;
}

// (E) per-element mean-free Pearson correlation of two equally long lists; NaN when one is constant.
double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : kNaN;
}

// The explained score f(x_r) of one row.
double row_score(const Rows& rows, int64_t r) {
  const Tensor s = detail::score_row(rows.p.model, rows.p.output, {rows.p.classes[static_cast<size_t>(r)]},
                                     {ops::narrow(rows.x, 0, r, 1)});
  return ops::to_device(ops::to_dtype(s, DType::f64), Device::cpu()).item();
}

// Row r repeated `count` times along the batch: (count, ...).
Tensor repeat_row(const Tensor& x, int64_t r, int64_t count) {
  Shape shape = x.shape();
  shape[0] = count;
  return ops::expand(ops::narrow(x, 0, r, 1), shape);
}

}  // namespace

double trapezoid_auc(const std::vector<double>& x, const std::vector<double>& y) {
  LOUPE_CHECK(x.size() == y.size(), "trapezoid_auc: ", x.size(), " x values and ", y.size(), " y values");
  double area = 0.0;
  for (size_t i = 1; i < x.size(); ++i) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0;
  return area;
}

Curve deletion_curve(const Query& query, const Attribution& a, const CurveOptions& o) {
  return run_curve(query, a, o, false);
}

Curve insertion_curve(const Query& query, const Attribution& a, const CurveOptions& o) {
  return run_curve(query, a, o, true);
}

Tensor infidelity(const Query& query, const Attribution& a, const InfidelityOptions& o) {
  LOUPE_CHECK(o.n_samples >= 1, "infidelity: n_samples must be >= 1, got ", o.n_samples);
  const Rows rows = prepare_rows(query, a, "infidelity");
  const int64_t r_count = rows.x.size(0), s_count = o.n_samples;
  const Device device = rows.x.device();
  Shape sample_shape = rows.x.shape();
  sample_shape[0] = r_count * s_count;
  if (o.perturbations.defined()) {
    LOUPE_CHECK(o.perturbations.shape() == sample_shape, "infidelity: fixed perturbations must have shape ",
                shape_str(sample_shape), " (rows x samples, ...), got ", shape_str(o.perturbations.shape()));
  }
  const Units units = o.noise == InfidelityNoise::subset && !o.perturbations.defined()
                          ? make_units(rows.row_shape, o.feature_mask, device, "infidelity")
                          : Units{};
  Shape s_shape = rows.x.shape();
  s_shape[0] = s_count;
  std::vector<double> result;
  for (int64_t r = 0; r < r_count; ++r) {
    // I: (S, ...) the perturbations of row r.
    Tensor perturbation;
    if (o.perturbations.defined()) {
      perturbation = ops::narrow(ops::to_device(ops::to_dtype(o.perturbations, rows.x.dtype()), device), 0,
                                 r * s_count, s_count);
    } else if (o.noise == InfidelityNoise::gaussian) {
      perturbation = normal(s_shape, 0.0, o.noise_std, rows.x.dtype(), o.generator, device);
    } else {
      const Tensor z = bernoulli({s_count, units.count}, 0.5, rows.x.dtype(), o.generator, device);  // (S, U)
      const Tensor z_elements = ops::reshape(ops::index_select(z, 1, units.ids), s_shape);
      perturbation = ops::mul(z_elements, ops::narrow(ops::sub(rows.x, rows.p.baselines[0]), 0, r, 1));
    }
    const Tensor perturbed = ops::contiguous(ops::sub(repeat_row(rows.x, r, s_count), perturbation));
    const Tensor scores = detail::score_perturbations(
        rows.p.model, rows.p.output, {rows.p.classes[static_cast<size_t>(r)]}, s_count, o.perturbations_per_eval,
        [&](int64_t start, int64_t end) { return std::vector<Tensor>{ops::narrow(perturbed, 0, start, end - start)}; });
    const double fx = row_score(rows, r);
    const std::vector<double> f_perturbed = to_vector<double>(ops::to_device(ops::to_dtype(scores, DType::f64), Device::cpu()));
    // sum_e I_e attr_e for each sample (I / (x - x') when the attribution carries the inputs).
    Tensor scaled = ops::to_dtype(perturbation, DType::f64);
    if (o.multiply_by_inputs) {
      const Tensor d = ops::to_dtype(ops::narrow(ops::sub(rows.x, rows.p.baselines[0]), 0, r, 1), DType::f64);
      scaled = ops::div(scaled, ops::where(ops::eq(d, ops::scalar_like(0.0, d)), ops::scalar_like(1.0, d), d));
    }
    const Tensor dots = ops::sum(ops::reshape(ops::mul(scaled, ops::narrow(rows.attr, 0, r, 1)), {s_count, -1}), {1});
    const std::vector<double> a_dot = to_vector<double>(ops::to_device(dots, Device::cpu()));
    double aa = 0, ab = 0, bb = 0, sq = 0;
    for (int64_t s = 0; s < s_count; ++s) {
      const double da = a_dot[static_cast<size_t>(s)], db = fx - f_perturbed[static_cast<size_t>(s)];
      aa += da * da;
      ab += da * db;
      bb += db * db;
      sq += (da - db) * (da - db);
    }
    if (o.normalize) {
      const double beta = ab / (aa != 0.0 ? aa : 1.0);  // Captum's safe_div
      sq = beta * beta * aa - 2.0 * beta * ab + bb;
    }
    result.push_back(sq / static_cast<double>(s_count));
  }
  return from_values(result, {r_count}, DType::f64);
}

Tensor sensitivity_max(const Query& query, const Method& method, const SensitivityOptions& o) {
  LOUPE_CHECK(o.n_samples >= 1, "sensitivity_max: n_samples must be >= 1, got ", o.n_samples);
  LOUPE_CHECK(o.radius >= 0.0, "sensitivity_max: the radius must be >= 0, got ", o.radius);
  const detail::Prepared p = detail::prepare(query, "sensitivity_max");
  LOUPE_CHECK(p.inputs.size() == 1, "sensitivity_max: expected one model input, got ", p.inputs.size());
  const Tensor& x = p.inputs[0];
  const int64_t r_count = x.size(0), s_count = o.n_samples;
  const bool no_target = std::all_of(p.classes.begin(), p.classes.end(), [](int64_t c) { return c < 0; });

  // The explained rows as a query of their own (one class per row), and the same repeated.
  Query base{p.model, {x}, no_target ? Target::none() : Target::per_row(p.classes), p.output, {Baseline(p.baselines[0])}};
  std::vector<int64_t> rep_rows, rep_classes;
  for (int64_t r = 0; r < r_count; ++r) {
    for (int64_t s = 0; s < s_count; ++s) {
      rep_rows.push_back(r);
      rep_classes.push_back(p.classes[static_cast<size_t>(r)]);
    }
  }
  const Tensor index = detail::row_index(rep_rows, x.device());
  const Tensor x_rep = ops::index_select(x, 0, index);
  Tensor noise;
  if (o.noise.defined()) {
    LOUPE_CHECK(o.noise.shape() == x_rep.shape(), "sensitivity_max: fixed noise must have shape ",
                shape_str(x_rep.shape()), " (rows x samples, ...), got ", shape_str(o.noise.shape()));
    noise = ops::to_device(ops::to_dtype(o.noise, x.dtype()), x.device());
  } else {
    noise = uniform(x_rep.shape(), -o.radius, o.radius, x.dtype(), o.generator, x.device());
  }
  Query perturbed{p.model, {ops::contiguous(ops::add(x_rep, noise))},
                  no_target ? Target::none() : Target::per_row(rep_classes), p.output,
                  {Baseline(ops::index_select(p.baselines[0], 0, index))}};

  const Tensor a0 = ops::to_dtype(method(base).attributions.at(0), DType::f64);       // (R, ...)
  const Tensor a1 = ops::to_dtype(method(perturbed).attributions.at(0), DType::f64);  // (R S, ...)
  LOUPE_CHECK(a0.size(0) == r_count && a1.size(0) == r_count * s_count,
              "sensitivity_max: the method returned ", a0.size(0), " and ", a1.size(0), " rows for ", r_count,
              " and ", r_count * s_count, " query rows");
  const Tensor diff = ops::reshape(ops::sub(a1, ops::index_select(a0, 0, index)), {r_count, s_count, -1});
  const Tensor diff_norm = ops::sqrt(ops::sum(ops::square(diff), {2}));                     // (R, S)
  Tensor base_norm = ops::sqrt(ops::sum(ops::square(ops::reshape(a0, {r_count, -1})), {1}));  // (R)
  base_norm = ops::where(ops::eq(base_norm, ops::scalar_like(0.0, base_norm)), ops::scalar_like(1.0, base_norm), base_norm);
  const Tensor ratio = ops::div(diff_norm, ops::unsqueeze(base_norm, 1));
  return ops::to_device(ops::amax(ratio, {1}), Device::cpu());
}

Tensor faithfulness_correlation(const Query& query, const Attribution& a, const CorrelationOptions& o) {
  LOUPE_CHECK(o.n_samples >= 2, "faithfulness_correlation: n_samples must be >= 2, got ", o.n_samples);
  LOUPE_CHECK(o.subset_fraction > 0.0 && o.subset_fraction <= 1.0,
              "faithfulness_correlation: subset_fraction must lie in (0, 1], got ", o.subset_fraction);
  const Rows rows = prepare_rows(query, a, "faithfulness_correlation");
  const Device device = rows.x.device();
  const Units units = make_units(rows.row_shape, o.feature_mask, device, "faithfulness_correlation");
  const int64_t r_count = rows.x.size(0), s_count = o.n_samples;
  const int64_t subset = std::max<int64_t>(1, std::llround(o.subset_fraction * static_cast<double>(units.count)));
  Shape s_shape = rows.x.shape();
  s_shape[0] = s_count;
  std::vector<double> result;
  for (int64_t r = 0; r < r_count; ++r) {
    const std::vector<double> unit_attr = unit_attribution(ops::select(rows.attr, 0, r), units);
    // Subsets: the first `subset` units of a random permutation, one per sample.
    std::vector<double> removed(static_cast<size_t>(s_count * units.count), 0.0), attr_sums;
    for (int64_t s = 0; s < s_count; ++s) {
      const std::vector<int64_t> order = to_vector<int64_t>(permutation(units.count, o.generator));
      double total = 0.0;
      for (int64_t i = 0; i < subset; ++i) {
        const int64_t u = order[static_cast<size_t>(i)];
        removed[static_cast<size_t>(s * units.count + u)] = 1.0;
        total += unit_attr[static_cast<size_t>(u)];
      }
      attr_sums.push_back(total);
    }
    const Tensor z = ops::to_device(from_values(removed, {s_count, units.count}, DType::f32), device);
    const Tensor keep = ops::reshape(ops::eq(ops::index_select(z, 1, units.ids), ops::scalar_like(0.0, z)), s_shape);
    const Tensor xr = ops::narrow(rows.x, 0, r, 1), br = ops::narrow(rows.p.baselines[0], 0, r, 1);
    const Tensor scores = detail::score_perturbations(
        rows.p.model, rows.p.output, {rows.p.classes[static_cast<size_t>(r)]}, s_count, o.perturbations_per_eval,
        [&](int64_t start, int64_t end) {
          return std::vector<Tensor>{detail::blend(xr, br, ops::narrow(keep, 0, start, end - start))};
        });
    const double fx = row_score(rows, r);
    std::vector<double> drops = to_vector<double>(ops::to_device(ops::to_dtype(scores, DType::f64), Device::cpu()));
    for (double& d : drops) d = fx - d;
    result.push_back(pearson(attr_sums, drops));
  }
  return from_values(result, {r_count}, DType::f64);
}

RegionShares region_mass(const Tensor& attribution, const RegionOptions& o) {
  LOUPE_CHECK(attribution.defined() && (attribution.dim() == 3 || attribution.dim() == 4),
              "region_mass: expected an attribution (R, C, H, W) or (R, H, W), got ",
              attribution.defined() ? shape_str(attribution.shape()) : std::string("nothing"));
  LOUPE_CHECK(o.border_fraction >= 0.0 && o.border_fraction < 0.5, "region_mass: border_fraction must lie in [0, 0.5), got ",
              o.border_fraction);
  LOUPE_CHECK(0.0 <= o.top && o.top < o.bottom && o.bottom <= 1.0 && 0.0 <= o.left && o.left < o.right && o.right <= 1.0,
              "region_mass: the centre box must satisfy 0 <= top < bottom <= 1 and 0 <= left < right <= 1");
  Tensor mass = ops::abs(ops::to_dtype(attribution, DType::f64));
  if (mass.dim() == 4) mass = ops::sum(mass, {1});  // (R, H, W)
  const int64_t h = mass.size(1), w = mass.size(2);
  const int64_t bh = std::llround(o.border_fraction * static_cast<double>(h));
  const int64_t bw = std::llround(o.border_fraction * static_cast<double>(w));
  const int64_t y0 = std::llround(o.top * static_cast<double>(h)), y1 = std::llround(o.bottom * static_cast<double>(h));
  const int64_t x0 = std::llround(o.left * static_cast<double>(w)), x1 = std::llround(o.right * static_cast<double>(w));
  std::vector<double> border(static_cast<size_t>(h * w), 0.0), centre(static_cast<size_t>(h * w), 0.0);
  double border_count = 0, centre_count = 0;
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const bool is_border = y < bh || y >= h - bh || x < bw || x >= w - bw;
      const bool is_centre = y >= y0 && y < y1 && x >= x0 && x < x1;
      border[static_cast<size_t>(y * w + x)] = is_border ? 1.0 : 0.0;
      centre[static_cast<size_t>(y * w + x)] = is_centre ? 1.0 : 0.0;
      border_count += is_border;
      centre_count += is_centre;
    }
  }
  const Tensor border_mask = ops::to_device(from_values(border, {h, w}, DType::f64), mass.device());
  const Tensor centre_mask = ops::to_device(from_values(centre, {h, w}, DType::f64), mass.device());
  const Tensor total = ops::sum(mass, {1, 2});
  RegionShares shares;
  shares.border = ops::to_device(ops::div(ops::sum(ops::mul(mass, border_mask), {1, 2}), total), Device::cpu());
  shares.centre = ops::to_device(ops::div(ops::sum(ops::mul(mass, centre_mask), {1, 2}), total), Device::cpu());
  shares.border_area = border_count / static_cast<double>(h * w);
  shares.centre_area = centre_count / static_cast<double>(h * w);
  return shares;
}

}  // namespace loupe::explain::evaluate
