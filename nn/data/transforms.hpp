// Image transforms on (C, H, W) float tensors (C = 1 grey or 3 RGB), and a pipeline to chain them.
//
// Deterministic transforms: to_grey, to_rgb, resize, resize_pad, center_crop, crop, hflip, rotate,
// normalize. Random ones (random_crop, random_hflip, random_rotation) draw from the Generator they
// are given, so that a run is reproducible: the data loader hands every sample its own generator,
// derived from (seed, epoch, sample index), which makes the result independent of the number of
// loader threads and of the order in which they finish.
//
// Conventions (torchvision's where it has the transform):
//   resize      bilinear with half-pixel centres; with antialias (the default, as torchvision's
//               Resize) a downscale widens the triangle filter to the scale factor, as Pillow does
//   rotate      counter-clockwise by `degrees` as seen on screen, about the image centre
//               ((W - 1) / 2, (H - 1) / 2) in pixel indices, bilinear, zero outside the image
//   center_crop top = floor((H - h) / 2), left = floor((W - w) / 2)
// Tests: tests/nn/data/test_transforms.cpp
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace loupe::nn {

// Grey (1, H, W) from RGB (3, H, W) by the ITU-R 601-2 luma 0.299 R + 0.587 G + 0.114 B;
// a grey image is returned as it is.
Tensor to_grey(const Tensor& image);
// RGB (3, H, W) from grey (1, H, W) by repeating the channel; an RGB image is returned as it is.
Tensor to_rgb(const Tensor& image);

// (C, H, W) -> (C, height, width).
Tensor resize(const Tensor& image, int64_t height, int64_t width, bool antialias = true);
// Scales the longer side to `size` keeping the aspect ratio (the shorter side becomes
// round(short * size / long), at least 1), then pads with zeros to (C, size, size), the image
// centred (an odd leftover row or column goes to the bottom or right).
Tensor resize_pad(const Tensor& image, int64_t size, bool antialias = true);

// The (C, height, width) window whose top-left corner is (top, left); it must lie in the image.
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width);
Tensor center_crop(const Tensor& image, int64_t height, int64_t width);
// Mirrors left <-> right.
Tensor hflip(const Tensor& image);
Tensor rotate(const Tensor& image, double degrees);
// (x - mean[c]) / std[c] per channel; mean and std hold C values, or one value for all channels.
Tensor normalize(const Tensor& image, const std::vector<double>& mean, const std::vector<double>& std);

// A window of (height, width) at a uniformly random position.
Tensor random_crop(const Tensor& image, int64_t height, int64_t width, Generator& generator);
// hflip with probability p.
Tensor random_hflip(const Tensor& image, Generator& generator, double p = 0.5);
// rotate by an angle uniform in [-max_degrees, max_degrees].
Tensor random_rotation(const Tensor& image, double max_degrees, Generator& generator);

// One uniform double in [0, 1) from the generator (reserves one Philox block).
double random_unit(Generator& generator);

// A step of a pipeline: image -> image, drawing any randomness from the generator.
using Transform = std::function<Tensor(const Tensor& image, Generator& generator)>;

// Applies its steps in order, all drawing from the same generator.
class Compose {
 public:
  Compose() = default;
  Compose(std::vector<Transform> steps) : steps_(std::move(steps)) {}  // NOLINT: implicit on purpose

  Compose& then(Transform step) {
    steps_.push_back(std::move(step));
    return *this;
  }
  Tensor operator()(const Tensor& image, Generator& generator) const;
  bool empty() const { return steps_.empty(); }
  size_t size() const { return steps_.size(); }

 private:
  std::vector<Transform> steps_;
};

// The steps above as pipeline elements, e.g. for the chest X-ray study:
//   Compose({transforms::grey(), transforms::resize_pad(512), transforms::normalize({0.5}, {0.25}),
//            transforms::rgb()})
namespace transforms {
Transform grey();
Transform rgb();
Transform resize(int64_t height, int64_t width, bool antialias = true);
Transform resize_pad(int64_t size, bool antialias = true);
Transform center_crop(int64_t height, int64_t width);
Transform random_crop(int64_t height, int64_t width);
Transform random_hflip(double p = 0.5);
Transform random_rotation(double max_degrees);
Transform normalize(std::vector<double> mean, std::vector<double> std);
}  // namespace transforms

}  // namespace loupe::nn
