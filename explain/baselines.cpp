// Baselines for image models: see baselines.hpp.
#include "explain/baselines.hpp"

#include <algorithm>
#include <cmath>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace loupe::explain {

BaselineKind parse_baseline(const std::string& text) {
  if (text == "black") return BaselineKind::black;
  if (text == "zeros" || text == "zero") return BaselineKind::zeros;
  if (text == "blur") return BaselineKind::blur;
  if (text == "uniform") return BaselineKind::uniform;
  if (text == "mean") return BaselineKind::mean;
  throw Error("baseline: expected black, zeros, blur, uniform or mean, got '" + text + "'");
}

const char* baseline_name(BaselineKind kind) {
  switch (kind) {
    case BaselineKind::black: return "black";
    case BaselineKind::zeros: return "zeros";
    case BaselineKind::blur: return "blur";
    case BaselineKind::uniform: return "uniform";
    case BaselineKind::mean: return "mean";
  }
  return "?";
}

std::string baseline_description(BaselineKind kind) {
  switch (kind) {
    case BaselineKind::black: return "the black picture (pixel value 0, normalised like the input)";
    case BaselineKind::zeros: return "zero after normalisation (the picture equal to the normalisation mean: grey)";
    case BaselineKind::blur: return "the input picture blurred with a Gaussian";
    case BaselineKind::uniform: return "uniform noise in the pixel range [0, 1] (seeded), normalised like the input";
    case BaselineKind::mean: return "the per-channel data mean in pixel space, normalised like the input";
  }
  return "?";
}

namespace {

// One value per channel as (C, 1, 1) of x's dtype and device.
Tensor per_channel(const std::vector<double>& values, int64_t channels, const Tensor& like, const char* what) {
  LOUPE_CHECK(values.size() == 1 || static_cast<int64_t>(values.size()) == channels, "baseline: ", what, " has ",
              values.size(), " values for ", channels, " channels");
  std::vector<double> out(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) out[static_cast<size_t>(c)] = values[values.size() == 1 ? 0 : static_cast<size_t>(c)];
  return ops::to_device(from_values(out, {channels, 1, 1}, like.dtype()), like.device());
}

// (n, n) blur matrix: row i holds the Gaussian weights of pixel i's neighbours, renormalised.
Tensor blur_matrix(int64_t n, double sigma, DType dtype, Device device) {
  const int64_t radius = static_cast<int64_t>(std::ceil(3.0 * sigma));
  std::vector<double> m(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double total = 0.0;
    for (int64_t j = std::max<int64_t>(0, i - radius); j <= std::min(n - 1, i + radius); ++j) {
      const double d = static_cast<double>(j - i);
      const double w = std::exp(-d * d / (2.0 * sigma * sigma));
      m[static_cast<size_t>(i * n + j)] = w;
      total += w;
    }
    for (int64_t j = 0; j < n; ++j) m[static_cast<size_t>(i * n + j)] /= total;
  }
  return ops::to_device(from_values(m, {n, n}, dtype), device);
}

}  // namespace

Tensor gaussian_blur(const Tensor& x, double sigma) {
  LOUPE_CHECK(x.defined() && x.dim() >= 2, "gaussian_blur: expected (..., H, W), got ",
              x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  LOUPE_CHECK(is_floating(x.dtype()), "gaussian_blur: expected floats, got ", dtype_name(x.dtype()));
  LOUPE_CHECK(std::isfinite(sigma) && sigma > 0.0, "gaussian_blur: sigma must be positive, got ", sigma);
  const int64_t h = x.size(-2), w = x.size(-1);
  const Tensor rows = blur_matrix(h, sigma, x.dtype(), x.device());  // (H, H)
  const Tensor cols = blur_matrix(w, sigma, x.dtype(), x.device());  // (W, W)
  // out = B_h x B_w^T on every plane (the blur matrices are symmetric only away from the border).
  return ops::contiguous(ops::matmul(ops::matmul(rows, x), ops::transpose(cols, 0, 1)));
}

Tensor make_baseline(BaselineKind kind, const Tensor& input, const BaselineOptions& o) {
  LOUPE_CHECK(input.defined() && input.dim() == 4, "baseline ", baseline_name(kind),
              ": expected normalised images (N, C, H, W), got ",
              input.defined() ? shape_str(input.shape()) : std::string("nothing"));
  LOUPE_CHECK(is_floating(input.dtype()), "baseline ", baseline_name(kind), ": expected float images, got ",
              dtype_name(input.dtype()));
  const int64_t c = input.size(1);
  const Tensor mean = per_channel(o.mean, c, input, "the normalisation mean");
  const Tensor std = per_channel(o.std, c, input, "the normalisation std");
  auto normalise = [&](const Tensor& picture) { return ops::div(ops::sub(picture, mean), std); };
  // A constant picture, normalised in float64 on the host exactly as nn::normalize does
  // ((p - mean) / std, then rounded once), so the black baseline equals a normalised black pixel.
  auto constant_picture = [&](const std::vector<double>& pixel) {
    std::vector<double> values(static_cast<size_t>(c));
    for (int64_t i = 0; i < c; ++i) {
      const size_t k = static_cast<size_t>(i);
      const double p = pixel[pixel.size() == 1 ? 0 : k];
      values[k] = (p - o.mean[o.mean.size() == 1 ? 0 : k]) / o.std[o.std.size() == 1 ? 0 : k];
    }
    const Tensor per = ops::to_device(from_values(values, {c, 1, 1}, input.dtype()), input.device());
    return ops::contiguous(ops::expand(per, input.shape()));
  };
  switch (kind) {
    case BaselineKind::black: return constant_picture({0.0});
    case BaselineKind::zeros: return zeros(input.shape(), input.dtype(), input.device());
    case BaselineKind::blur: {
      const double sigma = o.blur_sigma > 0.0 ? o.blur_sigma : std::max(1.0, static_cast<double>(input.size(3)) / 16.0);
      return gaussian_blur(input, sigma);
    }
    case BaselineKind::uniform: {
      Generator generator(o.seed);
      return ops::contiguous(normalise(uniform(input.shape(), 0.0, 1.0, input.dtype(), &generator, input.device())));
    }
    case BaselineKind::mean: {
      const std::vector<double>& data = o.data_mean.empty() ? o.mean : o.data_mean;
      per_channel(data, c, input, "the data mean");  // checks the count
      return constant_picture(data);
    }
  }
  throw Error("baseline: unknown kind");
}

}  // namespace loupe::explain
