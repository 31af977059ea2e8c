// Occlusion (explain/occlusion.hpp): the closed form of a linear model, a hand-worked 1-d case
// with a stride and a clipped last window, a one-window-at-a-time reference on host vectors (any
// rank, two inputs, baselines), independence of perturbations_per_eval, several targets per row
// from the same passes, and the errors. Captum's results: tests/explain/test_captum_perturbation.cpp.
#include <doctest/doctest.h>

#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

// The positions of the windows along one dim by the definition: start at 0, slide by the stride
// until a window reaches the border; the last one is cut there. [start, end) pairs.
std::vector<std::pair<int64_t, int64_t>> positions(int64_t size, int64_t window, int64_t stride) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t start = 0;; start += stride) {
    out.emplace_back(start, std::min(start + window, size));
    if (start + window >= size) break;
  }
  return out;
}

// Occlusion one window at a time on host vectors: for every row, input and window position
// (odometer over the dims), the row with the window's elements set to the baseline, one forward
// pass each; an element gets the mean of the gaps of the windows covering it. Baselines are full
// (N, ...) tensors like the inputs; targets one per row (-1: the model gives one score per row).
std::vector<Tensor> reference_occlusion(const ForwardFn& model, const std::vector<Tensor>& inputs,
                                        const std::vector<Tensor>& baselines, const std::vector<Shape>& windows,
                                        const std::vector<std::vector<int64_t>>& strides,
                                        const std::vector<int64_t>& targets) {
  const int64_t n = inputs[0].size(0);
  auto score = [&](const std::vector<Tensor>& rows, int64_t r) {
    const auto out = values(model(rows));
    return targets[static_cast<size_t>(r)] < 0 ? out[0] : out[static_cast<size_t>(targets[static_cast<size_t>(r)])];
  };
  std::vector<Tensor> results;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Shape dims(inputs[i].shape().begin() + 1, inputs[i].shape().end());
    const int64_t numel = shape_numel(dims);
    std::vector<double> result;
    for (int64_t r = 0; r < n; ++r) {
      std::vector<Tensor> rows;
      for (const Tensor& x : inputs) rows.push_back(ops::narrow(x, 0, r, 1));
      const double clean = score(rows, r);
      const auto x = values(rows[i]);
      const auto b = values(ops::narrow(baselines[i], 0, r, 1));
      std::vector<std::vector<std::pair<int64_t, int64_t>>> per_dim;
      for (size_t d = 0; d < dims.size(); ++d) per_dim.push_back(positions(dims[d], windows[i][d], strides[i][d]));
      std::vector<double> sums(static_cast<size_t>(numel)), counts(static_cast<size_t>(numel));
      std::vector<size_t> pos(dims.size(), 0);
      for (bool more = true; more;) {
        std::vector<double> copy = x;
        std::vector<bool> inside(copy.size());
        for (int64_t e = 0; e < numel; ++e) {
          bool in = true;
          for (int64_t d = static_cast<int64_t>(dims.size()) - 1, rest = e; d >= 0; --d) {
            const int64_t j = rest % dims[static_cast<size_t>(d)];
            rest /= dims[static_cast<size_t>(d)];
            const auto [lo, hi] = per_dim[static_cast<size_t>(d)][pos[static_cast<size_t>(d)]];
            in = in && j >= lo && j < hi;
          }
          inside[static_cast<size_t>(e)] = in;
          if (in) copy[static_cast<size_t>(e)] = b[static_cast<size_t>(e)];
        }
        std::vector<Tensor> occluded = rows;
        occluded[i] = from_values(copy, rows[i].shape(), inputs[i].dtype());
        const double gap = clean - score(occluded, r);
        for (size_t e = 0; e < inside.size(); ++e) {
          if (inside[e]) {
            sums[e] += gap;
            counts[e] += 1;
          }
        }
        more = false;  // next position, last dim fastest
        for (size_t d = dims.size(); d-- > 0;) {
          if (++pos[d] < per_dim[d].size()) {
            more = true;
            break;
          }
          pos[d] = 0;
        }
      }
      for (size_t e = 0; e < sums.size(); ++e) result.push_back(sums[e] / counts[e]);
    }
    results.push_back(from_values(result, inputs[i].shape(), inputs[i].dtype()));
  }
  return results;
}

// A smooth model of two inputs: images (N, 2, 5, 4) and features (N, 6) -> (N, 3).
ForwardFn two_input_model(const Tensor& w_image, const Tensor& w_features, const Tensor& w_out) {
  return [=](const std::vector<Tensor>& in) {
    const Tensor h = tanh(add(linear(flatten(in[0], 1), w_image), linear(in[1], w_features)));
    return linear(h, w_out);
  };
}

}  // namespace

TEST_CASE("occlusion: one-element windows on a linear model give (x - x') * w_t") {
  const Tensor w = random_tensor({3, 5}, DType::f64, -1, 1, 41), b = random_tensor({3}, DType::f64, -1, 1, 42);
  const Tensor x = random_tensor({4, 5}, DType::f64, -2, 2, 43);
  const std::vector<int64_t> targets = {0, 2, 1, 2};
  const Tensor rows_w = weight_rows(w, targets);
  Query q{linear_model(w, b), {x}, Target::per_row(targets)};
  check_close(occlusion(q, {.windows = {{1}}}).attributions[0], ops::mul(x, rows_w), 1e-12, 1e-12, "zero baseline");
  q.baselines = {0.5};
  check_close(occlusion(q, {.windows = {{1}}}).attributions[0], ops::mul(ops::sub(x, 0.5), rows_w), 1e-12, 1e-12,
              "scalar baseline");
  const Tensor x0 = random_tensor({5}, DType::f64, -1, 1, 44);  // broadcast over the rows
  q.baselines = {x0};
  const Attribution a = occlusion(q, {.windows = {{1}}, .perturbations_per_eval = 2});
  check_close(a.attributions[0], ops::mul(ops::sub(x, x0), rows_w), 1e-12, 1e-12, "tensor baseline");
  CHECK(a.targets == targets);
  CHECK(a.rows == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(!a.delta.defined());
}

TEST_CASE("occlusion: a hand-worked 1-d case with a stride and a clipped last window") {
  // f(x) = (sum x)^2, x = 1..8, window 3, stride 2: windows [0,3) [2,5) [4,7) and [6,8) (clipped;
  // ceil((8 - 3) / 2) + 1 = 4). Sums 6, 12, 18, 15 of S = 36 give gaps 1296 - (36 - s)^2 =
  // 396, 720, 972, 855; elements 2, 4, 6 lie in two windows and get the mean of their gaps.
  const Tensor x = from_values(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}, {1, 8}, DType::f64);
  const ForwardFn model = [](const std::vector<Tensor>& in) { return square(sum(in[0], {1})); };
  const Attribution a = occlusion(Query{model, {x}}, {.windows = {{3}}, .strides = {{2}}});
  const Tensor expected =
      from_values(std::vector<double>{396, 396, 558, 720, 846, 972, 913.5, 855}, {1, 8}, DType::f64);
  check_close(a.attributions[0], expected, 1e-9, 0, "1-d");
  CHECK(a.targets == std::vector<int64_t>{-1});
  // Window 4, stride 4 over 10: [0,4) [4,8) [8,10); baseline 1: element j's gap is removing sum_W (x - 1).
  const Tensor y = from_values(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {1, 10}, DType::f64);
  const Attribution c = occlusion(Query{model, {y}, Target::none(), Output::logit, {1.0}},
                                  {.windows = {{4}}, .strides = {{4}}, .perturbations_per_eval = 2});
  const double s = 55, g0 = s * s - (s - 6) * (s - 6), g1 = s * s - (s - 22) * (s - 22),
               g2 = s * s - (s - 17) * (s - 17);
  check_close(c.attributions[0],
              from_values(std::vector<double>{g0, g0, g0, g0, g1, g1, g1, g1, g2, g2}, {1, 10}, DType::f64), 1e-9, 0,
              "1-d, baseline 1");
}

TEST_CASE("occlusion: 3-d windows with per-dim strides match occluding one window at a time") {
  const Tensor w1 = random_tensor({4, 2 * 6 * 5}, DType::f64, -0.5, 0.5, 51),
               b1 = random_tensor({4}, DType::f64, -1, 1, 52);
  const Tensor w2 = random_tensor({3, 4}, DType::f64, -1, 1, 53);
  const Tensor x = random_tensor({3, 2, 6, 5}, DType::f64, -1, 1, 54);
  const Tensor baseline = random_tensor({1, 2, 6, 5}, DType::f64, -0.3, 0.3, 55);
  const ForwardFn mlp = [=](const std::vector<Tensor>& in) {
    return linear(tanh(linear(flatten(in[0], 1), w1, b1)), w2);
  };
  const std::vector<int64_t> targets = {2, 0, 1};
  const Query q{mlp, {x}, Target::per_row(targets), Output::logit, {baseline}};
  const Tensor full_baseline = ops::contiguous(ops::expand(baseline, x.shape()));
  // Window (1, 3, 2), strides (1, 2, 2): 2 x 3 x 3 windows, the last ones along H and W clipped.
  const Tensor expected = reference_occlusion(mlp, {x}, {full_baseline}, {{1, 3, 2}}, {{1, 2, 2}}, targets)[0];
  for (int64_t per_eval : {1, 3, 0}) {
    const Attribution a =
        occlusion(q, {.windows = {{1, 3, 2}}, .strides = {{1, 2, 2}}, .perturbations_per_eval = per_eval});
    check_close(a.attributions[0], expected, 1e-12, 1e-10, "per_eval " + std::to_string(per_eval));
  }
  // One stride for every dim; a window over a whole dim (stride larger than it is allowed there).
  const Tensor one_stride = reference_occlusion(mlp, {x}, {full_baseline}, {{2, 2, 2}}, {{2, 2, 2}}, targets)[0];
  check_close(occlusion(q, {.windows = {{2, 2, 2}}, .strides = {{2}}}).attributions[0], one_stride, 1e-12, 1e-10,
              "one stride");
  const Tensor whole = reference_occlusion(mlp, {x}, {full_baseline}, {{2, 4, 5}}, {{7, 1, 9}}, targets)[0];
  check_close(occlusion(q, {.windows = {{2, 4, 5}}, .strides = {{7, 1, 9}}}).attributions[0], whole, 1e-12, 1e-10,
              "whole dims");
  // float32 inputs keep their dtype.
  const ForwardFn mlp32 = [=](const std::vector<Tensor>& in) {
    return linear(tanh(linear(flatten(in[0], 1), ops::to_dtype(w1, DType::f32), ops::to_dtype(b1, DType::f32))),
                  ops::to_dtype(w2, DType::f32));
  };
  const Attribution f32 = occlusion(Query{mlp32,
                                          {ops::to_dtype(x, DType::f32)},
                                          Target::per_row(targets),
                                          Output::logit,
                                          {ops::to_dtype(baseline, DType::f32)}},
                                    {.windows = {{1, 3, 2}}, .strides = {{1, 2, 2}}});
  CHECK(f32.attributions[0].dtype() == DType::f32);
  check_close(ops::to_dtype(f32.attributions[0], DType::f64), expected, 1e-5, 1e-4, "float32");
}

TEST_CASE("occlusion: several targets per row come from the same passes and equal each target alone") {
  const Tensor w1 = random_tensor({5, 12}, DType::f64, -1, 1, 61), b1 = random_tensor({5}, DType::f64, -1, 1, 62);
  const Tensor w2 = random_tensor({4, 5}, DType::f64, -1, 1, 63);
  const Tensor x = random_tensor({2, 3, 4}, DType::f64, -1, 1, 64);
  int64_t passes = 0;
  const ForwardFn model = [&](const std::vector<Tensor>& in) {
    ++passes;
    return linear(tanh(linear(flatten(in[0], 1), w1, b1)), w2);
  };
  const OcclusionOptions options{
      .windows = {{2, 2}}, .strides = {{1, 2}}, .perturbations_per_eval = 3};  // 2 x 2 windows
  for (Output output : {Output::logit, Output::softmax, Output::sigmoid}) {
    passes = 0;
    const Attribution many = occlusion(Query{model, {x}, Target::several({{0, 3, 1}, {2}}), output}, options);
    CHECK(passes == 2 * (1 + 2));  // per input row: the clean pass and ceil(4 / 3) chunks
    CHECK(many.rows == std::vector<int64_t>{0, 0, 0, 1});
    CHECK(many.targets == std::vector<int64_t>{0, 3, 1, 2});
    const std::vector<std::pair<int64_t, int64_t>> singles = {{0, 0}, {0, 3}, {0, 1}, {1, 2}};
    for (size_t r = 0; r < singles.size(); ++r) {
      const auto [row, target] = singles[r];
      const Attribution one = occlusion(Query{model, {ops::narrow(x, 0, row, 1)}, Target(target), output}, options);
      check_close(ops::narrow(many.attributions[0], 0, static_cast<int64_t>(r), 1), one.attributions[0], 1e-14, 1e-12,
                  "result row " + std::to_string(r));
    }
  }
}

TEST_CASE("occlusion: two inputs, windows of each in turn, baselines per input") {
  const Tensor w_image = random_tensor({4, 2 * 5 * 4}, DType::f64, -0.5, 0.5, 71);
  const Tensor w_features = random_tensor({4, 6}, DType::f64, -0.5, 0.5, 72);
  const Tensor w_out = random_tensor({3, 4}, DType::f64, -1, 1, 73);
  const ForwardFn model = two_input_model(w_image, w_features, w_out);
  const Tensor images = random_tensor({3, 2, 5, 4}, DType::f64, -1, 1, 74);
  const Tensor features = random_tensor({3, 6}, DType::f64, -1, 1, 75);
  const Tensor feature_baseline = random_tensor({3, 6}, DType::f64, -0.5, 0.5, 76);  // one per row
  const std::vector<int64_t> targets = {1, 0, 2};
  const Query q{model, {images, features}, Target::per_row(targets), Output::logit, {0.25, feature_baseline}};
  const std::vector<Tensor> expected =
      reference_occlusion(model, {images, features}, {full_like(images, 0.25), feature_baseline}, {{1, 2, 3}, {3}},
                          {{1, 2, 1}, {2}}, targets);
  // 2 x 3 x 2 image windows and 3 feature windows; chunks of 5 mix the two inputs' windows.
  for (int64_t per_eval : {1, 5, 0}) {
    const Attribution a =
        occlusion(q, {.windows = {{1, 2, 3}, {3}}, .strides = {{1, 2, 1}, {2}}, .perturbations_per_eval = per_eval});
    REQUIRE(a.attributions.size() == 2);
    check_close(a.attributions[0], expected[0], 1e-12, 1e-10, "images, per_eval " + std::to_string(per_eval));
    check_close(a.attributions[1], expected[1], 1e-12, 1e-10, "features, per_eval " + std::to_string(per_eval));
  }
  // An input with no dims beyond the batch: one window over its single value.
  const ForwardFn scalar_model = [=](const std::vector<Tensor>& in) {
    return ops::mul(model({in[0], in[1]}), ops::reshape(in[2], {-1, 1}));
  };
  const Tensor scale = random_tensor({3}, DType::f64, 0.5, 1.5, 77);
  const Attribution s = occlusion(Query{scalar_model, {images, features, scale}, Target::per_row(targets)},
                                  {.windows = {{2, 5, 4}, {6}, {}}});
  // Occluding the scale (baseline 0) removes the whole score; it is the scale's only window.
  const Tensor clean = explain::detail::target_scores(scalar_model({images, features, scale}), targets, Output::logit);
  CHECK(s.attributions[2].shape() == Shape{3});
  check_close(ops::to_dtype(s.attributions[2], DType::f64), ops::to_dtype(clean, DType::f64), 1e-12, 1e-12,
              "scalar input");
}

TEST_CASE("occlusion: bad windows, strides and knobs raise errors naming occlusion") {
  const Tensor w = random_tensor({3, 20}, DType::f64);
  const Tensor x = random_tensor({2, 4, 5}, DType::f64);
  const ForwardFn model = [=](const std::vector<Tensor>& in) { return linear(flatten(in[0], 1), w); };
  const Query q{model, {x}, Target(0)};
  auto fails = [&](const OcclusionOptions& options, const std::string& text) {
    CHECK_THROWS_WITH_AS(occlusion(q, options), doctest::Contains(text.c_str()), Error);
    CHECK_THROWS_WITH_AS(occlusion(q, options), doctest::Contains("occlusion"), Error);
  };
  fails({.windows = {}}, "0 window shapes for 1 inputs");
  fails({.windows = {{2, 2}, {2, 2}}}, "2 window shapes");
  fails({.windows = {{2}}}, "rank 1");
  fails({.windows = {{2, 2, 1}}}, "rank 3");
  fails({.windows = {{5, 2}}}, "does not fit");
  fails({.windows = {{0, 2}}}, "does not fit");
  fails({.windows = {{2, 2}}, .strides = {{0}}}, "must be >= 1");
  fails({.windows = {{2, 2}}, .strides = {{1, 3}}}, "larger than the window");
  fails({.windows = {{2, 2}}, .strides = {{1, 1, 1}}}, "3 numbers");
  fails({.windows = {{2, 2}}, .strides = {{1}, {1}}}, "2 stride entries");
  fails({.windows = {{2, 2}}, .perturbations_per_eval = -1}, "perturbations_per_eval");
}

}  // namespace loupe::test
