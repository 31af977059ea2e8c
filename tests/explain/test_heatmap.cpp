// Tests of explain/heatmap.hpp: channel reduction, percentile clipping, the two colour maps,
// blending and the PNG files.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "explain/heatmap.hpp"
#include "nn/data/image.hpp"
#include "tests/support.hpp"

using namespace loupe;
using namespace loupe::explain;
using loupe::test::values;

namespace {

bool near(double a, double b, double tol = 1e-6) { return std::abs(a - b) <= tol; }

bool colour_near(const std::array<double, 3>& c, double r, double g, double b, double tol = 1e-9) {
  return near(c[0], r, tol) && near(c[1], g, tol) && near(c[2], b, tol);
}

}  // namespace

TEST_CASE("heatmap: reduce_channels sums signed values or magnitudes over channels") {
  // (2, 1, 3): channel 0 = (1, -2, 3), channel 1 = (-4, 0.5, 1)
  const Tensor a = from_values(std::vector<double>{1, -2, 3, -4, 0.5, 1}, {2, 1, 3}, DType::f64);
  const Tensor s = reduce_channels(a, MapReduction::sum);
  CHECK(s.shape() == Shape{1, 3});
  CHECK(s.dtype() == DType::f32);
  CHECK(values(s) == std::vector<double>{-3, -1.5, 4});
  CHECK(values(reduce_channels(a, MapReduction::abs_sum)) == std::vector<double>{5, 2.5, 4});
  // An (H, W) map is returned as it is (abs for abs_sum).
  const Tensor m = from_values(std::vector<double>{-1, 2}, {1, 2});
  CHECK(values(reduce_channels(m, MapReduction::sum)) == std::vector<double>{-1, 2});
  CHECK(values(reduce_channels(m, MapReduction::abs_sum)) == std::vector<double>{1, 2});
  // Non-contiguous input gives the same answer.
  const Tensor stored = from_values(std::vector<double>{1, -2, 3, -4, 0.5, 1}, {3, 1, 2});
  const Tensor t = ops::transpose(stored, 0, 2);  // (2, 1, 3), not contiguous
  CHECK(values(reduce_channels(t, MapReduction::sum)) == std::vector<double>{1 + -2, 3 + -4, 0.5 + 1});
  CHECK_THROWS_AS(reduce_channels(zeros({1, 2, 3, 4}), MapReduction::sum), Error);
  CHECK_THROWS_AS(reduce_channels(zeros({2, 3}, DType::i64), MapReduction::sum), Error);
}

TEST_CASE("heatmap: percentile interpolates linearly between ranks like numpy") {
  const std::vector<double> v = {7, 1, 3, 5, 9};  // sorted 1 3 5 7 9
  CHECK(percentile(v, 0) == 1);
  CHECK(percentile(v, 100) == 9);
  CHECK(percentile(v, 50) == 5);
  CHECK(near(percentile(v, 90), 8.2));    // position 3.6: 7 + 0.6 * 2
  CHECK(near(percentile(v, 12.5), 2.0));  // position 0.5
  // 1..100: numpy.percentile(range(1, 101), 99) = 99.01
  std::vector<double> hundred;
  for (int i = 100; i >= 1; --i) hundred.push_back(i);
  CHECK(near(percentile(hundred, 99), 99.01, 1e-9));
  CHECK(percentile({4.0}, 37) == 4.0);
  CHECK_THROWS_AS(percentile({}, 50), Error);
  CHECK_THROWS_AS(percentile({1, 2}, 101), Error);
  CHECK_THROWS_AS(percentile({1, 2}, -1), Error);
}

TEST_CASE("heatmap: clip_and_scale divides by the percentile of |map| and clips") {
  // |values| 1..100 with alternating signs; the 99th percentile of |v| is 99.01.
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i % 2 ? -i : i);
  const Tensor map = from_values(v, {10, 10}, DType::f64);
  const auto s = values(clip_and_scale(map, 99, /*signed_map=*/true));
  CHECK(near(s[0], -1 / 99.01));
  CHECK(near(s[49], 50 / 99.01));
  CHECK(near(s[98], -99 / 99.01));
  CHECK(s[99] == 1.0);  // 100 / 99.01 > 1: clipped
  for (double x : s) CHECK((x >= -1.0 && x <= 1.0));
  const auto a = values(clip_and_scale(map, 99, /*signed_map=*/false));
  CHECK(near(a[0], 1 / 99.01));  // magnitudes for absolute maps
  CHECK(a[99] == 1.0);
  // 100th percentile: the largest magnitude maps to exactly 1.
  CHECK(values(clip_and_scale(map, 100, true))[99] == doctest::Approx(1.0));
  // A sparse map whose percentile is 0 falls back to the maximum; all zeros stay zeros.
  std::vector<double> sparse(400, 0.0);  // 99th percentile: between ranks 395 and 396, both 0
  sparse[3] = -2.0;
  sparse[7] = 0.5;
  const auto sp = values(clip_and_scale(from_values(sparse, {20, 20}), 99, true));
  CHECK(sp[3] == -1.0);
  CHECK(sp[7] == doctest::Approx(0.25));
  for (double x : values(clip_and_scale(zeros({4, 4}), 99, true))) CHECK(x == 0.0);
  CHECK_THROWS_AS(clip_and_scale(zeros({2, 2, 2}), 99, true), Error);
}

TEST_CASE("heatmap: the diverging map is blue-white-red with white at zero") {
  const ColourMap div = diverging_colour_map();
  CHECK(div.points.size() == 11);
  CHECK(colour_near(div(0.0), 1.0, 1.0, 1.0));
  CHECK(colour_near(div(-1.0), 0x05 / 255.0, 0x30 / 255.0, 0x61 / 255.0));
  CHECK(colour_near(div(1.0), 0x67 / 255.0, 0x00 / 255.0, 0x1f / 255.0));
  CHECK(colour_near(div(-5.0), 0x05 / 255.0, 0x30 / 255.0, 0x61 / 255.0));  // clamped
  CHECK(colour_near(div(0.2), 0xfd / 255.0, 0xdb / 255.0, 0xc7 / 255.0));  // a control point
  // Half-way between the control points at 0.2 and 0.4.
  CHECK(colour_near(div(0.3), (0xfd + 0xf4) / 510.0, (0xdb + 0xa5) / 510.0, (0xc7 + 0x82) / 510.0));
  // Positive values are red-dominant, negative blue-dominant, and colour grows with |value|.
  for (double v : {0.1, 0.5, 0.9}) {
    CHECK(div(v)[0] > div(v)[2]);
    CHECK(div(-v)[2] > div(-v)[0]);
  }
  auto lightness = [](const std::array<double, 3>& c) { return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]; };
  for (double v = 0.0; v < 0.99; v += 0.05) {
    CHECK(lightness(div(v + 0.05)) < lightness(div(v)) + 1e-12);
    CHECK(lightness(div(-v - 0.05)) < lightness(div(-v)) + 1e-12);
  }
}

TEST_CASE("heatmap: the sequential map runs from near black to pale yellow with rising lightness") {
  const ColourMap seq = sequential_colour_map();
  CHECK(seq.points.size() == 11);
  CHECK(colour_near(seq(0.0), 0, 0, 4 / 255.0));
  CHECK(colour_near(seq(1.0), 0xfc / 255.0, 0xff / 255.0, 0xa4 / 255.0));
  CHECK(colour_near(seq(0.5), 0xbc / 255.0, 0x37 / 255.0, 0x54 / 255.0));
  CHECK(colour_near(seq(0.05), 0x16 / 510.0, (0x0b) / 510.0, (4 + 0x39) / 510.0));
  CHECK(colour_near(seq(-1), 0, 0, 4 / 255.0));
  CHECK(colour_near(seq(std::nan("")), 0, 0, 4 / 255.0));
  auto lightness = [](const std::array<double, 3>& c) { return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]; };
  for (double v = 0.0; v < 0.99; v += 0.02) CHECK(lightness(seq(v + 0.02)) > lightness(seq(v)));
}

TEST_CASE("heatmap: colourise, blend and make_heatmap") {
  const Tensor map = from_values(std::vector<double>{-1, 0, 1, 0.5}, {2, 2});
  const Tensor rgb = colourise(map, diverging_colour_map());
  CHECK(rgb.shape() == Shape{3, 2, 2});
  const auto c = values(rgb);
  // Pixel 1 (value 0) is white in every plane.
  CHECK(c[1] == doctest::Approx(1.0));
  CHECK(c[4 + 1] == doctest::Approx(1.0));
  CHECK(c[8 + 1] == doctest::Approx(1.0));
  CHECK(c[0] == doctest::Approx(0x05 / 255.0));  // pixel 0 red component of the blue end

  // Blending: (1 - alpha) grey + alpha colour; RGB input goes through the luma formula.
  const Tensor grey = full({1, 2, 2}, 0.4);
  const auto b = values(blend(grey, rgb, 0.25));
  for (size_t i = 0; i < b.size(); ++i) CHECK(b[i] == doctest::Approx(0.75 * 0.4 + 0.25 * c[i]).epsilon(1e-6));
  Tensor colour_input = zeros({3, 2, 2});
  ops::fill_(ops::select(colour_input, 0, 0), 1.0);  // pure red: luma 0.299
  const auto br = values(blend(colour_input, rgb, 0.0));
  for (double x : br) CHECK(x == doctest::Approx(0.299).epsilon(1e-6));
  CHECK(values(blend(full({1, 2, 2}, 7.0), rgb, 0.0))[0] == doctest::Approx(1.0));  // clamped input
  // Per-pixel weights scale alpha: weight 0 leaves the input, weight 1 gives alpha.
  const Tensor weights = from_values(std::vector<double>{0, 1, 0.5, 2}, {2, 2});
  const auto bw = values(blend(grey, rgb, 0.6, weights));
  for (int64_t k = 0; k < 3; ++k) {
    const size_t plane = static_cast<size_t>(4 * k);
    CHECK(bw[plane + 0] == doctest::Approx(0.4));
    CHECK(bw[plane + 1] == doctest::Approx(0.4 * 0.4 + 0.6 * c[plane + 1]).epsilon(1e-6));
    CHECK(bw[plane + 2] == doctest::Approx(0.7 * 0.4 + 0.3 * c[plane + 2]).epsilon(1e-6));
    CHECK(bw[plane + 3] == doctest::Approx(0.4 * 0.4 + 0.6 * c[plane + 3]).epsilon(1e-6));  // clamped to 1
  }
  CHECK_THROWS_AS(blend(grey, rgb, 0.6, zeros({3, 2})), Error);
  CHECK_THROWS_AS(blend(zeros({2, 2, 2}), rgb, 0.5), Error);  // 2 channels
  CHECK_THROWS_AS(blend(zeros({1, 3, 2}), rgb, 0.5), Error);  // size mismatch
  CHECK_THROWS_AS(blend(grey, rgb, 1.5), Error);

  // make_heatmap: a signed attribution gives a map in [-1, 1] and white where it is zero.
  const Tensor attribution = from_values(std::vector<double>{0, 2, -4, 1, 0, 2, 4, -1}, {2, 2, 2});  // sums 0 4 0 0
  HeatmapOptions options;
  options.clip_percentile = 100;
  const Heatmap h = make_heatmap(attribution, grey, options);
  CHECK(values(h.map) == std::vector<double>{0, 1, 0, 0});
  CHECK(h.colours.shape() == Shape{3, 2, 2});
  CHECK(h.overlay.shape() == Shape{3, 2, 2});
  CHECK(values(h.colours)[0] == doctest::Approx(1.0));
  // The overlay weights the colours by |map|: where the map is 0 the input shows unchanged.
  const auto ov = values(h.overlay);
  CHECK(ov[0] == doctest::Approx(0.4));
  CHECK(ov[1] == doctest::Approx(0.2 * 0.4 + 0.8 * values(h.colours)[1]).epsilon(1e-6));
  options.reduction = MapReduction::abs_sum;  // magnitudes 0 4 8 2 -> / 8
  const Heatmap ha = make_heatmap(attribution, Tensor(), options);
  CHECK(values(ha.map) == std::vector<double>{0, 0.5, 1, 0.25});
  CHECK(!ha.overlay.defined());
  CHECK_THROWS_AS(save_heatmap(ha, "", "never.png"), Error);
}

TEST_CASE("heatmap: save_heatmap writes PNGs that decode to the heatmap") {
  const auto dir = std::filesystem::temp_directory_path() / "loupe_test_heatmap";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<double> v;
  for (int i = 0; i < 3 * 5 * 7; ++i) v.push_back(std::sin(0.37 * i));
  const Heatmap h = make_heatmap(from_values(v, {3, 5, 7}), full({3, 5, 7}, 0.5));
  const std::string map_path = (dir / "m.png").string(), overlay_path = (dir / "o.png").string();
  save_heatmap(h, map_path, overlay_path);
  const Tensor m = nn::load_image(map_path);
  const Tensor o = nn::load_image(overlay_path);
  CHECK(m.shape() == Shape{3, 5, 7});
  CHECK(o.shape() == Shape{3, 5, 7});
  CHECK(loupe::test::check_close(m, h.colours, 0.5 / 255 + 1e-6, 0, "map png"));
  CHECK(loupe::test::check_close(o, h.overlay, 0.5 / 255 + 1e-6, 0, "overlay png"));
  std::filesystem::remove_all(dir);
}
