// Tests of explain/feature_masks.hpp: grid masks (ids, band sizes, how remainders are spread),
// the "RxC" parser, SLIC superpixels on synthetic images whose true segments are known (flat
// rectangles: every superpixel inside one rectangle, boundaries on the rectangle edges,
// consecutive ids, connected segments, determinism), and the mask pictures.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "explain/feature_masks.hpp"
#include "nn/data/image.hpp"
#include "tensor/ops.hpp"
#include "tests/support.hpp"

using namespace loupe;
using namespace loupe::explain;

namespace {

// Ids in row-major order.
std::vector<int64_t> ids_of(const Tensor& mask) { return to_vector<int64_t>(mask); }

// A (C, H, W) image of flat rectangles: region r = (y / ry) * (W / rx) + x / rx gets colour r.
// Returns the image and the region of each pixel.
std::pair<Tensor, std::vector<int64_t>> rectangles(int64_t channels, int64_t h, int64_t w, int64_t ry, int64_t rx) {
  const std::vector<std::array<double, 3>> colours = {{0.9, 0.1, 0.1}, {0.1, 0.8, 0.2}, {0.2, 0.2, 0.9},
                                                      {0.9, 0.9, 0.2}, {0.1, 0.9, 0.9}, {0.6, 0.1, 0.7},
                                                      {0.05, 0.05, 0.05}, {0.95, 0.95, 0.95}, {0.5, 0.5, 0.5}};
  // Grey levels: neighbouring regions of a 2 x 3 layout differ by at least 0.4.
  const std::vector<double> greys = {0.0, 0.4, 0.8, 0.6, 1.0, 0.2, 0.5, 0.1, 0.9};
  std::vector<double> v(static_cast<size_t>(channels * h * w));
  std::vector<int64_t> region(static_cast<size_t>(h * w));
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const int64_t r = (y / ry) * (w / rx) + x / rx;
      region[static_cast<size_t>(y * w + x)] = r;
      for (int64_t c = 0; c < channels; ++c)
        v[static_cast<size_t>((c * h + y) * w + x)] =
            channels == 1 ? greys[static_cast<size_t>(r) % greys.size()] : colours[static_cast<size_t>(r) % colours.size()][static_cast<size_t>(c)];
    }
  }
  return {from_values(v, {channels, h, w}), region};
}

// Ids are 0..M-1, each used; every segment is 4-connected; ids appear in raster order of first pixel.
void check_segments_well_formed(const std::vector<int64_t>& ids, int64_t h, int64_t w) {
  int64_t next = 0;
  std::vector<int64_t> first(ids.size(), -1);
  for (size_t p = 0; p < ids.size(); ++p) {
    REQUIRE(ids[p] >= 0);
    REQUIRE(ids[p] <= next);  // a new id is always the next one: consecutive, in raster order
    if (ids[p] == next) {
      first[static_cast<size_t>(next)] = static_cast<int64_t>(p);
      ++next;
    }
  }
  // Flood fill from each segment's first pixel must reach all of its pixels.
  std::vector<int64_t> sizes(static_cast<size_t>(next), 0);
  for (int64_t id : ids) ++sizes[static_cast<size_t>(id)];
  for (int64_t id = 0; id < next; ++id) {
    std::vector<char> seen(ids.size(), 0);
    std::vector<int64_t> stack{first[static_cast<size_t>(id)]};
    seen[static_cast<size_t>(stack[0])] = 1;
    int64_t reached = 0;
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      ++reached;
      const int64_t y = p / w, x = p % w;
      for (int64_t q : {x > 0 ? p - 1 : -1, x + 1 < w ? p + 1 : -1, y > 0 ? p - w : -1, y + 1 < h ? p + w : -1}) {
        if (q >= 0 && !seen[static_cast<size_t>(q)] && ids[static_cast<size_t>(q)] == id) {
          seen[static_cast<size_t>(q)] = 1;
          stack.push_back(q);
        }
      }
    }
    CHECK_MESSAGE(reached == sizes[static_cast<size_t>(id)], "segment ", id, " is not connected");
  }
}

}  // namespace

TEST_CASE("feature masks: grid ids are row-major and bands spread the remainder") {
  const Tensor even = grid_feature_mask(4, 6, 2, 3);
  CHECK(even.shape() == Shape{4, 6});
  CHECK(even.dtype() == DType::i64);
  CHECK(ids_of(even) == std::vector<int64_t>{0, 0, 1, 1, 2, 2,  //
                                             0, 0, 1, 1, 2, 2,  //
                                             3, 3, 4, 4, 5, 5,  //
                                             3, 3, 4, 4, 5, 5});
  // H = 10 in 4 bands: boundaries floor(i * 10 / 4) = 0, 2, 5, 7, 10 -> sizes 2, 3, 2, 3.
  const std::vector<int64_t> rows = ids_of(grid_feature_mask(10, 1, 4, 1));
  CHECK(rows == std::vector<int64_t>{0, 0, 1, 1, 1, 2, 2, 3, 3, 3});
  // W = 7 in 3 bands: 0, 2, 4, 7 -> sizes 2, 2, 3.
  CHECK(ids_of(grid_feature_mask(1, 7, 1, 3)) == std::vector<int64_t>{0, 0, 1, 1, 2, 2, 2});
  // Sizes differ by at most one, and every id is used, for many shapes.
  for (int64_t h : {1, 7, 28, 224}) {
    for (int64_t g : {1, 2, 3, 5, 7}) {
      if (g > h) continue;
      const std::vector<int64_t> ids = ids_of(grid_feature_mask(h, h, g, g));
      std::map<int64_t, int64_t> count;
      for (int64_t id : ids) ++count[id];
      CHECK(static_cast<int64_t>(count.size()) == g * g);
      int64_t lo = h * h, hi = 0;
      for (const auto& [id, n] : count) lo = std::min(lo, n), hi = std::max(hi, n);
      const int64_t band_lo = h / g, band_hi = (h + g - 1) / g;
      CHECK(lo == band_lo * band_lo);
      CHECK(hi == band_hi * band_hi);
    }
  }
  CHECK(feature_count(grid_feature_mask(28, 28, 4, 7)) == 28);
  CHECK(grid_feature_mask(5, 5, 5, 5).shape() == Shape{5, 5});  // one pixel per feature
  CHECK_THROWS_WITH_AS(grid_feature_mask(4, 4, 5, 1), doctest::Contains("5x1"), Error);
  CHECK_THROWS_AS(grid_feature_mask(4, 4, 0, 1), Error);
  CHECK_THROWS_AS(grid_feature_mask(0, 4, 1, 1), Error);
}

TEST_CASE("feature masks: parse_grid reads RxC and rejects anything else") {
  const GridSize g = parse_grid("8x6");
  CHECK(g.rows == 8);
  CHECK(g.cols == 6);
  CHECK(parse_grid("4X12").cols == 12);
  for (const char* bad : {"", "8", "8x", "x8", "0x4", "4x0", "axb", "8x8x8", "-2x4", "8 x 8", "2.5x3", "99999999999x2"}) {
    const std::string expected = "grid '" + std::string(bad) + "'";
    CHECK_THROWS_WITH_AS(parse_grid(bad), doctest::Contains(expected.c_str()), Error);
  }
}

TEST_CASE("feature masks: SLIC recovers flat rectangles exactly when asked for as many segments") {
  // 60 x 90: six 30 x 30 rectangles; six segments -> a 2 x 3 grid of centres, one per rectangle.
  for (int64_t channels : {3, 1}) {
    CAPTURE(channels);
    const auto [image, region] = rectangles(channels, 60, 90, 30, 30);
    const std::vector<int64_t> ids = ids_of(slic_feature_mask(image, 6, 10.0, 10));
    CHECK(ids == region);  // region ids are already in raster order of first pixel
  }
}

TEST_CASE("feature masks: SLIC superpixels stay inside rectangles, are connected, consecutive and deterministic") {
  // Rectangles of uneven sizes (40 x 25) against a grid of step ~14: superpixels must split the
  // rectangles but never cross an edge (colour differences of >= 0.3 outweigh the spatial term).
  for (int64_t channels : {3, 1}) {
    CAPTURE(channels);
    const int64_t h = 80, w = 75;
    const auto [image, region] = rectangles(channels, h, w, 40, 25);
    const Tensor mask = slic_feature_mask(image, 30, 10.0, 10);
    CHECK(mask.shape() == Shape{h, w});
    const std::vector<int64_t> ids = ids_of(mask);
    check_segments_well_formed(ids, h, w);
    // Every segment inside one rectangle.
    std::map<int64_t, std::set<int64_t>> regions_of;
    for (size_t p = 0; p < ids.size(); ++p) regions_of[ids[p]].insert(region[p]);
    for (const auto& region_set : regions_of) {  // not a structured binding: doctest's macros capture it
      CHECK_MESSAGE(region_set.second.size() == 1, "segment ", region_set.first, " crosses a rectangle edge");
    }
    // So each rectangle edge is a segment boundary, and the segment count is about the asked one.
    const int64_t m = feature_count(mask);
    CHECK(m >= 15);
    CHECK(m <= 45);
    // Determinism: the same image gives the same mask; a non-contiguous copy too.
    CHECK(ids_of(slic_feature_mask(image, 30, 10.0, 10)) == ids);
    CHECK(ids_of(slic_feature_mask(test::noncontiguous_copy(image), 30, 10.0, 10)) == ids);
  }
}

TEST_CASE("feature masks: SLIC on noise still gives connected, consecutive segments without tiny fragments") {
  const int64_t h = 48, w = 40;
  const Tensor noise = test::random_tensor({3, h, w}, DType::f32, 0.0, 1.0, 5);
  SlicOptions o;
  o.n_segments = 20;
  o.compactness = 1.0;  // colour dominates: k-means clusters fragment, the post-processing must mend them
  const std::vector<int64_t> ids = ids_of(slic_feature_mask(noise, o));
  check_segments_well_formed(ids, h, w);
  std::map<int64_t, int64_t> sizes;
  for (int64_t id : ids) ++sizes[id];
  for (const auto& [id, n] : sizes) CHECK(static_cast<double>(n) >= o.min_size_factor * h * w / o.n_segments);
  // One segment for the whole image, and one pixel per segment where n_segments = H W.
  CHECK(feature_count(slic_feature_mask(noise, 1)) == 1);
  const Tensor flat = full({1, 6, 5}, 0.5);
  SlicOptions every;
  every.n_segments = 30;
  every.min_size_factor = 0.0;
  CHECK(feature_count(slic_feature_mask(flat, every)) == 30);
  CHECK(feature_count(slic_feature_mask(ops::select(flat, 0, 0), every)) == 30);  // (H, W) input
}

TEST_CASE("feature masks: SLIC and feature_count reject bad input naming it") {
  const Tensor image = full({3, 8, 8}, 0.5);
  CHECK_THROWS_WITH_AS(slic_feature_mask(image, 0), doctest::Contains("n_segments"), Error);
  CHECK_THROWS_WITH_AS(slic_feature_mask(image, 4, -1.0), doctest::Contains("compactness"), Error);
  CHECK_THROWS_WITH_AS(slic_feature_mask(image, 4, 10.0, 0), doctest::Contains("iterations"), Error);
  CHECK_THROWS_WITH_AS(slic_feature_mask(full({1, 3, 8, 8}, 0.5), 4), doctest::Contains("(1, 3, 8, 8)"), Error);
  CHECK_THROWS_WITH_AS(slic_feature_mask(full({8, 8}, 1.0, DType::i64), 4), doctest::Contains("int64"), Error);
  CHECK_THROWS_WITH_AS(slic_feature_mask(full({1, 8, 8}, NAN), 4), doctest::Contains("NaN"), Error);
  CHECK_THROWS_WITH_AS(feature_count(from_values(std::vector<int64_t>{0, 2, 2, 0}, {2, 2}, DType::i64)),
                       doctest::Contains("1 is missing"), Error);
  CHECK_THROWS_WITH_AS(feature_count(from_values(std::vector<int64_t>{0, -1}, {1, 2}, DType::i64)),
                       doctest::Contains("negative"), Error);
  CHECK_THROWS_WITH_AS(feature_count(zeros({2, 2})), doctest::Contains("int64"), Error);
  CHECK(feature_count(ops::unsqueeze(grid_feature_mask(4, 4, 2, 2), 0)) == 4);  // (1, H, W)
}

TEST_CASE("feature masks: pictures of a mask") {
  const Tensor mask = grid_feature_mask(4, 4, 2, 2);
  const Tensor grey = full({1, 4, 4}, 0.25);
  const Tensor drawn = mask_boundaries(grey, mask, {1.0, 0.0, 0.0});
  REQUIRE(drawn.shape() == Shape{3, 4, 4});
  const std::vector<double> v = test::values(drawn);
  // Boundary pixels: column 1 (right neighbour differs) and row 1 (lower neighbour differs).
  for (int64_t y = 0; y < 4; ++y) {
    for (int64_t x = 0; x < 4; ++x) {
      const bool edge = x == 1 || y == 1;
      CAPTURE(y);
      CAPTURE(x);
      CHECK(v[static_cast<size_t>(y * 4 + x)] == doctest::Approx(edge ? 1.0 : 0.25));
      CHECK(v[static_cast<size_t>(16 + y * 4 + x)] == doctest::Approx(edge ? 0.0 : 0.25));
    }
  }
  // Segment colours: one colour per id, different ids differ, alpha 0 shows the grey image.
  const std::vector<double> c = test::values(colour_segments(grey, mask, 1.0));
  CHECK(c[0] == c[1]);
  CHECK((c[0] != c[2] || c[16] != c[18] || c[32] != c[34]));
  CHECK(test::values(colour_segments(grey, mask, 0.0)) == std::vector<double>(48, 0.25));
  CHECK_THROWS_WITH_AS(mask_boundaries(grey, grid_feature_mask(4, 5, 2, 2)), doctest::Contains("4x4"), Error);
  CHECK_THROWS_AS(colour_segments(grey, mask, 1.5), Error);
  const auto path = std::filesystem::temp_directory_path() / "loupe_test_mask.png";
  save_mask_png(path.string(), full({3, 4, 4}, 0.5), mask);
  CHECK(nn::load_image(path.string()).shape() == Shape{3, 4, 4});
  std::filesystem::remove(path);
}
