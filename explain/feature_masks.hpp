// Feature masks for images: the integer masks the perturbation methods (occlusion by feature,
// LIME, KernelSHAP, ...) take to treat groups of pixels as one feature.
//
// A feature mask is an (H, W) int64 tensor of group ids 0..M-1, every id used; unsqueeze(mask, 0)
// gives the (1, H, W) form that broadcasts over the channels of a (C, H, W) image, so all channels
// of a pixel belong to the same feature.
//
//   grid_feature_mask   a regular grid of rows x cols rectangles, ids row-major;
//   slic_feature_mask   SLIC superpixels (Achanta et al. 2012) that follow the image's edges;
//   parse_grid          the "--grid 8x8" option;
//   mask_boundaries / colour_segments / save_mask_png   pictures of a mask for reports.
//
// Everything here runs on the CPU in plain C++: a mask is made once per image and is small.
// Tests: tests/explain/test_feature_masks.cpp
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "tensor/tensor.hpp"

namespace loupe::explain {

// rows x cols rectangles over an (H, W) image; pixel (y, x) gets id r * cols + c for its band r
// of rows and band c of columns. Band i of rows covers [floor(i H / rows), floor((i + 1) H / rows)),
// so when H is not divisible by rows the bands differ by at most one pixel and the taller ones are
// spread evenly over the image (the same for columns). Needs 1 <= rows <= H and 1 <= cols <= W.
// Returns (H, W) int64 on the CPU.
Tensor grid_feature_mask(int64_t height, int64_t width, int64_t rows, int64_t cols);

// "RxC" (e.g. "8x8" or "4X6"), both positive integers.
struct GridSize {
  int64_t rows = 0;
  int64_t cols = 0;
};
// Raises loupe::Error naming the text on anything else ("8", "8x", "0x4", "axb", "8x8x8", ...).
GridSize parse_grid(const std::string& text);

struct SlicOptions {
  int64_t n_segments = 100;  // wanted number of superpixels (the result has about this many)
  // Weight of space against colour. The distance of pixel i from centre k is
  //   D^2 = (100 d_colour)^2 + (compactness * d_xy / S)^2,
  // with colours in [0, 1] scaled by 100 (the range of CIELAB lightness, so values like the SLIC
  // paper's m in [1, 40] mean what they mean there) and S = sqrt(H W / n_segments) the grid step.
  // Larger values give squarer superpixels, smaller ones follow colour more closely.
  double compactness = 10.0;
  int64_t iterations = 10;   // k-means rounds
  // Connected fragments smaller than this share of the expected superpixel size H W / n_segments
  // are merged into a neighbour (the SLIC paper's post-processing; 0.25 as its reference code).
  double min_size_factor = 0.25;
};

// SLIC superpixels of an image (C, H, W) (any C; grey images are (1, H, W)) with values in
// [0, 1], or (H, W). Steps:
//   1. centres on a regular grid of step S, each moved to the lowest-gradient pixel of its 3x3
//      neighbourhood (so no centre starts on an edge);
//   2. `iterations` rounds of k-means in (colour, y, x) space where each centre only looks at the
//      pixels within S of it (its 2S x 2S window), then moves to the mean of its pixels;
//   3. connectivity: every 4-connected fragment of a cluster becomes its own segment, and
//      fragments smaller than min_size_factor * H W / n_segments (and pixels no window reached)
//      are merged, smallest first, into the neighbouring segment they share the longest border
//      with (ties: the segment met first in raster order);
//   4. relabelling to 0..M-1 in the raster order of each segment's first pixel.
// Every segment is 4-connected. Deterministic (no randomness; the same image gives the same mask).
// Returns (H, W) int64 on the CPU. Raises on bad shapes, dtypes, NaN or options.
Tensor slic_feature_mask(const Tensor& image, const SlicOptions& options);
Tensor slic_feature_mask(const Tensor& image, int64_t n_segments = 100, double compactness = 10.0,
                         int64_t iterations = 10);

// The number of features M of a mask (its largest id + 1); raises unless it is an (H, W) or
// (1, H, W) int64 tensor with ids 0..M-1, each used at least once.
int64_t feature_count(const Tensor& mask);

// The image (1 or 3, H, W) in [0, 1] as RGB (3, H, W) with the mask's segment boundaries drawn in
// `colour`: a pixel is on a boundary when its right or lower neighbour has another id (one-pixel
// lines). mask: (H, W) or (1, H, W) int64.
Tensor mask_boundaries(const Tensor& image, const Tensor& mask, std::array<double, 3> colour = {1.0, 0.85, 0.0});

// Each segment in its own colour (hues spaced by the golden angle, so neighbouring ids differ),
// blended over the image in grey with weight alpha; alpha = 1 gives the colours alone. (3, H, W).
Tensor colour_segments(const Tensor& image, const Tensor& mask, double alpha = 0.45);

// Writes colour_segments with the boundaries drawn on top as a PNG (atomically).
void save_mask_png(const std::string& path, const Tensor& image, const Tensor& mask, double alpha = 0.45);

}  // namespace loupe::explain
