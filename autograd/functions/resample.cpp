// Differentiable 2-d interpolation. See resample.hpp.
#include "autograd/functions/resample.hpp"

#include "autograd/record.hpp"

namespace loupe {

namespace {

using autograd::Node;
using autograd::OpKind;

// Interpolation is linear in x, so backward is the transposed resampling (the same taps and
// weights, scattered instead of gathered).
Tensor record_interpolate(const Tensor& out, const Tensor& x, InterpolateMode mode, bool align_corners,
                          std::array<double, 2> scales) {
  return autograd::record(
      out, OpKind::interpolate, "interpolate", {x},
      [](const Node& n, const Tensor& g) -> std::vector<Tensor> {
        const auto mode = n.attrs[0] != 0.0 ? InterpolateMode::bilinear : InterpolateMode::nearest;
        return {ops::interpolate_backward(g, n.inputs()[0].shape, mode, n.attrs[1] != 0.0, {n.attrs[2], n.attrs[3]})};
      },
      {}, {mode == InterpolateMode::bilinear ? 1.0 : 0.0, align_corners ? 1.0 : 0.0, scales[0], scales[1]});
}

}  // namespace

Tensor interpolate(const Tensor& x, std::array<int64_t, 2> size, InterpolateMode mode, bool align_corners) {
  Tensor out = ops::interpolate(x, size, mode, align_corners);
  if (!autograd::should_record({x})) return out;
  return record_interpolate(out, x, mode, align_corners, {0.0, 0.0});
}

Tensor interpolate(const Tensor& x, double scale_h, double scale_w, InterpolateMode mode, bool align_corners) {
  Tensor out = ops::interpolate(x, scale_h, scale_w, mode, align_corners);
  if (!autograd::should_record({x})) return out;
  return record_interpolate(out, x, mode, align_corners, {scale_h, scale_w});
}

}  // namespace loupe
