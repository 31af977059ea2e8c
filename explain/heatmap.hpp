// Attribution heatmaps: from an attribution tensor shaped like one input image (C, H, W) to
// pictures a person can read.
//
//   1. reduce:    (C, H, W) -> (H, W), the sum over channels (signed maps) or the sum of |a| over
//                 channels (absolute maps);
//   2. scale:     divide by the p-th percentile of |map| (p = 99 by default), then clip, so a few
//                 extreme pixels do not wash out the rest: signed maps to [-1, 1], absolute maps to
//                 [0, 1];
//   3. colour:    a diverging blue-white-red map for signed values (white = 0, blue negative, red
//                 positive), a sequential dark-to-bright map ("inferno"-like) for absolute values;
//   4. overlay:   the colours blended over the input shown in grey, each pixel's colour weighted by
//                 its scaled magnitude: w = alpha * |map|, out = (1 - w) * grey + w * colour, so
//                 pixels without attribution show the input unchanged.
//
// Colour maps are small tables of sRGB control points at equal spacing, interpolated linearly.
// The control points are the published ones: ColorBrewer's 11-class RdBu (with a pure white
// centre) and the 11 evenly spaced samples of matplotlib's inferno.
// Tests: tests/explain/test_heatmap.cpp
#pragma once

#include <array>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::explain {

// How the channels of an attribution become one value per pixel.
enum class MapReduction {
  sum,      // sum_c a[c]: signed (positive evidence red, negative blue)
  abs_sum,  // sum_c |a[c]|: magnitude only
};

// (C, H, W) or (H, W) -> (H, W) float32. Any floating dtype, any layout.
Tensor reduce_channels(const Tensor& attribution, MapReduction reduction);

// The q-th percentile (0 <= q <= 100) of the values, with numpy's default linear interpolation
// between the two nearest ranks. Raises on an empty list or q outside [0, 100].
double percentile(std::vector<double> values, double q);

// Scales a 2-d map by the q-th percentile of its absolute values and clips: to [-1, 1] when
// `signed_map`, else to [0, 1] (negative values, if any, count by their magnitude). A map that is
// all zeros stays zeros. Returns (H, W) float32.
Tensor clip_and_scale(const Tensor& map, double q, bool signed_map);

// A colour map: sRGB control points (components in [0, 1]) at equal spacing over [lo, hi].
struct ColourMap {
  std::string name;
  std::vector<std::array<double, 3>> points;
  double lo = 0.0;  // the value that gets points.front()
  double hi = 1.0;  // the value that gets points.back()

  // The colour of `value` (clamped to [lo, hi]), linear between neighbouring points.
  std::array<double, 3> operator()(double value) const;
};

ColourMap diverging_colour_map();   // blue-white-red over [-1, 1]; 0 is white
ColourMap sequential_colour_map();  // inferno-like, black-purple-orange-yellow over [0, 1]

// (H, W) -> (3, H, W) float32 RGB in [0, 1].
Tensor colourise(const Tensor& map, const ColourMap& colours);

// The colour image blended over the input shown in grey: out = (1 - w) * grey(input) + w * colours
// with w = alpha, or w = alpha * weights[pixel] when `weights` (H, W) is given (values clamped to
// [0, 1]). input: (1, H, W) or (3, H, W) in [0, 1] (clamped); colours: (3, H, W).
Tensor blend(const Tensor& input, const Tensor& colours, double alpha, const Tensor& weights = Tensor());

struct HeatmapOptions {
  MapReduction reduction = MapReduction::sum;  // sum: signed map, diverging colours; abs_sum: sequential
  double clip_percentile = 99.0;
  double alpha = 0.8;  // weight of the colours in the overlay where |map| = 1 (w = alpha * |map|)
};

struct Heatmap {
  Tensor map;      // (H, W) float32, scaled and clipped: [-1, 1] signed or [0, 1] absolute
  Tensor colours;  // (3, H, W) the map alone
  Tensor overlay;  // (3, H, W) the colours blended over the input, weighted by |map|
};

// All four steps. attribution: (C, H, W); input: the picture it explains, (1 or 3, H, W) in [0, 1]
// (an undefined input gives an undefined overlay).
Heatmap make_heatmap(const Tensor& attribution, const Tensor& input, const HeatmapOptions& options = {});

// Writes heatmap.colours to `map_path` and heatmap.overlay to `overlay_path` as PNG (atomically);
// an empty path skips that file.
void save_heatmap(const Heatmap& heatmap, const std::string& map_path, const std::string& overlay_path);

}  // namespace loupe::explain
