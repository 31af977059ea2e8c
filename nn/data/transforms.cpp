// Image transforms. See transforms.hpp for the conventions.
// Every transform reads a contiguous f32 copy of its input ((C, H, W), row-major) and writes a new
// f32 tensor, so an input of another floating dtype comes out as f32.
#include "nn/data/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"

namespace loupe::nn {

namespace {

// The image as contiguous f32 (C, H, W), after checking its shape.
Tensor checked_image(const Tensor& image, const char* op) {
  LOUPE_CHECK(image.defined(), op, ": the image is undefined");
  LOUPE_CHECK(image.dim() == 3, op, ": expected a (C, H, W) image, got shape ", shape_str(image.shape()));
  LOUPE_CHECK(is_floating(image.dtype()), op, ": expected a floating image, got ", dtype_name(image.dtype()));
  return ops::contiguous(ops::to_dtype(image, DType::f32));
}

// Per output index, the first input index and the weights of the inputs it reads.
struct FilterTaps {
  std::vector<int64_t> first;
  std::vector<std::vector<float>> weights;
};

// Triangle-filter taps for resampling a line of `in` samples to `out` samples (Pillow's
// ImagingResample with the bilinear filter). The output sample i sits at centre (i + 0.5) * scale
// in input coordinates; input sample j at j + 0.5. Without antialias (or when upscaling) the
// triangle has half-width 1 and this is plain bilinear interpolation with half-pixel centres
// (F.interpolate(mode='bilinear', align_corners=False)); with antialias a downscale widens it to
// `scale`, so every input sample contributes.
FilterTaps triangle_taps(int64_t in, int64_t out, bool antialias) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filter_scale = antialias ? std::max(scale, 1.0) : 1.0;
  const double support = filter_scale;  // the bilinear triangle has support 1 at scale 1
  FilterTaps taps;
  taps.first.resize(static_cast<size_t>(out));
  taps.weights.resize(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) {
    const double centre = (static_cast<double>(i) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(std::floor(centre - support + 0.5)), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(std::floor(centre + support + 0.5)), in);
    std::vector<double> w;
    double total = 0.0;
    for (int64_t j = lo; j < hi; ++j) {
      const double x = std::abs((static_cast<double>(j) + 0.5 - centre) / filter_scale);
      const double v = x < 1.0 ? 1.0 - x : 0.0;
      w.push_back(v);
      total += v;
    }
    taps.first[static_cast<size_t>(i)] = lo;
    auto& out_w = taps.weights[static_cast<size_t>(i)];
    for (double v : w) out_w.push_back(static_cast<float>(total > 0.0 ? v / total : 0.0));
  }
  return taps;
}

// Bilinear sample of one (H, W) plane at (y, x) in pixel indices; zero outside the image.
float sample_zero_fill(const float* plane, int64_t height, int64_t width, double y, double x) {
  const double fy = std::floor(y), fx = std::floor(x);
  const int64_t y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
  const double dy = y - fy, dx = x - fx;
  double acc = 0.0;
  for (int64_t a = 0; a < 2; ++a) {
    const int64_t yy = y0 + a;
    if (yy < 0 || yy >= height) continue;
    const double wy = a == 0 ? 1.0 - dy : dy;
    for (int64_t b = 0; b < 2; ++b) {
      const int64_t xx = x0 + b;
      if (xx < 0 || xx >= width) continue;
      const double wx = b == 0 ? 1.0 - dx : dx;
      acc += wy * wx * plane[yy * width + xx];
    }
  }
  return static_cast<float>(acc);
}

}  // namespace

Tensor to_grey(const Tensor& image) {
  const Tensor x = checked_image(image, "to_grey");
  const int64_t c = x.size(0), plane = x.size(1) * x.size(2);
  LOUPE_CHECK(c == 1 || c == 3, "to_grey: expected 1 or 3 channels, got shape ", shape_str(image.shape()));
  if (c == 1) return x;
  Tensor out = Tensor::empty({1, x.size(1), x.size(2)}, DType::f32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t p = 0; p < plane; ++p) {
    dst[p] = static_cast<float>(0.299 * src[p] + 0.587 * src[plane + p] + 0.114 * src[2 * plane + p]);
  }
  return out;
}

Tensor to_rgb(const Tensor& image) {
  const Tensor x = checked_image(image, "to_rgb");
  const int64_t c = x.size(0), plane = x.size(1) * x.size(2);
  LOUPE_CHECK(c == 1 || c == 3, "to_rgb: expected 1 or 3 channels, got shape ", shape_str(image.shape()));
  if (c == 3) return x;
  Tensor out = Tensor::empty({3, x.size(1), x.size(2)}, DType::f32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t k = 0; k < 3; ++k) std::copy(src, src + plane, dst + k * plane);
  return out;
}

Tensor resize(const Tensor& image, int64_t height, int64_t width, bool antialias) {
  const Tensor x = checked_image(image, "resize");
  LOUPE_CHECK(height > 0 && width > 0, "resize: expected a positive size, got ", height, " x ", width);
  const int64_t channels = x.size(0), in_h = x.size(1), in_w = x.size(2);
  LOUPE_CHECK(in_h > 0 && in_w > 0, "resize: cannot resize an empty image of shape ", shape_str(image.shape()));
  if (in_h == height && in_w == width) return x;
  // Separable: rows first (W -> width), then columns (H -> height), as Pillow does.
  const FilterTaps across = triangle_taps(in_w, width, antialias);
  const FilterTaps down = triangle_taps(in_h, height, antialias);
  std::vector<float> rows(static_cast<size_t>(channels * in_h * width));
  const float* src = x.data<float>();
  for (int64_t r = 0; r < channels * in_h; ++r) {
    const float* line = src + r * in_w;
    for (int64_t j = 0; j < width; ++j) {
      const auto& w = across.weights[static_cast<size_t>(j)];
      const int64_t first = across.first[static_cast<size_t>(j)];
      float acc = 0.0f;
      for (size_t k = 0; k < w.size(); ++k) acc = std::fma(w[k], line[first + static_cast<int64_t>(k)], acc);
      rows[static_cast<size_t>(r * width + j)] = acc;
    }
  }
  Tensor out = Tensor::empty({channels, height, width}, DType::f32);
  float* dst = out.data<float>();
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = rows.data() + c * in_h * width;
    for (int64_t i = 0; i < height; ++i) {
      const auto& w = down.weights[static_cast<size_t>(i)];
      const int64_t first = down.first[static_cast<size_t>(i)];
      float* out_row = dst + (c * height + i) * width;
      std::fill(out_row, out_row + width, 0.0f);
      for (size_t k = 0; k < w.size(); ++k) {
        const float* in_row = plane + (first + static_cast<int64_t>(k)) * width;
        for (int64_t j = 0; j < width; ++j) out_row[j] = std::fma(w[k], in_row[j], out_row[j]);
      }
    }
  }
  return out;
}

Tensor resize_pad(const Tensor& image, int64_t size, bool antialias) {
  const Tensor x = checked_image(image, "resize_pad");
  LOUPE_CHECK(size > 0, "resize_pad: expected a positive size, got ", size);
  const int64_t channels = x.size(0), in_h = x.size(1), in_w = x.size(2);
  LOUPE_CHECK(in_h > 0 && in_w > 0, "resize_pad: cannot resize an empty image of shape ", shape_str(image.shape()));
  const double scale = static_cast<double>(size) / static_cast<double>(std::max(in_h, in_w));
  const int64_t h = std::clamp<int64_t>(std::llround(static_cast<double>(in_h) * scale), 1, size);
  const int64_t w = std::clamp<int64_t>(std::llround(static_cast<double>(in_w) * scale), 1, size);
  const Tensor scaled = resize(x, h, w, antialias);
  const int64_t top = (size - h) / 2, left = (size - w) / 2;
  Tensor out = zeros({channels, size, size}, DType::f32);
  const float* src = scaled.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < h; ++i) {
      const float* in_row = src + (c * h + i) * w;
      std::copy(in_row, in_row + w, dst + (c * size + top + i) * size + left);
    }
  }
  return out;
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width) {
  const Tensor x = checked_image(image, "crop");
  const int64_t channels = x.size(0), in_h = x.size(1), in_w = x.size(2);
  LOUPE_CHECK(height >= 0 && width >= 0 && top >= 0 && left >= 0 && top + height <= in_h && left + width <= in_w,
              "crop: the window at (", top, ", ", left, ") of ", height, " x ", width,
              " does not fit in an image of shape ", shape_str(image.shape()));
  Tensor out = Tensor::empty({channels, height, width}, DType::f32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < height; ++i) {
      const float* in_row = src + (c * in_h + top + i) * in_w + left;
      std::copy(in_row, in_row + width, dst + (c * height + i) * width);
    }
  }
  return out;
}

Tensor center_crop(const Tensor& image, int64_t height, int64_t width) {
  LOUPE_CHECK(image.defined() && image.dim() == 3, "center_crop: expected a (C, H, W) image, got shape ",
              image.defined() ? shape_str(image.shape()) : std::string("undefined"));
  LOUPE_CHECK(height <= image.size(1) && width <= image.size(2), "center_crop: cannot take ", height, " x ", width,
              " from an image of shape ", shape_str(image.shape()));
  return crop(image, (image.size(1) - height) / 2, (image.size(2) - width) / 2, height, width);
}

Tensor hflip(const Tensor& image) {
  const Tensor x = checked_image(image, "hflip");
  const int64_t rows = x.size(0) * x.size(1), width = x.size(2);
  Tensor out = Tensor::empty(x.shape(), DType::f32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t r = 0; r < rows; ++r) std::reverse_copy(src + r * width, src + (r + 1) * width, dst + r * width);
  return out;
}

Tensor rotate(const Tensor& image, double degrees) {
  const Tensor x = checked_image(image, "rotate");
  LOUPE_CHECK(std::isfinite(degrees), "rotate: the angle must be finite, got ", degrees);
  const int64_t channels = x.size(0), height = x.size(1), width = x.size(2);
  const double theta = degrees * std::numbers::pi / 180.0;
  const double cos_t = std::cos(theta), sin_t = std::sin(theta);
  const double cy = (static_cast<double>(height) - 1.0) / 2.0, cx = (static_cast<double>(width) - 1.0) / 2.0;
  Tensor out = Tensor::empty(x.shape(), DType::f32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  // Output pixel (y, x) reads the input at the point the rotation carries onto it: with y pointing
  // down, a counter-clockwise turn by theta maps (dx, dy) to (dx cos + dy sin, -dx sin + dy cos),
  // so the inverse is (dx cos - dy sin, dx sin + dy cos).
  for (int64_t i = 0; i < height; ++i) {
    for (int64_t j = 0; j < width; ++j) {
      const double dx = static_cast<double>(j) - cx, dy = static_cast<double>(i) - cy;
      const double sx = cx + dx * cos_t - dy * sin_t;
      const double sy = cy + dx * sin_t + dy * cos_t;
      for (int64_t c = 0; c < channels; ++c) {
        dst[(c * height + i) * width + j] = sample_zero_fill(src + c * height * width, height, width, sy, sx);
      }
    }
  }
  return out;
}

Tensor normalize(const Tensor& image, const std::vector<double>& mean, const std::vector<double>& std) {
  const Tensor x = checked_image(image, "normalize");
  const int64_t channels = x.size(0), plane = x.size(1) * x.size(2);
  auto per_channel = [&](const std::vector<double>& v, const char* what) {
    LOUPE_CHECK(v.size() == 1 || static_cast<int64_t>(v.size()) == channels, "normalize: ", what, " has ", v.size(),
                " values for an image of shape ", shape_str(image.shape()), " (expected 1 or ", channels, ")");
  };
  per_channel(mean, "mean");
  per_channel(std, "std");
  Tensor out = Tensor::empty(x.shape(), DType::f32);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t c = 0; c < channels; ++c) {
    const double m = mean[mean.size() == 1 ? 0 : static_cast<size_t>(c)];
    const double s = std[std.size() == 1 ? 0 : static_cast<size_t>(c)];
    LOUPE_CHECK(s != 0.0 && std::isfinite(s), "normalize: std of channel ", c, " is ", s);
    for (int64_t p = 0; p < plane; ++p) dst[c * plane + p] = static_cast<float>((src[c * plane + p] - m) / s);
  }
  return out;
}

double random_unit(Generator& generator) {
  const auto words = philox4x32(generator.seed(), generator.reserve(1));
  // 53 random bits -> [0, 1) with the spacing of a double.
  const uint64_t bits = (static_cast<uint64_t>(words[0]) << 21) ^ (words[1] >> 11);
  return static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) * 0x1.0p-53;
}

Tensor random_crop(const Tensor& image, int64_t height, int64_t width, Generator& generator) {
  LOUPE_CHECK(image.defined() && image.dim() == 3, "random_crop: expected a (C, H, W) image, got shape ",
              image.defined() ? shape_str(image.shape()) : std::string("undefined"));
  LOUPE_CHECK(height >= 0 && width >= 0 && height <= image.size(1) && width <= image.size(2),
              "random_crop: cannot take ", height, " x ", width, " from an image of shape ", shape_str(image.shape()));
  auto pick = [&](int64_t choices) {
    return std::min(choices - 1, static_cast<int64_t>(random_unit(generator) * static_cast<double>(choices)));
  };
  const int64_t top = pick(image.size(1) - height + 1);
  const int64_t left = pick(image.size(2) - width + 1);
  return crop(image, top, left, height, width);
}

Tensor random_hflip(const Tensor& image, Generator& generator, double p) {
  LOUPE_CHECK(p >= 0.0 && p <= 1.0, "random_hflip: expected a probability in [0, 1], got ", p);
  return random_unit(generator) < p ? hflip(image) : checked_image(image, "random_hflip");
}

Tensor random_rotation(const Tensor& image, double max_degrees, Generator& generator) {
  LOUPE_CHECK(max_degrees >= 0.0 && std::isfinite(max_degrees),
              "random_rotation: expected a finite max_degrees >= 0, got ", max_degrees);
  const double angle = (2.0 * random_unit(generator) - 1.0) * max_degrees;
  return rotate(image, angle);
}

Tensor Compose::operator()(const Tensor& image, Generator& generator) const {
  Tensor x = image;
  for (const Transform& step : steps_) x = step(x, generator);
  return x;
}

namespace transforms {

Transform grey() {
  return [](const Tensor& x, Generator&) { return nn::to_grey(x); };
}
Transform rgb() {
  return [](const Tensor& x, Generator&) { return nn::to_rgb(x); };
}
Transform resize(int64_t height, int64_t width, bool antialias) {
  return [=](const Tensor& x, Generator&) { return nn::resize(x, height, width, antialias); };
}
Transform resize_pad(int64_t size, bool antialias) {
  return [=](const Tensor& x, Generator&) { return nn::resize_pad(x, size, antialias); };
}
Transform center_crop(int64_t height, int64_t width) {
  return [=](const Tensor& x, Generator&) { return nn::center_crop(x, height, width); };
}
Transform random_crop(int64_t height, int64_t width) {
  return [=](const Tensor& x, Generator& g) { return nn::random_crop(x, height, width, g); };
}
Transform random_hflip(double p) {
  return [=](const Tensor& x, Generator& g) { return nn::random_hflip(x, g, p); };
}
Transform random_rotation(double max_degrees) {
  return [=](const Tensor& x, Generator& g) { return nn::random_rotation(x, max_degrees, g); };
}
Transform normalize(std::vector<double> mean, std::vector<double> std) {
  return [mean = std::move(mean), std = std::move(std)](const Tensor& x, Generator&) {
    return nn::normalize(x, mean, std);
  };
}

}  // namespace transforms

}  // namespace loupe::nn
