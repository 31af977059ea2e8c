// Attribution heatmaps. See heatmap.hpp.
#include "explain/heatmap.hpp"

#include <algorithm>
#include <cmath>

#include "nn/data/image.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace loupe::explain {

namespace {

// An sRGB colour from its "#rrggbb" components.
constexpr std::array<double, 3> rgb(int r, int g, int b) { return {r / 255.0, g / 255.0, b / 255.0}; }

void check_floating(const Tensor& t, const char* what) {
  LOUPE_CHECK(t.defined(), what, ": undefined tensor");
  LOUPE_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, what, ": expected a float32 or float64 tensor, got ",
              dtype_name(t.dtype()));
}

}  // namespace

Tensor reduce_channels(const Tensor& attribution, MapReduction reduction) {
  check_floating(attribution, "reduce_channels");
  LOUPE_CHECK(attribution.dim() == 2 || attribution.dim() == 3,
              "reduce_channels: expected a (C, H, W) or (H, W) attribution, got ", shape_str(attribution.shape()));
  const Tensor a = attribution.dim() == 2 ? ops::unsqueeze(attribution, 0) : attribution;
  const Tensor summed = reduction == MapReduction::sum ? ops::sum(a, {0}) : ops::sum(ops::abs(a), {0});
  return ops::contiguous(ops::to_dtype(summed, DType::f32));
}

double percentile(std::vector<double> values, double q) {
  LOUPE_CHECK(!values.empty(), "percentile: no values");
  LOUPE_CHECK(q >= 0.0 && q <= 100.0, "percentile: q must lie in [0, 100], got ", q);
  // numpy's "linear" method: position q/100 * (n - 1) between the sorted values.
  const double position = q / 100.0 * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(below), values.end());
  const double low = values[below];
  double high = low;
  if (above != below) high = *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(above), values.end());
  return low + (position - static_cast<double>(below)) * (high - low);
}

Tensor clip_and_scale(const Tensor& map, double q, bool signed_map) {
  check_floating(map, "clip_and_scale");
  LOUPE_CHECK(map.dim() == 2, "clip_and_scale: expected an (H, W) map, got ", shape_str(map.shape()));
  std::vector<double> v = to_vector<double>(map);
  if (v.empty()) return zeros(map.shape());
  std::vector<double> magnitudes(v.size());
  std::transform(v.begin(), v.end(), magnitudes.begin(), [](double x) { return std::abs(x); });
  double scale = percentile(std::move(magnitudes), q);
  if (!(scale > 0.0)) {
    // The percentile is 0 (a sparse map): fall back to the largest magnitude so the few non-zero
    // pixels still show; an all-zero map stays zero.
    scale = 0.0;
    for (double x : v) scale = std::max(scale, std::abs(x));
  }
  for (double& x : v) {
    if (!std::isfinite(x)) x = 0.0;
    else if (scale > 0.0) x /= scale;
    x = signed_map ? std::clamp(x, -1.0, 1.0) : std::min(std::abs(x), 1.0);
  }
  return from_values(v, map.shape(), DType::f32);
}

std::array<double, 3> ColourMap::operator()(double value) const {
  LOUPE_CHECK(points.size() >= 2 && hi > lo, "colour map '", name, "': needs two points and hi > lo");
  if (!std::isfinite(value)) value = lo;
  const double t = std::clamp((value - lo) / (hi - lo), 0.0, 1.0) * static_cast<double>(points.size() - 1);
  const size_t i = std::min(static_cast<size_t>(t), points.size() - 2);
  const double f = t - static_cast<double>(i);
  std::array<double, 3> out{};
  for (size_t c = 0; c < 3; ++c) out[c] = (1.0 - f) * points[i][c] + f * points[i + 1][c];
  return out;
}

ColourMap diverging_colour_map() {
  // ColorBrewer RdBu, 11 classes, blue end first; the centre is pure white so that exactly zero
  // attribution shows as no colour at all.
  return {"blue-white-red",
          {rgb(0x05, 0x30, 0x61), rgb(0x21, 0x66, 0xac), rgb(0x43, 0x93, 0xc3), rgb(0x92, 0xc5, 0xde),
           rgb(0xd1, 0xe5, 0xf0), rgb(0xff, 0xff, 0xff), rgb(0xfd, 0xdb, 0xc7), rgb(0xf4, 0xa5, 0x82),
           rgb(0xd6, 0x60, 0x4d), rgb(0xb2, 0x18, 0x2b), rgb(0x67, 0x00, 0x1f)},
          -1.0,
          1.0};
}

ColourMap sequential_colour_map() {
  // matplotlib's inferno sampled at 0, 0.1, ..., 1: perceptually uniform lightness, readable in
  // grey print and by colour-blind readers.
  return {"inferno",
          {rgb(0x00, 0x00, 0x04), rgb(0x16, 0x0b, 0x39), rgb(0x42, 0x0a, 0x68), rgb(0x6a, 0x17, 0x6e),
           rgb(0x93, 0x26, 0x67), rgb(0xbc, 0x37, 0x54), rgb(0xdd, 0x51, 0x3a), rgb(0xf3, 0x78, 0x19),
           rgb(0xfc, 0xa5, 0x0a), rgb(0xf6, 0xd7, 0x46), rgb(0xfc, 0xff, 0xa4)},
          0.0,
          1.0};
}

Tensor colourise(const Tensor& map, const ColourMap& colours) {
  check_floating(map, "colourise");
  LOUPE_CHECK(map.dim() == 2, "colourise: expected an (H, W) map, got ", shape_str(map.shape()));
  const int64_t h = map.size(0), w = map.size(1), plane = h * w;
  const std::vector<double> v = to_vector<double>(map);
  std::vector<float> out(static_cast<size_t>(3 * plane));
  for (int64_t p = 0; p < plane; ++p) {
    const auto c = colours(v[static_cast<size_t>(p)]);
    for (size_t k = 0; k < 3; ++k) out[k * static_cast<size_t>(plane) + static_cast<size_t>(p)] = static_cast<float>(c[k]);
  }
  return from_values(out, {3, h, w});
}

Tensor blend(const Tensor& input, const Tensor& colours, double alpha, const Tensor& weights) {
  check_floating(input, "blend");
  check_floating(colours, "blend");
  LOUPE_CHECK(alpha >= 0.0 && alpha <= 1.0, "blend: alpha must lie in [0, 1], got ", alpha);
  LOUPE_CHECK(input.dim() == 3 && (input.size(0) == 1 || input.size(0) == 3),
              "blend: expected a (1, H, W) or (3, H, W) input, got ", shape_str(input.shape()));
  LOUPE_CHECK(colours.dim() == 3 && colours.size(0) == 3 && colours.size(1) == input.size(1) &&
                  colours.size(2) == input.size(2),
              "blend: colours ", shape_str(colours.shape()), " do not match the input ", shape_str(input.shape()));
  const int64_t h = input.size(1), w = input.size(2), plane = h * w;
  std::vector<double> weight(static_cast<size_t>(plane), 1.0);
  if (weights.defined()) {
    check_floating(weights, "blend");
    LOUPE_CHECK(weights.dim() == 2 && weights.size(0) == h && weights.size(1) == w, "blend: weights ",
                shape_str(weights.shape()), " do not match the input ", shape_str(input.shape()));
    weight = to_vector<double>(weights);
  }
  const std::vector<double> in = to_vector<double>(input);
  const std::vector<double> col = to_vector<double>(colours);
  std::vector<float> out(static_cast<size_t>(3 * plane));
  for (int64_t p = 0; p < plane; ++p) {
    // The input in grey (ITU-R 601-2 luma, as nn::to_grey), so the colours are the only hue.
    double grey = in[static_cast<size_t>(p)];
    if (input.size(0) == 3)
      grey = 0.299 * in[static_cast<size_t>(p)] + 0.587 * in[static_cast<size_t>(plane + p)] +
             0.114 * in[static_cast<size_t>(2 * plane + p)];
    grey = std::isfinite(grey) ? std::clamp(grey, 0.0, 1.0) : 0.0;
    const double v = weight[static_cast<size_t>(p)];
    const double a = alpha * (std::isfinite(v) ? std::clamp(v, 0.0, 1.0) : 0.0);
    for (int64_t k = 0; k < 3; ++k) {
      const size_t i = static_cast<size_t>(k * plane + p);
      out[i] = static_cast<float>((1.0 - a) * grey + a * col[i]);
    }
  }
  return from_values(out, {3, h, w});
}

Heatmap make_heatmap(const Tensor& attribution, const Tensor& input, const HeatmapOptions& options) {
  const bool signed_map = options.reduction == MapReduction::sum;
  Heatmap heatmap;
  heatmap.map = clip_and_scale(reduce_channels(attribution, options.reduction), options.clip_percentile, signed_map);
  heatmap.colours = colourise(heatmap.map, signed_map ? diverging_colour_map() : sequential_colour_map());
  if (input.defined()) heatmap.overlay = blend(input, heatmap.colours, options.alpha, ops::abs(heatmap.map));
  return heatmap;
}

void save_heatmap(const Heatmap& heatmap, const std::string& map_path, const std::string& overlay_path) {
  if (!map_path.empty()) nn::save_png(map_path, heatmap.colours);
  if (!overlay_path.empty()) {
    LOUPE_CHECK(heatmap.overlay.defined(), "save_heatmap: no overlay to write to '", overlay_path, "'");
    nn::save_png(overlay_path, heatmap.overlay);
  }
}

}  // namespace loupe::explain
