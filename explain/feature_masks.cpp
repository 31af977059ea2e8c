// Feature masks for images: grids, SLIC superpixels, pictures of masks. See feature_masks.hpp.
#include "explain/feature_masks.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "nn/data/image.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace loupe::explain {

namespace {

// A floating image (C, H, W) or (H, W) as C planes of doubles.
struct Planes {
  int64_t c = 0, h = 0, w = 0;
  std::vector<double> v;  // (C, H, W) row-major
  double at(int64_t ch, int64_t y, int64_t x) const { return v[static_cast<size_t>((ch * h + y) * w + x)]; }
};

Planes read_image(const Tensor& image, const char* what) {
  LOUPE_CHECK(image.defined(), what, ": undefined image");
  LOUPE_CHECK(image.dtype() == DType::f32 || image.dtype() == DType::f64, what,
              ": expected a float32 or float64 image, got ", dtype_name(image.dtype()));
  LOUPE_CHECK(image.dim() == 2 || image.dim() == 3, what, ": expected a (C, H, W) or (H, W) image, got ",
              shape_str(image.shape()));
  Planes p;
  p.c = image.dim() == 3 ? image.size(0) : 1;
  p.h = image.size(image.dim() - 2);
  p.w = image.size(image.dim() - 1);
  LOUPE_CHECK(p.c >= 1 && p.h >= 1 && p.w >= 1, what, ": empty image ", shape_str(image.shape()));
  p.v = to_vector<double>(ops::to_device(image, Device::cpu()));
  for (double x : p.v) LOUPE_CHECK(std::isfinite(x), what, ": the image holds NaN or infinite values");
  return p;
}

// The mask as (H, W) ids, checked against an image's size when h, w > 0.
std::vector<int64_t> read_mask(const Tensor& mask, const char* what, int64_t& h, int64_t& w) {
  LOUPE_CHECK(mask.defined(), what, ": undefined mask");
  LOUPE_CHECK(mask.dtype() == DType::i64, what, ": expected an int64 mask, got ", dtype_name(mask.dtype()));
  LOUPE_CHECK(mask.dim() == 2 || (mask.dim() == 3 && mask.size(0) == 1), what,
              ": expected an (H, W) or (1, H, W) mask, got ", shape_str(mask.shape()));
  const int64_t mh = mask.size(mask.dim() - 2), mw = mask.size(mask.dim() - 1);
  if (h > 0) {
    LOUPE_CHECK(mh == h && mw == w, what, ": mask ", shape_str(mask.shape()), " does not match the image's ", h, "x", w);
  }
  h = mh;
  w = mw;
  return to_vector<int64_t>(ops::to_device(mask, Device::cpu()));
}

// The picture in RGB (3, H, W) doubles, clamped to [0, 1]; grey images repeated.
std::vector<double> rgb_of(const Planes& p, const char* what) {
  LOUPE_CHECK(p.c == 1 || p.c == 3, what, ": expected a grey (1, H, W) or RGB (3, H, W) image, got ", p.c,
              " channels");
  const size_t plane = static_cast<size_t>(p.h * p.w);
  std::vector<double> out(3 * plane);
  for (size_t k = 0; k < 3; ++k)
    for (size_t i = 0; i < plane; ++i) out[k * plane + i] = std::clamp(p.v[(p.c == 3 ? k : 0) * plane + i], 0.0, 1.0);
  return out;
}

// HSV (all in [0, 1]) -> RGB.
std::array<double, 3> hsv(double h, double s, double v) {
  const double f = h * 6.0 - std::floor(h * 6.0);
  const int i = static_cast<int>(std::floor(h * 6.0)) % 6;
  const double p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  switch (i) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}

}  // namespace

Tensor grid_feature_mask(int64_t height, int64_t width, int64_t rows, int64_t cols) {
  LOUPE_CHECK(height >= 1 && width >= 1, "grid_feature_mask: the image must be at least 1x1, got ", height, "x", width);
  LOUPE_CHECK(rows >= 1 && rows <= height && cols >= 1 && cols <= width, "grid_feature_mask: a ", rows, "x", cols,
              " grid does not fit a ", height, "x", width, " image (need 1 <= rows <= H and 1 <= cols <= W)");
  // band(y) = the i with floor(i H / rows) <= y < floor((i + 1) H / rows).
  auto bands = [](int64_t size, int64_t count) {
    std::vector<int64_t> band(static_cast<size_t>(size));
    for (int64_t i = 0; i < count; ++i)
      for (int64_t y = i * size / count; y < (i + 1) * size / count; ++y) band[static_cast<size_t>(y)] = i;
    return band;
  };
  const std::vector<int64_t> row_of = bands(height, rows), col_of = bands(width, cols);
  std::vector<int64_t> ids(static_cast<size_t>(height * width));
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      ids[static_cast<size_t>(y * width + x)] = row_of[static_cast<size_t>(y)] * cols + col_of[static_cast<size_t>(x)];
  return from_values(ids, {height, width}, DType::i64);
}

GridSize parse_grid(const std::string& text) {
  auto fail = [&]() -> GridSize {
    throw Error("grid '" + text + "': expected ROWSxCOLS with two positive integers, e.g. 8x8");
  };
  const size_t x = text.find_first_of("xX");
  if (x == std::string::npos || x == 0 || x + 1 >= text.size()) return fail();
  auto number = [&](const std::string& part) -> int64_t {
    if (part.empty() || part.size() > 9 || !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
      fail();
    return std::stoll(part);
  };
  GridSize g{number(text.substr(0, x)), number(text.substr(x + 1))};
  if (g.rows < 1 || g.cols < 1) fail();
  return g;
}

Tensor slic_feature_mask(const Tensor& image, int64_t n_segments, double compactness, int64_t iterations) {
  SlicOptions o;
  o.n_segments = n_segments;
  o.compactness = compactness;
  o.iterations = iterations;
  return slic_feature_mask(image, o);
}

Tensor slic_feature_mask(const Tensor& image, const SlicOptions& options) {
  const Planes img = read_image(image, "slic_feature_mask");
  LOUPE_CHECK(options.n_segments >= 1, "slic_feature_mask: n_segments must be positive, got ", options.n_segments);
  LOUPE_CHECK(std::isfinite(options.compactness) && options.compactness >= 0.0,
              "slic_feature_mask: compactness must be >= 0, got ", options.compactness);
  LOUPE_CHECK(options.iterations >= 1, "slic_feature_mask: iterations must be positive, got ", options.iterations);
  LOUPE_CHECK(options.min_size_factor >= 0.0 && options.min_size_factor <= 1.0,
              "slic_feature_mask: min_size_factor must lie in [0, 1], got ", options.min_size_factor);
  const int64_t h = img.h, w = img.w, c = img.c, n = h * w;
  const double scale = 100.0;  // colours in [0, 1] -> the range of CIELAB lightness

  // 1. Centres on a regular grid (ny x nx cells of about S x S), each at its cell's middle.
  const double step = std::sqrt(static_cast<double>(n) / static_cast<double>(options.n_segments));
  const int64_t ny = std::clamp<int64_t>(std::llround(static_cast<double>(h) / step), 1, h);
  const int64_t nx = std::clamp<int64_t>(std::llround(static_cast<double>(w) / step), 1, w);
  const int64_t k_count = ny * nx;
  const double s = std::sqrt(static_cast<double>(n) / static_cast<double>(k_count));
  // Search radius: S, or the cell size where rounding made a cell longer than S in one direction.
  const double radius = std::max({s, static_cast<double>(h) / static_cast<double>(ny),
                                  static_cast<double>(w) / static_cast<double>(nx)});
  auto gradient = [&](int64_t y, int64_t x) {
    double g = 0.0;
    for (int64_t ch = 0; ch < c; ++ch) {
      const double dx = img.at(ch, y, std::min(x + 1, w - 1)) - img.at(ch, y, std::max<int64_t>(x - 1, 0));
      const double dy = img.at(ch, std::min(y + 1, h - 1), x) - img.at(ch, std::max<int64_t>(y - 1, 0), x);
      g += dx * dx + dy * dy;
    }
    return g;
  };
  struct Centre {
    std::vector<double> colour;
    double y = 0, x = 0;
  };
  std::vector<Centre> centres(static_cast<size_t>(k_count));
  for (int64_t i = 0; i < ny; ++i) {
    for (int64_t j = 0; j < nx; ++j) {
      int64_t cy = static_cast<int64_t>((static_cast<double>(i) + 0.5) * static_cast<double>(h) / static_cast<double>(ny));
      int64_t cx = static_cast<int64_t>((static_cast<double>(j) + 0.5) * static_cast<double>(w) / static_cast<double>(nx));
      // To the lowest gradient of the 3x3 neighbourhood (the grid point itself on ties).
      int64_t by = cy, bx = cx;
      double best = gradient(cy, cx);
      for (int64_t y = std::max<int64_t>(cy - 1, 0); y <= std::min(cy + 1, h - 1); ++y)
        for (int64_t x = std::max<int64_t>(cx - 1, 0); x <= std::min(cx + 1, w - 1); ++x)
          if (const double g = gradient(y, x); g < best) {
            best = g;
            by = y;
            bx = x;
          }
      Centre& centre = centres[static_cast<size_t>(i * nx + j)];
      centre.y = static_cast<double>(by);
      centre.x = static_cast<double>(bx);
      for (int64_t ch = 0; ch < c; ++ch) centre.colour.push_back(img.at(ch, by, bx));
    }
  }

  // 2. Local k-means: each centre claims the pixels within `radius` that are closer to it.
  const double spatial = options.compactness * options.compactness / (s * s);
  std::vector<int64_t> label(static_cast<size_t>(n), -1);
  std::vector<double> distance(static_cast<size_t>(n));
  for (int64_t round = 0; round < options.iterations; ++round) {
    std::fill(label.begin(), label.end(), -1);
    std::fill(distance.begin(), distance.end(), std::numeric_limits<double>::infinity());
    for (int64_t k = 0; k < k_count; ++k) {
      const Centre& centre = centres[static_cast<size_t>(k)];
      const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(centre.y - radius)));
      const int64_t y1 = std::min<int64_t>(h - 1, static_cast<int64_t>(std::floor(centre.y + radius)));
      const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(centre.x - radius)));
      const int64_t x1 = std::min<int64_t>(w - 1, static_cast<int64_t>(std::floor(centre.x + radius)));
      for (int64_t y = y0; y <= y1; ++y) {
        for (int64_t x = x0; x <= x1; ++x) {
          double d = 0.0;
          for (int64_t ch = 0; ch < c; ++ch) {
            const double dc = scale * (img.at(ch, y, x) - centre.colour[static_cast<size_t>(ch)]);
            d += dc * dc;
          }
          const double dy = static_cast<double>(y) - centre.y, dx = static_cast<double>(x) - centre.x;
          d += spatial * (dy * dy + dx * dx);
          const size_t p = static_cast<size_t>(y * w + x);
          if (d < distance[p]) {  // strict: the earlier centre keeps a tie
            distance[p] = d;
            label[p] = k;
          }
        }
      }
    }
    if (round + 1 == options.iterations) break;  // the last assignment is the answer
    std::vector<double> sums(static_cast<size_t>(k_count * (c + 2)), 0.0);
    std::vector<int64_t> counts(static_cast<size_t>(k_count), 0);
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const int64_t k = label[static_cast<size_t>(y * w + x)];
        if (k < 0) continue;
        double* sum = &sums[static_cast<size_t>(k * (c + 2))];
        for (int64_t ch = 0; ch < c; ++ch) sum[ch] += img.at(ch, y, x);
        sum[c] += static_cast<double>(y);
        sum[c + 1] += static_cast<double>(x);
        ++counts[static_cast<size_t>(k)];
      }
    }
    for (int64_t k = 0; k < k_count; ++k) {
      const double count = static_cast<double>(counts[static_cast<size_t>(k)]);
      if (count == 0) continue;  // an empty cluster keeps its centre
      const double* sum = &sums[static_cast<size_t>(k * (c + 2))];
      Centre& centre = centres[static_cast<size_t>(k)];
      for (int64_t ch = 0; ch < c; ++ch) centre.colour[static_cast<size_t>(ch)] = sum[ch] / count;
      centre.y = sum[c] / count;
      centre.x = sum[c + 1] / count;
    }
  }

  // 3a. The 4-connected fragments of the labels (unreached pixels, label -1, form fragments too),
  // numbered in raster order of their first pixel.
  std::vector<int64_t> fragment(static_cast<size_t>(n), -1);
  std::vector<int64_t> size, orphan;
  std::vector<int64_t> stack;
  for (int64_t start = 0; start < n; ++start) {
    if (fragment[static_cast<size_t>(start)] >= 0) continue;
    const int64_t id = static_cast<int64_t>(size.size());
    const int64_t own = label[static_cast<size_t>(start)];
    int64_t count = 0;
    fragment[static_cast<size_t>(start)] = id;
    stack.assign(1, start);
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      ++count;
      const int64_t y = p / w, x = p % w;
      const int64_t neighbours[4] = {x > 0 ? p - 1 : -1, x + 1 < w ? p + 1 : -1, y > 0 ? p - w : -1,
                                     y + 1 < h ? p + w : -1};
      for (int64_t q : neighbours) {
        if (q < 0 || fragment[static_cast<size_t>(q)] >= 0 || label[static_cast<size_t>(q)] != own) continue;
        fragment[static_cast<size_t>(q)] = id;
        stack.push_back(q);
      }
    }
    size.push_back(count);
    orphan.push_back(own < 0 ? 1 : 0);
  }
  const int64_t fragments = static_cast<int64_t>(size.size());
  // Shared border lengths (pixel edges) between fragments.
  std::vector<std::map<int64_t, int64_t>> border(static_cast<size_t>(fragments));
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const int64_t a = fragment[static_cast<size_t>(y * w + x)];
      for (const int64_t q : {x + 1 < w ? y * w + x + 1 : -1, y + 1 < h ? (y + 1) * w + x : -1}) {
        if (q < 0) continue;
        const int64_t b = fragment[static_cast<size_t>(q)];
        if (a == b) continue;
        ++border[static_cast<size_t>(a)][b];
        ++border[static_cast<size_t>(b)][a];
      }
    }
  }

  // 3b. Merge orphans (unreached pixels) first, then fragments below the minimal size, smallest
  // first, each into the neighbour it shares the longest border with.
  const double min_size = options.min_size_factor * static_cast<double>(n) / static_cast<double>(options.n_segments);
  std::vector<int64_t> parent(static_cast<size_t>(fragments));
  for (int64_t f = 0; f < fragments; ++f) parent[static_cast<size_t>(f)] = f;
  using Key = std::tuple<int64_t, int64_t, int64_t>;  // (0 for orphans else 1, size, id)
  auto key = [&](int64_t f) { return Key{orphan[static_cast<size_t>(f)] ? 0 : 1, size[static_cast<size_t>(f)], f}; };
  auto is_small = [&](int64_t f) {
    return orphan[static_cast<size_t>(f)] || static_cast<double>(size[static_cast<size_t>(f)]) < min_size;
  };
  std::set<Key> pending;
  for (int64_t f = 0; f < fragments; ++f)
    if (is_small(f)) pending.insert(key(f));
  while (!pending.empty()) {
    const int64_t a = std::get<2>(*pending.begin());
    pending.erase(pending.begin());
    auto& around = border[static_cast<size_t>(a)];
    if (around.empty()) continue;  // the whole image: nothing to merge into
    int64_t b = -1, longest = -1;
    for (const auto& [f, length] : around) {  // ascending ids: the first of equal borders wins
      if (length > longest) {
        longest = length;
        b = f;
      }
    }
    const bool b_pending = is_small(b);
    if (b_pending) pending.erase(key(b));
    parent[static_cast<size_t>(a)] = b;
    size[static_cast<size_t>(b)] += size[static_cast<size_t>(a)];
    for (const auto& [f, length] : around) {
      auto& theirs = border[static_cast<size_t>(f)];
      theirs.erase(a);
      if (f == b) continue;
      theirs[b] += length;
      border[static_cast<size_t>(b)][f] += length;
    }
    around.clear();
    if (is_small(b)) pending.insert(key(b));
  }

  // 4. Final ids in raster order of each segment's first pixel.
  auto root = [&](int64_t f) {
    while (parent[static_cast<size_t>(f)] != f) f = parent[static_cast<size_t>(f)];
    return f;
  };
  std::vector<int64_t> final_id(static_cast<size_t>(fragments), -1);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  int64_t next = 0;
  for (int64_t p = 0; p < n; ++p) {
    const int64_t r = root(fragment[static_cast<size_t>(p)]);
    if (final_id[static_cast<size_t>(r)] < 0) final_id[static_cast<size_t>(r)] = next++;
    ids[static_cast<size_t>(p)] = final_id[static_cast<size_t>(r)];
  }
  return from_values(ids, {h, w}, DType::i64);
}

int64_t feature_count(const Tensor& mask) {
  int64_t h = 0, w = 0;
  const std::vector<int64_t> ids = read_mask(mask, "feature_count", h, w);
  LOUPE_CHECK(!ids.empty(), "feature_count: empty mask ", shape_str(mask.shape()));
  const int64_t m = *std::max_element(ids.begin(), ids.end()) + 1;
  std::vector<char> used(static_cast<size_t>(std::max<int64_t>(m, 0)), 0);
  for (int64_t id : ids) {
    LOUPE_CHECK(id >= 0, "feature_count: the mask holds the negative id ", id);
    used[static_cast<size_t>(id)] = 1;
  }
  for (int64_t id = 0; id < m; ++id)
    LOUPE_CHECK(used[static_cast<size_t>(id)], "feature_count: ids must be 0..M-1 with every id used; ", id,
                " is missing (M = ", m, ")");
  return m;
}

Tensor mask_boundaries(const Tensor& image, const Tensor& mask, std::array<double, 3> colour) {
  const Planes img = read_image(image, "mask_boundaries");
  int64_t h = img.h, w = img.w;
  const std::vector<int64_t> ids = read_mask(mask, "mask_boundaries", h, w);
  std::vector<double> out = rgb_of(img, "mask_boundaries");
  const size_t plane = static_cast<size_t>(h * w);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const size_t p = static_cast<size_t>(y * w + x);
      const bool edge = (x + 1 < w && ids[p + 1] != ids[p]) || (y + 1 < h && ids[p + static_cast<size_t>(w)] != ids[p]);
      if (edge)
        for (size_t k = 0; k < 3; ++k) out[k * plane + p] = std::clamp(colour[k], 0.0, 1.0);
    }
  }
  return from_values(out, {3, h, w}, DType::f32);
}

Tensor colour_segments(const Tensor& image, const Tensor& mask, double alpha) {
  LOUPE_CHECK(alpha >= 0.0 && alpha <= 1.0, "colour_segments: alpha must lie in [0, 1], got ", alpha);
  const Planes img = read_image(image, "colour_segments");
  int64_t h = img.h, w = img.w;
  const std::vector<int64_t> ids = read_mask(mask, "colour_segments", h, w);
  const std::vector<double> rgb = rgb_of(img, "colour_segments");
  const size_t plane = static_cast<size_t>(h * w);
  std::vector<double> out(3 * plane);
  for (size_t p = 0; p < plane; ++p) {
    const double grey = 0.299 * rgb[p] + 0.587 * rgb[plane + p] + 0.114 * rgb[2 * plane + p];
    // Golden-angle hues: consecutive ids (often neighbours) get far-apart colours.
    const double hue = std::fmod(static_cast<double>(ids[p]) * 0.6180339887498949, 1.0);
    const auto col = hsv(hue < 0 ? hue + 1.0 : hue, 0.7, 0.95);
    for (size_t k = 0; k < 3; ++k) out[k * plane + p] = (1.0 - alpha) * grey + alpha * col[k];
  }
  return from_values(out, {3, h, w}, DType::f32);
}

void save_mask_png(const std::string& path, const Tensor& image, const Tensor& mask, double alpha) {
  nn::save_png(path, mask_boundaries(colour_segments(image, mask, alpha), mask));
}

}  // namespace loupe::explain
