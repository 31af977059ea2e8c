// Image transforms against hand-computed results: channel conversions, resizing (with and without
// antialias, against F.interpolate's bilinear), aspect-preserving resize with padding, crops, flips,
// rotation, normalisation, and the reproducibility of the random ones.
#include <doctest/doctest.h>

#include <set>

#include "nn/data/transforms.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {
Tensor image(const std::vector<double>& v, const Shape& shape) { return from_values(v, shape, DType::f32); }
}  // namespace

TEST_CASE("to_grey and to_rgb") {
  Tensor rgb = image({1, 0, 0.5, 0, 1, 0.5, 0, 0, 0.5}, {3, 1, 3});
  // 0.299 R + 0.587 G + 0.114 B: pure red, pure green, grey 0.5.
  check_close(nn::to_grey(rgb), image({0.299, 0.587, 0.5}, {1, 1, 3}), 1e-6, 0, "to_grey");
  Tensor grey = image({0.25, 0.75}, {1, 1, 2});
  check_close(nn::to_rgb(grey), image({0.25, 0.75, 0.25, 0.75, 0.25, 0.75}, {3, 1, 2}), 0, 0, "to_rgb");
  check_close(nn::to_grey(grey), grey, 0, 0, "grey stays");
  check_close(nn::to_rgb(rgb), rgb, 0, 0, "rgb stays");
  CHECK_THROWS_WITH_AS(nn::to_grey(zeros({2, 3, 3})), doctest::Contains("to_grey"), Error);
  CHECK_THROWS_WITH_AS(nn::to_rgb(zeros({3, 3})), doctest::Contains("(3, 3)"), Error);
}

TEST_CASE("resize_pad: a 2x4 image padded to 4x4 keeps its rows and gains a zero row above and below") {
  Tensor x = image({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 4});
  // The longer side is already 4: scale 1, no resampling; (4 - 2) / 2 = 1 zero row on top.
  check_close(nn::resize_pad(x, 4), image({0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0}, {1, 4, 4}), 0, 0,
              "rows padded");
  // A 4x2 image gets a zero column on each side.
  Tensor tall = image({1, 2, 3, 4, 5, 6, 7, 8}, {1, 4, 2});
  check_close(nn::resize_pad(tall, 4), image({0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0, 0, 7, 8, 0}, {1, 4, 4}), 0, 0,
              "columns padded");
  // An odd leftover goes to the bottom: 1x4 into 4x4 -> top = (4 - 1) / 2 = 1.
  Tensor wide = image({1, 2, 3, 4}, {1, 1, 4});
  check_close(nn::resize_pad(wide, 4), image({0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 4, 4}), 0, 0,
              "odd padding");
}

TEST_CASE("resize_pad and resize: downscaling with antialias (Pillow's widened triangle filter)") {
  Tensor x = image({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 4});
  // 2x4 into 2x2: scale 1/2, the image becomes 1x2, then a zero row below (top = (2 - 1) / 2 = 0).
  // Columns (2 -> 1, scale 2): both rows weigh 1/2, giving 3 4 5 6. Rows (4 -> 2, scale 2): output
  // 0 is centred at 1.0 in input coordinates and reads inputs 0, 1, 2 at distances 0.5, 0.5, 1.5,
  // i.e. triangle weights 1 - d / 2 = 0.75, 0.75, 0.25 -> 3/7, 3/7, 1/7 after normalising (input
  // -1 lies outside); output 1 reads inputs 1, 2, 3 with 1/7, 3/7, 3/7.
  // -> (3 * 3 + 3 * 4 + 5) / 7 = 26/7 and (4 + 3 * 5 + 3 * 6) / 7 = 37/7.
  check_close(nn::resize_pad(x, 2), image({26.0 / 7, 37.0 / 7, 0, 0}, {1, 2, 2}), 1e-5, 0, "antialiased downscale");
  // Without antialias, the taps are plain bilinear: output 0 reads the midpoint of inputs 0 and 1.
  check_close(nn::resize(x, 1, 2, false), image({(1 + 2 + 5 + 6) / 4.0, (3 + 4 + 7 + 8) / 4.0}, {1, 1, 2}), 1e-5, 0,
              "bilinear downscale");
}

TEST_CASE("resize: without antialias (and when upscaling) it equals F.interpolate bilinear") {
  Tensor x = random_tensor({3, 7, 9}, DType::f32, 0.0, 1.0, 3);
  const std::pair<int64_t, int64_t> sizes[] = {{14, 18}, {5, 4}, {7, 20}, {3, 9}, {1, 1}};
  for (auto [h, w] : sizes) {
    Tensor expected = ops::squeeze(ops::interpolate(ops::unsqueeze(x, 0), {h, w}, InterpolateMode::bilinear, false), 0);
    check_close(nn::resize(x, h, w, false), expected, 1e-5, 1e-5, "resize vs interpolate");
    // Upscaling along both dims: antialias changes nothing.
    if (h >= 7 && w >= 9) check_close(nn::resize(x, h, w, true), expected, 1e-5, 1e-5, "upscale antialias");
  }
  // A constant image stays constant whatever the filter.
  Tensor c = full({1, 9, 13}, 0.375);
  check_close(nn::resize(c, 4, 3), full({1, 4, 3}, 0.375), 1e-6, 0, "constant");
  CHECK_THROWS_AS(nn::resize(x, 0, 3), Error);
}

TEST_CASE("crop, center_crop and hflip") {
  std::vector<double> v;
  for (int i = 0; i < 20; ++i) v.push_back(i);
  Tensor x = image(v, {1, 4, 5});
  // 4x5 -> 2x3: top = floor((4 - 2) / 2) = 1, left = floor((5 - 3) / 2) = 1.
  check_close(nn::center_crop(x, 2, 3), image({6, 7, 8, 11, 12, 13}, {1, 2, 3}), 0, 0, "center_crop");
  check_close(nn::crop(x, 2, 3, 2, 2), image({13, 14, 18, 19}, {1, 2, 2}), 0, 0, "crop");
  CHECK_THROWS_WITH_AS(nn::crop(x, 3, 0, 2, 2), doctest::Contains("does not fit"), Error);
  CHECK_THROWS_AS(nn::center_crop(x, 5, 5), Error);
  check_close(nn::hflip(image({1, 2, 3, 4, 5, 6}, {2, 1, 3})), image({3, 2, 1, 6, 5, 4}, {2, 1, 3}), 0, 0, "hflip");
}

TEST_CASE("rotate: 90 degrees counter-clockwise, zero fill, identity at 0") {
  Tensor x = image({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 3, 3});
  // Counter-clockwise: the top-right corner (3) moves to the top-left; out[i][j] = in[j][2 - i].
  check_close(nn::rotate(x, 90), image({3, 6, 9, 2, 5, 8, 1, 4, 7}, {1, 3, 3}), 1e-5, 0, "rotate 90");
  check_close(nn::rotate(x, -90), image({7, 4, 1, 8, 5, 2, 9, 6, 3}, {1, 3, 3}), 1e-5, 0, "rotate -90");
  check_close(nn::rotate(x, 0), x, 0, 0, "rotate 0");
  // A 2x2 image of ones turned by 45 degrees about its centre (0.5, 0.5): output (0, 0) reads the
  // input at x = 0.5, y = 0.5 - sqrt(0.5) = -0.2071, i.e. rows -1 (outside: zero) and 0 with weights
  // 0.2071 and 0.7929. By symmetry every output pixel is 0.7929.
  check_close(nn::rotate(ones({1, 2, 2}), 45), full({1, 2, 2}, 1.0 - (std::sqrt(0.5) - 0.5)), 1e-5, 0, "rotate 45");
}

TEST_CASE("normalize: per channel, or one value for all") {
  Tensor x = image({0, 1, 0.5, 0.5}, {2, 1, 2});
  check_close(nn::normalize(x, {0.5, 0.25}, {0.5, 0.25}), image({-1, 1, 1, 1}, {2, 1, 2}), 1e-6, 0, "per channel");
  check_close(nn::normalize(x, {0.5}, {2}), image({-0.25, 0.25, 0, 0}, {2, 1, 2}), 1e-6, 0, "shared");
  CHECK_THROWS_WITH_AS(nn::normalize(x, {0.1, 0.2, 0.3}, {1}), doctest::Contains("mean has 3 values"), Error);
  CHECK_THROWS_AS(nn::normalize(x, {0}, {0}), Error);
}

TEST_CASE("random transforms: reproducible from the generator, and within their ranges") {
  std::vector<double> v;
  for (int i = 0; i < 64; ++i) v.push_back(i);
  Tensor x = image(v, {1, 8, 8});
  Generator g1(5), g2(5);
  std::set<std::pair<int64_t, int64_t>> corners;
  for (int trial = 0; trial < 50; ++trial) {
    Tensor a = nn::random_crop(x, 3, 4, g1);
    Tensor b = nn::random_crop(x, 3, 4, g2);
    check_close(a, b, 0, 0, "same seed, same crop");
    // The crop is a window of x: its first element tells the corner (value = 8 top + left).
    const int64_t first = static_cast<int64_t>(values(a)[0]);
    const int64_t top = first / 8, left = first % 8;
    REQUIRE(top <= 5);
    REQUIRE(left <= 4);
    check_close(a, nn::crop(x, top, left, 3, 4), 0, 0, "window");
    corners.insert({top, left});
  }
  CHECK(corners.size() > 10);  // 6 * 5 = 30 possible corners; 50 draws reach many of them
  Generator g(1);
  check_close(nn::random_hflip(x, g, 1.0), nn::hflip(x), 0, 0, "p = 1");
  check_close(nn::random_hflip(x, g, 0.0), x, 0, 0, "p = 0");
  int flips = 0;
  for (int i = 0; i < 200; ++i) flips += values(nn::random_hflip(x, g))[0] == 7.0 ? 1 : 0;
  CHECK(flips > 70);
  CHECK(flips < 130);
  check_close(nn::random_rotation(x, 0.0, g), x, 0, 0, "no rotation");
  double lo = 1, hi = 0;
  for (int i = 0; i < 1000; ++i) {
    const double u = nn::random_unit(g);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  CHECK(lo >= 0.0);
  CHECK(lo < 0.01);
  CHECK(hi < 1.0);
  CHECK(hi > 0.99);
}

TEST_CASE("Compose: steps in order; the same generator state gives the same result") {
  nn::Compose pipeline({nn::transforms::grey(), nn::transforms::resize_pad(6), nn::transforms::random_rotation(10),
                        nn::transforms::random_hflip(), nn::transforms::normalize({0.5}, {0.25}),
                        nn::transforms::rgb()});
  pipeline.then(nn::transforms::center_crop(4, 4));
  CHECK(pipeline.size() == 7);
  Tensor x = random_tensor({3, 5, 3}, DType::f32, 0.0, 1.0, 9);
  Generator a(11), b(11), c(12);
  Tensor ya = pipeline(x, a), yb = pipeline(x, b), yc = pipeline(x, c);
  CHECK(ya.shape() == Shape{3, 4, 4});
  check_close(ya, yb, 0, 0, "same seed");
  CHECK(values(ya) != values(yc));
  // With no random steps, the pipeline is the composition of the functions.
  nn::Compose fixed({nn::transforms::grey(), nn::transforms::resize(4, 4), nn::transforms::normalize({0.5}, {0.5})});
  check_close(fixed(x, a), nn::normalize(nn::resize(nn::to_grey(x), 4, 4), {0.5}, {0.5}), 0, 0, "composition");
}

}  // namespace loupe::test
