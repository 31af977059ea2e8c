// Baselines (reference inputs x') for image models, built in the normalised space the model sees.
//
// An image model takes x = (p - mean_c) / std_c, where p in [0, 1] is the picture. "Zero" in
// that space is the picture p = mean_c: a grey image for the usual normalisations, not "nothing".
// So the default for images is the black picture, and every kind below is described in pixel
// space, then normalised exactly as the model's input was:
//
//   black    p' = 0                          -> x'_c = (0 - mean_c) / std_c       (the default)
//   zeros    x' = 0 after normalisation       -> p'_c = mean_c (grey; the old default)
//   blur     p' = G_sigma * p (Gaussian blur of the input picture, per channel; borders
//            renormalised so a constant picture stays constant) -> x' = G_sigma * x, because
//            normalisation is affine per channel and the blur weights sum to 1
//   uniform  p' ~ U(0, 1) per element, seeded (Philox) -> x'_c = (p' - mean_c) / std_c
//   mean     p'_c = the per-channel data mean in pixel space (data_mean, e.g. measured on the
//            training images); when none is given, the normalisation's own mean, so x' = 0.
//            When the normalisation uses the data mean (Fashion-MNIST: 0.2860), mean == zeros.
//
// Shapes: input (N, C, H, W) normalised; the baseline comes back with the same shape, dtype
// and device. mean/std: one value, or one per channel.
// Tests: tests/explain/test_baselines.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace loupe::explain {

enum class BaselineKind { black, zeros, blur, uniform, mean };

// "black", "zeros" (also "zero"), "blur", "uniform", "mean"; raises naming the text otherwise.
BaselineKind parse_baseline(const std::string& text);
const char* baseline_name(BaselineKind kind);
// One sentence for reports: what the baseline is, in pixel space.
std::string baseline_description(BaselineKind kind);

struct BaselineOptions {
  std::vector<double> mean{0.0};  // the model's normalisation (nn::ModelInfo::mean / std)
  std::vector<double> std{1.0};
  double blur_sigma = 0.0;        // blur: in pixels; 0: image width / 16 (at least 1)
  std::vector<double> data_mean;  // mean: per-channel pixel mean of the data; empty: `mean`
  uint64_t seed = 0;              // uniform: Philox seed (the same numbers on CPU and GPU)
};

// The baseline of `kind` for a batch of normalised images (N, C, H, W).
Tensor make_baseline(BaselineKind kind, const Tensor& input, const BaselineOptions& options);

// Gaussian blur of every (H, W) plane of x (..., H, W) with standard deviation sigma pixels
// (kernel radius ceil(3 sigma)); near the border the weights inside the image are renormalised
// to sum 1. Two matrix products (rows, then columns) on x's device.
Tensor gaussian_blur(const Tensor& x, double sigma);

}  // namespace loupe::explain
