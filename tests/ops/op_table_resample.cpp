// Op table entries: 2-d interpolation (nearest and bilinear, by size or by scale factor, with and
// without align_corners), plus hand-computed values, the scale-factor coordinate rule, the
// recorded node and the error cases.
// The reference is a plain f64 loop over output pixels that maps each to its source coordinate
// with PyTorch's rules (resample.hpp) and reads the taps directly.
#include <cmath>
#include <limits>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

struct Resize {
  std::array<int64_t, 2> size{0, 0};       // used when scale is {0, 0}
  std::array<double, 2> scale{0.0, 0.0};  // scale factors
  InterpolateMode mode = InterpolateMode::nearest;
  bool align_corners = false;
};

// The source coordinate of output position o along an axis of in -> out.
double ref_source(const Resize& r, int axis, int64_t o, int64_t in, int64_t out) {
  const double given = r.scale[static_cast<size_t>(axis)];
  const double scale = given > 0 ? 1.0 / given : static_cast<double>(in) / static_cast<double>(out);
  if (r.mode == InterpolateMode::nearest) {
    if (out == in) return static_cast<double>(o);
    if (out == 2 * in) return static_cast<double>(o / 2);
    return std::min(std::floor(static_cast<double>(o) * scale), static_cast<double>(in - 1));
  }
  if (r.align_corners) {
    return out > 1 ? static_cast<double>(o) * static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
  }
  return std::max((static_cast<double>(o) + 0.5) * scale - 0.5, 0.0);
}

Tensor ref_interpolate(const Tensor& x, const Resize& r) {
  const Shape& s = x.shape();
  const int64_t in_h = s[2], in_w = s[3];
  int64_t out_h = r.size[0], out_w = r.size[1];
  if (r.scale[0] > 0) {
    out_h = static_cast<int64_t>(std::floor(static_cast<double>(in_h) * r.scale[0]));
    out_w = static_cast<int64_t>(std::floor(static_cast<double>(in_w) * r.scale[1]));
  }
  const auto v = values(x);
  auto at = [&](int64_t plane, int64_t h, int64_t w) { return v[static_cast<size_t>((plane * in_h + h) * in_w + w)]; };
  std::vector<double> out;
  for (int64_t plane = 0; plane < s[0] * s[1]; ++plane) {
    for (int64_t oh = 0; oh < out_h; ++oh) {
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const double sh = ref_source(r, 0, oh, in_h, out_h), sw = ref_source(r, 1, ow, in_w, out_w);
        if (r.mode == InterpolateMode::nearest) {
          out.push_back(at(plane, static_cast<int64_t>(sh), static_cast<int64_t>(sw)));
          continue;
        }
        const auto h0 = static_cast<int64_t>(std::floor(sh)), w0 = static_cast<int64_t>(std::floor(sw));
        const int64_t h1 = std::min(h0 + 1, in_h - 1), w1 = std::min(w0 + 1, in_w - 1);
        const double lh = sh - static_cast<double>(h0), lw = sw - static_cast<double>(w0);
        out.push_back((1 - lh) * (1 - lw) * at(plane, h0, w0) + (1 - lh) * lw * at(plane, h0, w1) +
                      lh * (1 - lw) * at(plane, h1, w0) + lh * lw * at(plane, h1, w1));
      }
    }
  }
  return ref::make(out, {s[0], s[1], out_h, out_w});
}

Tensor run_interpolate(const Tensor& x, const Resize& r) {
  if (r.scale[0] > 0) return loupe::interpolate(x, r.scale[0], r.scale[1], r.mode, r.align_corners);
  return loupe::interpolate(x, r.size, r.mode, r.align_corners);
}

OpCase interpolate_case(const std::string& name, const Shape& shape, const Resize& r, uint64_t seed) {
  OpCase c;
  c.name = std::string("interpolate/") + ops::interpolate_mode_name(r.mode) + " " + name;
  c.make_inputs = [shape, seed](DType dtype) { return Inputs{random_tensor(shape, dtype, -1, 1, seed)}; };
  c.op = [r](const Inputs& in) { return run_interpolate(in[0], r); };
  c.reference = [r](const Inputs& in) { return ref_interpolate(in[0], r); };
  c.make_empty_inputs = [shape](DType dtype) { return Inputs{zeros({0, shape[1], shape[2], shape[3]}, dtype)}; };
  return c;
}

Resize by_size(std::array<int64_t, 2> size, InterpolateMode mode, bool align_corners = false) {
  return Resize{size, {0.0, 0.0}, mode, align_corners};
}

Resize by_scale(std::array<double, 2> scale, InterpolateMode mode, bool align_corners = false) {
  return Resize{{0, 0}, scale, mode, align_corners};
}

constexpr auto kNearest = InterpolateMode::nearest;
constexpr auto kBilinear = InterpolateMode::bilinear;

const bool registered = register_ops({
    interpolate_case("3x4 to 5x7", {2, 2, 3, 4}, by_size({5, 7}, kNearest), 71),
    interpolate_case("3x4 to 6x8 (exact 2x)", {1, 3, 3, 4}, by_size({6, 8}, kNearest), 72),
    interpolate_case("7x6 to 3x4", {2, 2, 7, 6}, by_size({3, 4}, kNearest), 73),
    interpolate_case("scale 1.6 x 1.7", {1, 2, 4, 5}, by_scale({1.6, 1.7}, kNearest), 74),
    interpolate_case("scale 1.2 x 0.6", {1, 2, 3, 4}, by_scale({1.2, 0.6}, kNearest), 75),
    interpolate_case("3x4 to 5x7", {2, 2, 3, 4}, by_size({5, 7}, kBilinear), 76),
    interpolate_case("7x6 to 3x4", {1, 2, 7, 6}, by_size({3, 4}, kBilinear), 77),
    interpolate_case("align_corners 3x4 to 5x7", {2, 2, 3, 4}, by_size({5, 7}, kBilinear, true), 78),
    interpolate_case("align_corners 7x6 to 3x4", {1, 2, 7, 6}, by_size({3, 4}, kBilinear, true), 79),
    interpolate_case("align_corners 4x5 to 1x3", {1, 2, 4, 5}, by_size({1, 3}, kBilinear, true), 80),
    interpolate_case("1x2 to 3x4", {2, 2, 1, 2}, by_size({3, 4}, kBilinear), 81),
    interpolate_case("scale 1.7 x 0.6", {1, 2, 4, 5}, by_scale({1.7, 0.6}, kBilinear), 82),
    interpolate_case("align_corners scale 2 x 1.5", {1, 2, 4, 5}, by_scale({2.0, 1.5}, kBilinear, true), 83),
});

}  // namespace

TEST_CASE("interpolate: hand-computed values on a 2x2 image") {
  const Tensor x = from_values(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}, DType::f32);
  CHECK(values(ops::interpolate(x, {4, 4}, kNearest)) ==
        std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // 2 -> 3 uses floor(o * 2 / 3): sources 0, 0, 1.
  CHECK(values(ops::interpolate(x, {3, 3}, kNearest)) == std::vector<double>{1, 1, 2, 1, 1, 2, 3, 3, 4});
  check_close(ops::interpolate(x, {4, 4}, kBilinear),
              from_values(std::vector<double>{1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25,
                                              3.75, 4},
                          {1, 1, 4, 4}),
              1e-6, 0, "bilinear 2x2 -> 4x4");
  check_close(ops::interpolate(x, {3, 3}, kBilinear, /*align_corners=*/true),
              from_values(std::vector<double>{1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4}, {1, 1, 3, 3}), 1e-6, 0,
              "bilinear align_corners 2x2 -> 3x3");
}

TEST_CASE("interpolate: a scale factor sets the output size and the coordinate scale") {
  CHECK(ops::interpolate(zeros({1, 1, 5, 7}), 0.5, 1.3, kNearest).shape() == Shape{1, 1, 2, 9});
  // 4 -> 6 by scale 1.6 maps o to floor(o / 1.6); by size 6 it maps o to floor(o * 4 / 6).
  const Tensor x = ops::reshape(arange(4, DType::f64), {1, 1, 1, 4});
  CHECK(values(ops::interpolate(x, 1.0, 1.6, kNearest)) == std::vector<double>{0, 0, 1, 1, 2, 3});
  CHECK(values(ops::interpolate(x, {1, 6}, kNearest)) == std::vector<double>{0, 0, 1, 2, 2, 3});
  // A scale that keeps the size copies (PyTorch's out == in shortcut), whatever the factor.
  CHECK(values(ops::interpolate(x, 1.0, 1.2, kNearest)) == values(x));
}

TEST_CASE("interpolate: nearest copies values exactly (inf and NaN stay themselves)") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = from_values(std::vector<double>{inf, 1, nan, -2}, {1, 1, 2, 2}, DType::f64);
  const auto v = values(ops::interpolate(x, {3, 5}, kNearest));
  CHECK(v[0] == inf);
  CHECK(v[4] == 1);
  CHECK(std::isnan(v[10]));
  CHECK(v[14] == -2);
}

TEST_CASE("interpolate: the node and its backward") {
  Tensor x = random_tensor({1, 2, 3, 3}, DType::f64);
  x.set_requires_grad();
  const Tensor y = loupe::interpolate(x, {6, 6}, kNearest);
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->kind() == autograd::OpKind::interpolate);
  backward(sum(y));
  // Exact 2x nearest: every input pixel feeds a 2x2 block.
  CHECK(values(x.grad()) == std::vector<double>(18, 4.0));
  zero_grad({x});
  // Bilinear weights of each output sum to 1, so the gradient of sum() sums to the output count.
  backward(sum(loupe::interpolate(x, 1.7, 2.3, kBilinear)));
  CHECK(sum(x.grad()).item() == doctest::Approx(2.0 * 5 * 6));
  CHECK(loupe::interpolate(x, 2.0, 2.0, kBilinear, true).grad_fn()->attrs == std::vector<double>{1, 1, 2, 2});
}

TEST_CASE("interpolate: results do not depend on the thread count") {
  const Tensor x = random_tensor({4, 8, 20, 30}, DType::f32, -1, 1, 92);
  auto run = [&] {
    std::vector<Tensor> out;
    for (InterpolateMode mode : {kNearest, kBilinear}) {
      const Tensor y = ops::interpolate(x, {37, 45}, mode);
      out.push_back(y);
      out.push_back(ops::interpolate_backward(y, x.shape(), mode, false));
    }
    return out;
  };
  const int threads = num_threads();
  set_num_threads(1);
  const auto serial = run();
  set_num_threads(std::max(threads, 2));
  const auto parallel = run();
  set_num_threads(threads);
  for (size_t i = 0; i < serial.size(); ++i) check_close(parallel[i], serial[i], 0, 0, "result " + std::to_string(i));
}

TEST_CASE("interpolate: bad arguments raise loupe::Error naming the op") {
  const Tensor x = random_tensor({1, 2, 4, 4});
  CHECK_THROWS_WITH_AS(ops::interpolate(random_tensor({2, 4, 4}), {8, 8}, kNearest),
                       doctest::Contains("interpolate: expected a 4-d (N, C, H, W) input, got shape (2, 4, 4)"), Error);
  CHECK_THROWS_AS(ops::interpolate(zeros({1, 1, 2, 4, 4}), {8, 8}, kBilinear), Error);
  CHECK_THROWS_AS(loupe::interpolate(random_tensor({2, 4, 4}), 2.0, 2.0, kNearest), Error);
  CHECK_THROWS_AS(ops::interpolate(zeros({1, 2, 0, 4}), {8, 8}, kNearest), Error);
  CHECK_THROWS_AS(ops::interpolate(zeros({1, 0, 4, 4}), {8, 8}, kNearest), Error);
  CHECK_THROWS_WITH_AS(ops::interpolate(x, {0, 8}, kBilinear), doctest::Contains("interpolate: output size"), Error);
  CHECK_THROWS_AS(ops::interpolate(x, {-2, 8}, kBilinear), Error);
  CHECK_THROWS_AS(ops::interpolate(x, 0.1, 1.0, kBilinear), Error);  // floor(4 * 0.1) = 0 rows
  CHECK_THROWS_AS(ops::interpolate(x, -2.0, 2.0, kBilinear), Error);
  CHECK_THROWS_AS(ops::interpolate(x, std::nan(""), 2.0, kBilinear), Error);
  CHECK_THROWS_WITH_AS(ops::interpolate(x, {8, 8}, kNearest, /*align_corners=*/true),
                       doctest::Contains("align_corners"), Error);
  CHECK_THROWS_AS(ops::interpolate(ops::to_dtype(x, DType::i64), {8, 8}, kNearest), Error);
  CHECK_THROWS_AS(ops::interpolate_backward(zeros({1, 3, 8, 8}), x.shape(), kNearest, false), Error);
}

}  // namespace loupe::test
