// Op table entries: 2-d max, average and adaptive average pooling, and the pooling semantics the
// table cannot express (returned indices, NaN and tie handling, ceil_mode output sizes, divisors
// at the padded border, integer inputs, the recorded node, errors).
// The references below are plain f64 loops written from PyTorch's documented definitions: they
// visit every (dilated) kernel tap and test whether it lies in the input or in the padding,
// rather than clipping window bounds the way the kernels do.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

using ops::Pool2dParams;

Pool2dParams pool_params(std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride = {0, 0},
                         std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> dilation = {1, 1},
                         bool ceil_mode = false, bool count_include_pad = true) {
  Pool2dParams p;
  p.kernel = kernel;
  p.stride = stride;
  p.padding = padding;
  p.dilation = dilation;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  return p;
}

// Distinct values in [-1, 1), shuffled: no two taps of a window are within gradcheck's step of
// each other, so the argmax never flips under finite differences.
Tensor distinct_tensor(const Shape& shape, DType dtype, uint64_t seed) {
  const int64_t n = shape_numel(shape);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    v[static_cast<size_t>(i)] = -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(n);
  }
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return from_values(v, shape, dtype);
}

// The output length from the formula in PyTorch's MaxPool2d/AvgPool2d documentation, with the
// ceil_mode rule that a window may not start in the right padding.
int64_t ref_pool_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const double span = static_cast<double>(in + 2 * p - d * (k - 1) - 1) / static_cast<double>(s);
  int64_t out = static_cast<int64_t>(ceil_mode ? std::ceil(span) : std::floor(span)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// (N, C, H, W) or (C, H, W) as planes of (H, W).
struct RefPlanes {
  int64_t planes, h, w;
  Shape lead;  // the dims before H and W
};

RefPlanes ref_planes(const Shape& s) {
  const size_t nd = s.size();
  RefPlanes r{1, s[nd - 2], s[nd - 1], Shape(s.begin(), s.end() - 2)};
  for (int64_t d : r.lead) r.planes *= d;
  return r;
}

Shape with_hw(Shape lead, int64_t h, int64_t w) {
  lead.push_back(h);
  lead.push_back(w);
  return lead;
}

Tensor ref_max_pool(const Tensor& x, Pool2dParams p) {
  for (int i = 0; i < 2; ++i) p.stride[i] = p.stride[i] ? p.stride[i] : p.kernel[i];
  const RefPlanes r = ref_planes(x.shape());
  const int64_t oh_n = ref_pool_size(r.h, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0], p.ceil_mode);
  const int64_t ow_n = ref_pool_size(r.w, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1], p.ceil_mode);
  const auto v = values(x);
  std::vector<double> out;
  for (int64_t pl = 0; pl < r.planes; ++pl) {
    for (int64_t oh = 0; oh < oh_n; ++oh) {
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        double best = -std::numeric_limits<double>::infinity();
        for (int64_t i = 0; i < p.kernel[0]; ++i) {
          for (int64_t j = 0; j < p.kernel[1]; ++j) {
            const int64_t h = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
            const int64_t w = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
            if (h < 0 || h >= r.h || w < 0 || w >= r.w) continue;  // padding never wins
            const double e = v[static_cast<size_t>((pl * r.h + h) * r.w + w)];
            if (std::isnan(e) || std::isnan(best)) {
              best = std::numeric_limits<double>::quiet_NaN();
            } else {
              best = std::max(best, e);
            }
          }
        }
        out.push_back(best);
      }
    }
  }
  return ref::make(out, with_hw(r.lead, oh_n, ow_n));
}

// Average over the taps inside the input; the divisor counts either those taps or every tap of the
// window that lies inside the padded input (taps past the padding, which ceil_mode windows can
// reach, never count).
Tensor ref_avg_pool(const Tensor& x, Pool2dParams p) {
  for (int i = 0; i < 2; ++i) p.stride[i] = p.stride[i] ? p.stride[i] : p.kernel[i];
  const RefPlanes r = ref_planes(x.shape());
  const int64_t oh_n = ref_pool_size(r.h, p.kernel[0], p.stride[0], p.padding[0], 1, p.ceil_mode);
  const int64_t ow_n = ref_pool_size(r.w, p.kernel[1], p.stride[1], p.padding[1], 1, p.ceil_mode);
  const auto v = values(x);
  std::vector<double> out;
  for (int64_t pl = 0; pl < r.planes; ++pl) {
    for (int64_t oh = 0; oh < oh_n; ++oh) {
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        double total = 0;
        int64_t inside = 0, inside_padded = 0;
        for (int64_t i = 0; i < p.kernel[0]; ++i) {
          for (int64_t j = 0; j < p.kernel[1]; ++j) {
            const int64_t h = oh * p.stride[0] - p.padding[0] + i;
            const int64_t w = ow * p.stride[1] - p.padding[1] + j;
            if (h >= -p.padding[0] && h < r.h + p.padding[0] && w >= -p.padding[1] && w < r.w + p.padding[1]) {
              ++inside_padded;
            }
            if (h < 0 || h >= r.h || w < 0 || w >= r.w) continue;
            ++inside;
            total += v[static_cast<size_t>((pl * r.h + h) * r.w + w)];
          }
        }
        out.push_back(inside == 0 ? 0.0 : total / static_cast<double>(p.count_include_pad ? inside_padded : inside));
      }
    }
  }
  return ref::make(out, with_hw(r.lead, oh_n, ow_n));
}

Tensor ref_adaptive_avg_pool(const Tensor& x, std::array<int64_t, 2> size) {
  const RefPlanes r = ref_planes(x.shape());
  const auto v = values(x);
  auto start = [](int64_t i, int64_t in, int64_t out) {
    return static_cast<int64_t>(std::floor(static_cast<double>(i * in) / static_cast<double>(out)));
  };
  auto stop = [](int64_t i, int64_t in, int64_t out) {
    return static_cast<int64_t>(std::ceil(static_cast<double>((i + 1) * in) / static_cast<double>(out)));
  };
  std::vector<double> out;
  for (int64_t pl = 0; pl < r.planes; ++pl) {
    for (int64_t oh = 0; oh < size[0]; ++oh) {
      for (int64_t ow = 0; ow < size[1]; ++ow) {
        double total = 0;
        int64_t count = 0;
        for (int64_t h = start(oh, r.h, size[0]); h < stop(oh, r.h, size[0]); ++h) {
          for (int64_t w = start(ow, r.w, size[1]); w < stop(ow, r.w, size[1]); ++w) {
            total += v[static_cast<size_t>((pl * r.h + h) * r.w + w)];
            ++count;
          }
        }
        out.push_back(total / static_cast<double>(count));
      }
    }
  }
  return ref::make(out, with_hw(r.lead, size[0], size[1]));
}

Shape zero_batch(const Shape& shape) {
  Shape s = shape;
  if (s.size() == 4) s[0] = 0;
  return s;
}

OpCase max_case(const std::string& name, const Shape& shape, const Pool2dParams& p, uint64_t seed) {
  OpCase c;
  c.name = "max_pool2d/" + name;
  c.make_inputs = [shape, seed](DType dtype) { return Inputs{distinct_tensor(shape, dtype, seed)}; };
  c.op = [p](const Inputs& in) { return loupe::max_pool2d(in[0], p); };
  c.reference = [p](const Inputs& in) { return ref_max_pool(in[0], p); };
  if (shape.size() == 4) {
    c.make_empty_inputs = [shape](DType dtype) { return Inputs{zeros(zero_batch(shape), dtype)}; };
  }
  return c;
}

OpCase max_with_indices_case() {
  const Pool2dParams p = pool_params({2, 2}, {1, 1});
  OpCase c;
  c.name = "max_pool2d_with_indices/values";
  c.make_inputs = [](DType dtype) { return Inputs{distinct_tensor({2, 2, 6, 5}, dtype, 47)}; };
  c.op = [p](const Inputs& in) { return loupe::max_pool2d_with_indices(in[0], p).values; };
  c.reference = [p](const Inputs& in) { return ref_max_pool(in[0], p); };
  return c;
}

OpCase avg_case(const std::string& name, const Shape& shape, const Pool2dParams& p, uint64_t seed) {
  OpCase c;
  c.name = "avg_pool2d/" + name;
  c.make_inputs = [shape, seed](DType dtype) { return Inputs{random_tensor(shape, dtype, -1, 1, seed)}; };
  c.op = [p](const Inputs& in) { return loupe::avg_pool2d(in[0], p); };
  c.reference = [p](const Inputs& in) { return ref_avg_pool(in[0], p); };
  if (shape.size() == 4) {
    c.make_empty_inputs = [shape](DType dtype) { return Inputs{zeros(zero_batch(shape), dtype)}; };
  }
  return c;
}

OpCase adaptive_case(const std::string& name, const Shape& shape, std::array<int64_t, 2> size, uint64_t seed) {
  OpCase c;
  c.name = "adaptive_avg_pool2d/" + name;
  c.make_inputs = [shape, seed](DType dtype) { return Inputs{random_tensor(shape, dtype, -1, 1, seed)}; };
  c.op = [size](const Inputs& in) { return loupe::adaptive_avg_pool2d(in[0], size); };
  c.reference = [size](const Inputs& in) { return ref_adaptive_avg_pool(in[0], size); };
  if (shape.size() == 4) {
    c.make_empty_inputs = [shape](DType dtype) { return Inputs{zeros(zero_batch(shape), dtype)}; };
  }
  return c;
}

const bool registered = register_ops({
    max_case("k3 s2 p1", {2, 2, 7, 8}, pool_params({3, 3}, {2, 2}, {1, 1}), 41),
    max_case("k2 default stride", {2, 3, 6, 6}, pool_params({2, 2}), 42),
    max_case("dilation 2 p1", {1, 2, 9, 8}, pool_params({3, 3}, {1, 1}, {1, 1}, {2, 2}), 43),
    max_case("dilation (2,1) ceil", {1, 2, 8, 7}, pool_params({2, 3}, {2, 2}, {1, 1}, {2, 1}, true), 48),
    max_case("ceil_mode", {2, 2, 8, 8}, pool_params({3, 3}, {2, 2}, {0, 0}, {1, 1}, true), 44),
    max_case("ceil_mode rect p1", {1, 3, 5, 6}, pool_params({3, 2}, {3, 2}, {1, 1}, {1, 1}, true), 45),
    max_case("CHW rect", {3, 6, 7}, pool_params({2, 3}, {1, 2}, {1, 0}), 46),
    max_with_indices_case(),
    avg_case("k3 s2 p1 include pad", {2, 2, 7, 8}, pool_params({3, 3}, {2, 2}, {1, 1}), 51),
    avg_case("k3 s2 p1 exclude pad", {2, 2, 7, 8}, pool_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, false, false), 52),
    avg_case("ceil_mode p1 include pad", {1, 2, 6, 7}, pool_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, true, true), 53),
    avg_case("ceil_mode p1 exclude pad", {1, 2, 6, 7}, pool_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, true, false), 54),
    avg_case("ceil_mode rect", {2, 2, 5, 7}, pool_params({2, 3}, {2, 2}, {1, 1}, {1, 1}, true, true), 55),
    avg_case("CHW k2 ceil", {3, 5, 5}, pool_params({2, 2}, {0, 0}, {0, 0}, {1, 1}, true), 56),
    adaptive_case("7x5 to 3x4", {2, 3, 7, 5}, {3, 4}, 61),
    adaptive_case("4x5 to 6x7 (upsampling)", {1, 2, 4, 5}, {6, 7}, 62),
    adaptive_case("global", {2, 3, 5, 6}, {1, 1}, 63),
    adaptive_case("CHW 7x9 to 2x4", {3, 7, 9}, {2, 4}, 64),
});

}  // namespace

TEST_CASE("max_pool2d: indices are flat positions h * W + w within each input plane") {
  // x[h][w] = 15 - (h * 4 + w): every window's maximum is its top-left tap inside the input.
  std::vector<double> desc(16);
  for (int i = 0; i < 16; ++i) desc[static_cast<size_t>(i)] = 15 - i;
  const Tensor x = from_values(desc, {1, 1, 4, 4}, DType::f32);
  {
    const auto r = ops::max_pool2d_with_indices(x, pool_params({2, 2}));
    CHECK(r.indices.dtype() == DType::i64);
    CHECK(r.indices.shape() == Shape{1, 1, 2, 2});
    CHECK(to_vector<int64_t>(r.indices) == std::vector<int64_t>{0, 2, 8, 10});
    CHECK(values(r.values) == std::vector<double>{15, 13, 7, 5});
  }
  {
    // Padding: the first window covers rows/cols -1..1, so its top-left tap in the input is (0, 0).
    const auto r = ops::max_pool2d_with_indices(x, pool_params({3, 3}, {2, 2}, {1, 1}));
    CHECK(to_vector<int64_t>(r.indices) == std::vector<int64_t>{0, 1, 4, 5});
  }
  {
    // Dilation 2 on arange(25): the maximum of each window is its bottom-right tap (oh + 2, ow + 2).
    const Tensor a = ops::reshape(arange(25, DType::f64), {1, 1, 5, 5});
    const auto r = ops::max_pool2d_with_indices(a, pool_params({2, 2}, {1, 1}, {0, 0}, {2, 2}));
    std::vector<int64_t> expected;
    for (int64_t oh = 0; oh < 3; ++oh) {
      for (int64_t ow = 0; ow < 3; ++ow) expected.push_back((oh + 2) * 5 + ow + 2);
    }
    CHECK(to_vector<int64_t>(r.indices) == expected);
  }
  {
    // A CHW input gives (C, OH, OW) indices, each into its own plane (not offset by the channel).
    const Tensor a = ops::reshape(arange(18, DType::f64), {2, 3, 3});
    const auto r = ops::max_pool2d_with_indices(a, pool_params({2, 2}, {1, 1}));
    CHECK(r.indices.shape() == Shape{2, 2, 2});
    CHECK(to_vector<int64_t>(r.indices) == std::vector<int64_t>{4, 5, 7, 8, 4, 5, 7, 8});
    CHECK(values(r.values) == std::vector<double>{4, 5, 7, 8, 13, 14, 16, 17});
  }
}

// Found by comparing the GPU kernels with the CPU op: the fast kernel's interior columns were
// computed with a division that rounds a negative numerator toward zero, so a ceil_mode window
// wider than an unpadded row read past the row (and past the plane).
TEST_CASE("max_pool2d: a ceil_mode window wider than the input reads only the input") {
  Pool2dParams p;
  p.kernel = {2, 4};
  p.stride = {2, 4};
  p.ceil_mode = true;
  const Tensor x = from_values(std::vector<double>{-6, -5, -4, -3, -2, -1}, {1, 1, 3, 2}, DType::f32);
  const ops::ValuesIndices y = ops::max_pool2d_with_indices(x, p);
  check_close(y.values, from_values(std::vector<double>{-3, -1}, {1, 1, 2, 1}, DType::f32), 0, 0, "values");
  check_close(y.indices, from_values(std::vector<int64_t>{3, 5}, {1, 1, 2, 1}), 0, 0, "indices");
}

TEST_CASE("max_pool2d: ties keep the first maximum, NaN wins, -inf is a value") {
  const Tensor ones4 = ones({1, 1, 3, 3}, DType::f64);
  CHECK(to_vector<int64_t>(ops::max_pool2d_with_indices(ones4, pool_params({2, 2}, {1, 1})).indices) ==
        std::vector<int64_t>{0, 1, 3, 4});

  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const Tensor x = from_values(std::vector<double>{1, nan, 3, 2, /**/ nan, 1, nan, 2, /**/ -inf, -inf, -inf, -inf},
                               {3, 2, 2}, DType::f32);
  const auto r = ops::max_pool2d_with_indices(x, pool_params({2, 2}));
  const auto v = values(r.values);
  CHECK(std::isnan(v[0]));
  CHECK(std::isnan(v[1]));
  CHECK(v[2] == -inf);
  // PyTorch replaces the running maximum at every NaN, so the last NaN's index is returned.
  CHECK(to_vector<int64_t>(r.indices) == std::vector<int64_t>{1, 2, 0});
}

TEST_CASE("max_pool2d: the backward sends each output's gradient to its argmax") {
  // Overlapping windows (k3 s1) on a 4x4 ramp: every window's argmax is its bottom-right tap.
  const Tensor x = ops::reshape(arange(16, DType::f64), {1, 1, 4, 4});
  Tensor leaf = ops::clone(x);
  leaf.set_requires_grad();
  backward(sum(loupe::max_pool2d(leaf, pool_params({3, 3}, {1, 1}))));
  std::vector<double> expected(16, 0.0);
  for (int64_t at : {10, 11, 14, 15}) expected[static_cast<size_t>(at)] = 1.0;
  CHECK(values(leaf.grad()) == expected);
}

TEST_CASE("max_pool2d: the node saves {x, y, indices} and the resolved parameters") {
  Tensor x = distinct_tensor({1, 2, 7, 6}, DType::f64, 5);
  x.set_requires_grad();
  const Pool2dParams p = pool_params({3, 2}, {0, 0}, {1, 1}, {2, 1}, true);
  const auto r = loupe::max_pool2d_with_indices(x, p);
  REQUIRE(r.values.grad_fn() != nullptr);
  const autograd::Node& node = *r.values.grad_fn();
  CHECK(node.kind() == autograd::OpKind::max_pool2d);
  REQUIRE(node.saved.size() == 3);
  CHECK(values(node.saved[0]) == values(x));
  CHECK(values(node.saved[1]) == values(r.values));
  CHECK(to_vector<int64_t>(node.saved[2]) == to_vector<int64_t>(ops::max_pool2d_with_indices(x, p).indices));
  // stride 0 is stored as the kernel it stands for
  CHECK(node.attrs == std::vector<double>{3, 2, 3, 2, 1, 1, 2, 1, 1});
  CHECK(r.indices.grad_fn() == nullptr);
  CHECK(loupe::max_pool2d(x, p).grad_fn()->kind() == autograd::OpKind::max_pool2d);
  CHECK(loupe::avg_pool2d(x, pool_params({2, 2})).grad_fn()->kind() == autograd::OpKind::avg_pool2d);
  CHECK(loupe::adaptive_avg_pool2d(x, {2, 2}).grad_fn()->kind() == autograd::OpKind::adaptive_avg_pool2d);
}

TEST_CASE("pooling: ceil_mode output sizes follow PyTorch's formula") {
  struct Case {
    int64_t in, k, s, p, d, floor_out, ceil_out;
  };
  // Hand-computed from PyTorch's formula; the second row is the case where ceil_mode's extra
  // window would start in the right padding and is dropped.
  const std::vector<Case> cases = {
      {8, 3, 2, 0, 1, 3, 4}, {5, 3, 3, 1, 1, 2, 2}, {6, 2, 2, 0, 1, 3, 3}, {7, 3, 2, 1, 1, 4, 4},
      {6, 3, 2, 1, 1, 3, 4}, {9, 2, 2, 1, 2, 5, 5}, {10, 3, 3, 1, 2, 3, 4}, {4, 2, 3, 1, 1, 2, 2},
  };
  for (const Case& c : cases) {
    INFO("in " << c.in << " k " << c.k << " s " << c.s << " p " << c.p << " d " << c.d);
    CHECK(ref_pool_size(c.in, c.k, c.s, c.p, c.d, false) == c.floor_out);
    CHECK(ref_pool_size(c.in, c.k, c.s, c.p, c.d, true) == c.ceil_out);
    for (bool ceil_mode : {false, true}) {
      const Tensor x = zeros({1, 2, c.in, c.in + 1}, DType::f32);
      const Pool2dParams p = pool_params({c.k, c.k}, {c.s, c.s}, {c.p, c.p}, {c.d, c.d}, ceil_mode);
      const Shape expected{1, 2, ceil_mode ? c.ceil_out : c.floor_out,
                           ref_pool_size(c.in + 1, c.k, c.s, c.p, c.d, ceil_mode)};
      CHECK(ops::max_pool2d(x, p).shape() == expected);
      if (c.d == 1) {
        const Pool2dParams a = pool_params({c.k, c.k}, {c.s, c.s}, {c.p, c.p}, {1, 1}, ceil_mode);
        CHECK(ops::avg_pool2d(x, a).shape() == expected);
      }
    }
  }
}

TEST_CASE("avg_pool2d: divisors with padding and ceil_mode windows clipped at the padded border") {
  // One row 1..6, kernel (1, 3), stride 2, padding (0, 1), ceil_mode: 4 windows starting at -1, 1,
  // 3, 5; the last covers 5..7 but the padded input ends at 6, so it counts 2 taps, not 3.
  const Tensor x = from_values(std::vector<double>{1, 2, 3, 4, 5, 6}, {1, 1, 1, 6}, DType::f64);
  const auto include = ops::avg_pool2d(x, pool_params({1, 3}, {1, 2}, {0, 1}, {1, 1}, true, true));
  const auto exclude = ops::avg_pool2d(x, pool_params({1, 3}, {1, 2}, {0, 1}, {1, 1}, true, false));
  CHECK(values(include) == std::vector<double>{1, 3, 5, 3});
  CHECK(values(exclude) == std::vector<double>{1.5, 3, 5, 6});
  // Without padding a ceil_mode window past the input counts only the taps inside.
  CHECK(values(ops::avg_pool2d(x, pool_params({1, 4}, {1, 4}, {0, 0}, {1, 1}, true))) ==
        std::vector<double>{2.5, 5.5});
}

TEST_CASE("pooling: int64 inputs (max keeps values, average truncates like PyTorch)") {
  const Tensor x = from_values(std::vector<int64_t>{1, 2, 3, 5, -7, 2, 0, 1}, {2, 2, 2});
  const auto r = ops::max_pool2d_with_indices(x, pool_params({2, 2}));
  CHECK(r.values.dtype() == DType::i64);
  CHECK(to_vector<int64_t>(r.values) == std::vector<int64_t>{5, 2});
  CHECK(to_vector<int64_t>(r.indices) == std::vector<int64_t>{3, 1});
  const Tensor avg = ops::avg_pool2d(x, pool_params({2, 2}));
  CHECK(avg.dtype() == DType::i64);
  CHECK(to_vector<int64_t>(avg) == std::vector<int64_t>{2, -1});  // 11 / 4 and -4 / 4
}

TEST_CASE("pooling: results do not depend on the thread count") {
  const Tensor x = random_tensor({4, 8, 40, 40}, DType::f32, -1, 1, 91);
  const Pool2dParams p = pool_params({3, 3}, {2, 2}, {1, 1}, {1, 1}, true, false);
  auto run = [&] {
    const auto m = ops::max_pool2d_with_indices(x, p);
    return std::vector<Tensor>{m.values, ops::max_pool2d_backward(m.values, m.indices, x.shape()),
                               ops::avg_pool2d(x, p), ops::avg_pool2d_backward(ops::avg_pool2d(x, p), x.shape(), p),
                               ops::adaptive_avg_pool2d(x, {7, 9}),
                               ops::adaptive_avg_pool2d_backward(ops::adaptive_avg_pool2d(x, {7, 9}), x.shape())};
  };
  const int threads = num_threads();
  set_num_threads(1);
  const auto serial = run();
  set_num_threads(std::max(threads, 2));
  const auto parallel = run();
  set_num_threads(threads);
  for (size_t i = 0; i < serial.size(); ++i) check_close(parallel[i], serial[i], 0, 0, "result " + std::to_string(i));
}

TEST_CASE("pooling: bad arguments raise loupe::Error naming the op") {
  const Tensor x = random_tensor({1, 2, 6, 6});
  CHECK_THROWS_AS(ops::max_pool2d(x, pool_params({0, 2})), Error);                        // kernel 0
  CHECK_THROWS_AS(ops::max_pool2d(x, pool_params({2, 2}, {-1, 1})), Error);               // negative stride
  CHECK_THROWS_AS(ops::max_pool2d(x, pool_params({2, 2}, {1, 1}, {-1, 0})), Error);       // negative padding
  CHECK_THROWS_AS(ops::max_pool2d(x, pool_params({3, 3}, {1, 1}, {2, 1})), Error);        // pad > k / 2
  CHECK_THROWS_AS(ops::max_pool2d(x, pool_params({2, 2}, {1, 1}, {0, 0}, {0, 1})), Error);  // dilation 0
  CHECK_THROWS_AS(ops::avg_pool2d(x, pool_params({3, 3}, {1, 1}, {2, 2})), Error);
  CHECK_THROWS_AS(ops::avg_pool2d(x, pool_params({2, 2}, {0, 0}, {0, 0}, {2, 2})), Error);  // no dilation
  CHECK_THROWS_AS(ops::avg_pool2d(x, pool_params({0, 0})), Error);
  // Too small: kernel 3 with dilation 3 spans 7 > 6.
  CHECK_THROWS_AS(ops::max_pool2d(x, pool_params({3, 3}, {1, 1}, {0, 0}, {3, 3})), Error);
  CHECK_THROWS_WITH_AS(ops::max_pool2d(random_tensor({1, 1, 2, 2}), pool_params({3, 3})),
                       doctest::Contains("max_pool2d: input of shape (1, 1, 2, 2) is too small"), Error);
  CHECK_THROWS_WITH_AS(ops::avg_pool2d(random_tensor({1, 1, 2, 5}), pool_params({3, 3})),
                       doctest::Contains("avg_pool2d"), Error);
  // Wrong rank or empty (C, H, W) dims.
  for (const Shape& bad : {Shape{6, 6}, Shape{1, 1, 1, 6, 6}, Shape{1, 0, 6, 6}, Shape{2, 6, 0}}) {
    INFO(shape_str(bad));
    const Tensor t = zeros(bad);
    CHECK_THROWS_AS(ops::max_pool2d(t, pool_params({2, 2})), Error);
    CHECK_THROWS_AS(ops::avg_pool2d(t, pool_params({2, 2})), Error);
    CHECK_THROWS_AS(ops::adaptive_avg_pool2d(t, {2, 2}), Error);
  }
  CHECK_THROWS_WITH_AS(loupe::max_pool2d(zeros({6, 6}), pool_params({2, 2})),
                       doctest::Contains("max_pool2d: expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, "
                                         "got shape (6, 6)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::max_pool2d(x, pool_params({3, 3}, {1, 1}, {2, 1})),
                       doctest::Contains("max_pool2d: pad should be at most half of kernel size"), Error);
  CHECK_THROWS_WITH_AS(loupe::adaptive_avg_pool2d(zeros({6, 6}), {2, 2}), doctest::Contains("adaptive_avg_pool2d"),
                       Error);
  CHECK_THROWS_AS(ops::adaptive_avg_pool2d(x, {-1, 2}), Error);
  CHECK_THROWS_AS(ops::adaptive_avg_pool2d(ops::to_dtype(x, DType::i64), {2, 2}), Error);
  CHECK_THROWS_AS(ops::max_pool2d(ops::to_dtype(x, DType::b8), pool_params({2, 2})), Error);
  // Backward kernels check what they are given.
  const auto r = ops::max_pool2d_with_indices(x, pool_params({2, 2}));
  CHECK_THROWS_AS(ops::max_pool2d_backward(ops::reshape(r.values, {1, 2, 9}), r.indices, x.shape()), Error);
  CHECK_THROWS_AS(ops::max_pool2d_backward(r.values, ops::to_dtype(r.indices, DType::f32), x.shape()), Error);
  CHECK_THROWS_AS(ops::avg_pool2d_backward(zeros({1, 2, 4, 4}), x.shape(), pool_params({2, 2})), Error);
}

}  // namespace loupe::test
