// Occlusion: sliding windows, chunked scoring, coverage-averaged gaps. See occlusion.hpp.
#include "explain/occlusion.hpp"

#include <algorithm>

#include "explain/perturbation.hpp"

namespace loupe::explain {

namespace {

// The windows of one input and where they sit in the index over the windows of all inputs.
struct InputWindows {
  Shape row_shape;              // the input's non-batch dims as given (may be empty: an (N) input)
  Shape dims;                   // (D_1, ..., D_k) the windows slide over; {1} for an (N) input
  std::vector<int64_t> window;  // per dim
  std::vector<int64_t> stride;  // per dim
  std::vector<int64_t> counts;  // positions per dim: ceil((D - w) / s) + 1
  int64_t first = 0;            // its windows are [first, first + count) of all windows
  int64_t count = 1;            // prod of counts
  int64_t numel = 1;            // elements of one row
  // inside[d]: (count, D_d) bool on the input's device, true where local window l covers index j
  // along dim d. Window l has position (l_1, ..., l_k) in row-major order (last dim fastest) and
  // covers [l_d * s_d, min(l_d * s_d + w_d, D_d)) along dim d.
  std::vector<Tensor> inside;
};

std::vector<int64_t> strides_of(const OcclusionOptions& options, size_t i, size_t n_inputs, size_t rank) {
  const auto& all = options.strides;
  LOUPE_CHECK(all.size() <= 1 || all.size() == n_inputs, "occlusion: ", all.size(), " stride entries for ", n_inputs,
              " inputs (give none, one for every input, or one per input)");
  if (all.empty()) return std::vector<int64_t>(rank, 1);
  const std::vector<int64_t>& s = all.size() == 1 ? all[0] : all[i];
  LOUPE_CHECK(s.size() == 1 || s.size() == rank, "occlusion: the stride of input ", i, " has ", s.size(),
              " numbers; give one for every dim or one per non-batch dim (", rank, ")");
  return s.size() == 1 ? std::vector<int64_t>(rank, s[0]) : s;
}

// Checks the window and stride of input i against its shape and lays out its windows.
InputWindows layout(const Tensor& x, const Shape& window, std::vector<int64_t> stride, size_t i, int64_t first) {
  InputWindows in;
  in.row_shape = Shape(x.shape().begin() + 1, x.shape().end());
  LOUPE_CHECK(window.size() == in.row_shape.size(), "occlusion: the window of input ", i, " is ", shape_str(window),
              " (rank ", window.size(), ") but the input ", shape_str(x.shape()), " has ", in.row_shape.size(),
              " non-batch dims");
  in.dims = in.row_shape;
  in.window.assign(window.begin(), window.end());
  in.stride = std::move(stride);
  if (in.dims.empty()) {  // an (N) input: one scalar per row, one window over it
    in.dims = {1};
    in.window = {1};
    in.stride = {1};
  }
  in.first = first;
  for (size_t d = 0; d < in.dims.size(); ++d) {
    const int64_t size = in.dims[d], w = in.window[d], s = in.stride[d];
    LOUPE_CHECK(w >= 1 && w <= size, "occlusion: window ", shape_str(window), " of input ", i,
                " does not fit its non-batch dims ", shape_str(in.row_shape), " (dim ", d + 1, ": window ", w,
                ", size ", size, ")");
    LOUPE_CHECK(s >= 1, "occlusion: stride ", s, " of input ", i, " along dim ", d + 1, " must be >= 1");
    // As Captum: a stride larger than the window would skip elements, unless the window covers
    // the dim whole (one position, the stride never applies).
    LOUPE_CHECK(s <= w || w == size, "occlusion: stride ", s, " of input ", i, " along dim ", d + 1,
                " is larger than the window (", w, ")");
    in.counts.push_back((size - w + s - 1) / s + 1);
    in.count *= in.counts.back();
    in.numel *= size;
  }
  // Per dim, the ranges of every window (host vectors of `count`, uploaded once), then the
  // (count, D_d) table of which indices each window covers, compared on the device.
  const size_t k = in.dims.size();
  for (size_t d = 0; d < k; ++d) {
    int64_t inner = 1;  // windows per step of dim d in the row-major window index
    for (size_t e = d + 1; e < k; ++e) inner *= in.counts[e];
    std::vector<int64_t> lo(static_cast<size_t>(in.count)), hi(lo.size());
    for (int64_t l = 0; l < in.count; ++l) {
      const int64_t start = (l / inner % in.counts[d]) * in.stride[d];
      lo[static_cast<size_t>(l)] = start;
      hi[static_cast<size_t>(l)] = std::min(start + in.window[d], in.dims[d]);
    }
    const Tensor lo_t = ops::to_device(from_values(lo, {in.count, 1}), x.device());
    const Tensor hi_t = ops::to_device(from_values(hi, {in.count, 1}), x.device());
    const Tensor index = ops::to_device(ops::reshape(arange(in.dims[d]), {1, in.dims[d]}), x.device());
    in.inside.push_back(ops::logical_and(ops::ge(index, lo_t), ops::lt(index, hi_t)));
  }
  return in;
}

// (P, D_1, ..., D_k) bool, true where local window l0 + p covers the element: the AND of one
// (P, 1, .., D_d, .., 1) table slice per dim, by broadcasting.
Tensor window_masks(const InputWindows& in, int64_t l0, int64_t l1) {
  const auto k = static_cast<int64_t>(in.dims.size());
  Tensor mask;
  for (int64_t d = 0; d < k; ++d) {
    Shape shape(static_cast<size_t>(k + 1), 1);
    shape[0] = l1 - l0;
    shape[static_cast<size_t>(d + 1)] = in.dims[static_cast<size_t>(d)];
    const Tensor m = ops::reshape(ops::narrow(in.inside[static_cast<size_t>(d)], 0, l0, l1 - l0), shape);
    mask = d == 0 ? m : ops::logical_and(mask, m);
  }
  return mask;
}

Shape with_rows(int64_t rows, const Shape& row_shape) {
  Shape shape{rows};
  shape.insert(shape.end(), row_shape.begin(), row_shape.end());
  return shape;
}

// The copies of one row for the windows [start, end) of all inputs: input i's row with its own
// windows of that range occluded (baseline values), unchanged for the other inputs' windows.
std::vector<Tensor> occluded_copies(const std::vector<InputWindows>& layouts, const std::vector<Tensor>& x_rows,
                                    const std::vector<Tensor>& baseline_rows, int64_t start, int64_t end) {
  std::vector<Tensor> copies;
  const int64_t rows = end - start;
  for (size_t i = 0; i < layouts.size(); ++i) {
    const InputWindows& in = layouts[i];
    const Shape shape = with_rows(rows, in.row_shape);
    const int64_t a = std::max(start, in.first), b = std::min(end, in.first + in.count);
    if (a >= b) {  // none of this input's windows: the row itself, P times (a view)
      copies.push_back(ops::expand(x_rows[i], shape));
      continue;
    }
    Tensor mask = window_masks(in, a - in.first, b - in.first);  // (b - a, D_1, ..., D_k)
    if (a > start || b < end) {  // rows of the other inputs' windows: nothing occluded here
      const Device device = x_rows[i].device();
      std::vector<Tensor> parts;
      if (a > start) parts.push_back(zeros(with_rows(a - start, in.dims), DType::b8, device));
      parts.push_back(mask);
      if (b < end) parts.push_back(zeros(with_rows(end - b, in.dims), DType::b8, device));
      mask = ops::cat(parts, 0);
    }
    // blend keeps its first argument where the mask is true: the baseline inside the window.
    const Tensor x = ops::reshape(x_rows[i], with_rows(1, in.dims));
    const Tensor baseline = ops::reshape(baseline_rows[i], with_rows(1, in.dims));
    copies.push_back(ops::reshape(detail::blend(baseline, x, mask), shape));
  }
  return copies;
}

}  // namespace

Attribution occlusion(const Query& query, const OcclusionOptions& options) {
  const detail::Prepared p = detail::prepare(query, "occlusion");
  const size_t n_inputs = p.inputs.size();
  LOUPE_CHECK(options.windows.size() == n_inputs, "occlusion: ", options.windows.size(), " window shapes for ",
              n_inputs, " inputs (give one per input)");
  LOUPE_CHECK(options.perturbations_per_eval >= 0,
              "occlusion: perturbations_per_eval must be >= 0 (0: as many as fit), got ",
              options.perturbations_per_eval);
  std::vector<InputWindows> layouts;
  int64_t total = 0;  // windows of all inputs
  for (size_t i = 0; i < n_inputs; ++i) {
    const auto rank = static_cast<size_t>(std::max<int64_t>(p.inputs[i].dim() - 1, 0));
    layouts.push_back(layout(p.inputs[i], options.windows[i], strides_of(options, i, n_inputs, rank), i, total));
    total += layouts.back().count;
  }

  // The gaps f_t(x) - f_t(x occluded by window w) of every result row: (T, W) per input row, from
  // the same forward passes for all of the row's targets.
  const Device device = p.inputs[0].device();
  std::vector<Tensor> gaps;
  std::vector<int64_t> order;  // result row of each row of cat(gaps)
  for (const detail::RowGroup& group : detail::group_rows(p)) {
    const int64_t r = group.results[0];
    const std::vector<Tensor> x_rows = detail::narrow_rows(p.inputs, r, r + 1);
    const std::vector<Tensor> baseline_rows = detail::narrow_rows(p.baselines, r, r + 1);
    const Tensor clean = detail::score_row(p.model, p.output, group.classes, x_rows);  // (1, T)
    const Tensor occluded = detail::score_perturbations(
        p.model, p.output, group.classes, total, options.perturbations_per_eval,
        [&](int64_t start, int64_t end) { return occluded_copies(layouts, x_rows, baseline_rows, start, end); });
    gaps.push_back(ops::transpose(ops::sub(clean, occluded), 0, 1));  // (T, W)
    order.insert(order.end(), group.results.begin(), group.results.end());
  }
  const auto n_results = static_cast<int64_t>(order.size());
  std::vector<int64_t> position(order.size());
  for (size_t k = 0; k < order.size(); ++k) position[static_cast<size_t>(order[k])] = static_cast<int64_t>(k);
  const Tensor all_gaps = ops::index_select(ops::cat(gaps, 0), 0, detail::row_index(position, device));  // (R, W)

  // Per input: [gaps; ones] (R + 1, count) times the window masks (count, numel), in chunks of
  // windows: rows 0..R-1 sum each element's gaps, row R counts the windows covering it.
  std::vector<Tensor> attributions;
  for (size_t i = 0; i < n_inputs; ++i) {
    const InputWindows& in = layouts[i];
    const Tensor lhs =
        ops::cat({ops::narrow(all_gaps, 1, in.first, in.count), ones({1, in.count}, DType::f64, device)}, 0);
    const int64_t chunk = std::max<int64_t>(1, (int64_t{32} << 20) / (in.numel * 8));  // 32 MiB of float64 masks
    Tensor sums = zeros({n_results + 1, in.numel}, DType::f64, device);
    for (int64_t l0 = 0; l0 < in.count; l0 += chunk) {
      const int64_t l1 = std::min(in.count, l0 + chunk);
      const Tensor masks = ops::to_dtype(ops::reshape(window_masks(in, l0, l1), {l1 - l0, in.numel}), DType::f64);
      ops::add_(sums, ops::matmul(ops::narrow(lhs, 1, l0, l1 - l0), masks));
    }
    const Tensor mean = ops::div(ops::narrow(sums, 0, 0, n_results), ops::narrow(sums, 0, n_results, 1));
    attributions.push_back(ops::to_dtype(ops::reshape(mean, with_rows(n_results, in.row_shape)), p.inputs[i].dtype()));
  }
  return detail::make_result(p, std::move(attributions));
}

}  // namespace loupe::explain
