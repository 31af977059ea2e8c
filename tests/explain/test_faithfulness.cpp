// Faithfulness metrics (explain/evaluate/faithfulness.hpp) on models whose answers are known in
// closed form: a model that reads one pixel (deletion/insertion curves and their AUC), a linear
// model (infidelity, max-sensitivity, faithfulness correlation) and hand-made maps (region mass).
// Captum agreement with fixed perturbations: test_captum_metrics.cpp.
#include <doctest/doctest.h>

#include "explain/baselines.hpp"
#include "explain/evaluate/faithfulness.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;
namespace ev = explain::evaluate;

namespace {

constexpr int64_t kC = 2, kH = 4, kW = 4, kPy = 2, kPx = 1;

// f(x) = 3 * x[:, 1, 2, 1]: reads one pixel of one channel. (N, 2, 4, 4) -> (N).
ForwardFn one_pixel_model() {
  return [](const std::vector<Tensor>& in) {
    return ops::mul(ops::select(ops::select(ops::select(in[0], 1, 1), 1, kPy), 1, kPx), 3.0);
  };
}

// An attribution that ranks pixel (py, px) at position `rank` (0 = first) in decreasing order.
// Pixels get distinct values 100 - order, split over the two channels.
Tensor ranking_attribution(int64_t rank) {
  std::vector<double> v(static_cast<size_t>(kC * kH * kW));
  const int64_t target = kPy * kW + kPx;
  // order of pixels: the target goes to position `rank`, the others keep raster order around it.
  std::vector<int64_t> order;
  for (int64_t p = 0; p < kH * kW; ++p)
    if (p != target) order.push_back(p);
  order.insert(order.begin() + rank, target);
  for (size_t pos = 0; pos < order.size(); ++pos) {
    const double value = 100.0 - static_cast<double>(pos);
    v[static_cast<size_t>(order[pos])] = 0.25 * value;                 // channel 0
    v[static_cast<size_t>(kH * kW + order[pos])] = 0.75 * value;       // channel 1
  }
  return from_values(v, {1, kC, kH, kW}, DType::f64);
}

Tensor test_input() {
  Generator g(3);
  return ops::add(uniform({1, kC, kH, kW}, 0.0, 1.0, DType::f64, &g), 0.5);  // values in [0.5, 1.5]
}

double at(const Tensor& t, int64_t r, int64_t k) { return ops::select(ops::select(t, 0, r), 0, k).item(); }

}  // namespace

TEST_CASE("deletion/insertion: a one-pixel model drops exactly when its pixel goes (faith)") {
  const Tensor x = test_input();
  const double fx = 3.0 * ops::select(ops::select(ops::select(ops::select(x, 0, 0), 0, 1), 0, kPy), 0, kPx).item();
  const Query q{one_pixel_model(), {x}};
  const double u = kH * kW;
  for (int64_t rank : {0, 5, 15}) {
    CAPTURE(rank);
    const Attribution a{{ranking_attribution(rank)}, Tensor(), {0}, {-1}};
    // One step per pixel (steps = 0): the pixel goes at step rank + 1.
    const ev::Curve del = ev::deletion_curve(q, a, {.steps = 0});
    REQUIRE(del.scores.shape() == Shape{1, kH * kW + 1});
    REQUIRE(del.fractions.size() == static_cast<size_t>(kH * kW + 1));
    for (int64_t k = 0; k <= kH * kW; ++k) {
      CAPTURE(k);
      CHECK(del.fractions[static_cast<size_t>(k)] == doctest::Approx(static_cast<double>(k) / u));
      CHECK(at(del.scores, 0, k) == doctest::Approx(k <= rank ? fx : 0.0).epsilon(1e-12));
    }
    // AUC of a step from fx to 0 between fractions rank/U and (rank+1)/U: fx (2 rank + 1) / (2U).
    CHECK(del.auc.item() == doctest::Approx(fx * (2.0 * static_cast<double>(rank) + 1.0) / (2.0 * u)).epsilon(1e-12));
    // Insertion mirrors it: 0 until the pixel is put back, then fx.
    const ev::Curve ins = ev::insertion_curve(q, a, {.steps = 0});
    for (int64_t k = 0; k <= kH * kW; ++k) CHECK(at(ins.scores, 0, k) == doctest::Approx(k > rank ? fx : 0.0).epsilon(1e-12));
    CHECK(ins.auc.item() == doctest::Approx(fx * (1.0 - (2.0 * static_cast<double>(rank) + 1.0) / (2.0 * u))).epsilon(1e-12));
    CHECK(del.auc.item() + ins.auc.item() == doctest::Approx(fx));
  }
  // Coarser steps: 8 steps of 2 pixels; rank 5 goes in step 3 (pixels 4 and 5).
  const Attribution a5{{ranking_attribution(5)}, Tensor(), {0}, {-1}};
  const ev::Curve coarse = ev::deletion_curve(q, a5, {.steps = 8});
  for (int64_t k = 0; k <= 8; ++k) CHECK(at(coarse.scores, 0, k) == doctest::Approx(k < 3 ? fx : 0.0));
  // Chunking does not matter.
  for (int64_t per_eval : {1, 3}) {
    const ev::Curve chunked = ev::deletion_curve(q, a5, {.steps = 0, .perturbations_per_eval = per_eval});
    CHECK(chunked.auc.item() == doctest::Approx(ev::deletion_curve(q, a5, {.steps = 0}).auc.item()).epsilon(1e-14));
  }
}

TEST_CASE("deletion: baseline fill, blur fill and superpixel order (faith)") {
  const Tensor x = test_input();
  const Attribution a{{ranking_attribution(0)}, Tensor(), {0}, {-1}};
  // A baseline of 0.25: the score after removal is 3 * 0.25.
  Query q{one_pixel_model(), {x}};
  q.baselines = {0.25};
  const ev::Curve del = ev::deletion_curve(q, a, {.steps = 0});
  CHECK(at(del.scores, 0, 1) == doctest::Approx(0.75));
  // Blur fill: the removed pixel takes the blurred image's value there.
  const Tensor blurred = explain::gaussian_blur(x, 1.5);
  const double fill = 3.0 * ops::select(ops::select(ops::select(ops::select(blurred, 0, 0), 0, 1), 0, kPy), 0, kPx).item();
  const ev::Curve blur = ev::deletion_curve(q, a, {.steps = 0, .fill = ev::Fill::blur, .blur_sigma = 1.5});
  CHECK(at(blur.scores, 0, 1) == doctest::Approx(fill).epsilon(1e-12));
  CHECK(at(blur.scores, 0, 16) == doctest::Approx(fill).epsilon(1e-12));
  // Superpixels: 2x2 blocks (4 units). Block 2 (rows 2-3, cols 0-1) holds the pixel; rank it
  // second by giving the blocks attributions 1, 4, 3, 0 -> order 1, 2, 0, 3.
  const Tensor mask = from_values(std::vector<int64_t>{0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3}, {kH, kW});
  std::vector<double> per_block = {1, 4, 3, 0}, v;
  for (int64_t c = 0; c < kC; ++c)
    for (int64_t i = 0; i < kH * kW; ++i) v.push_back(per_block[static_cast<size_t>(to_vector<int64_t>(mask)[static_cast<size_t>(i)])] / 8.0);
  const Attribution blocks{{from_values(v, {1, kC, kH, kW}, DType::f64)}, Tensor(), {0}, {-1}};
  const ev::Curve sp = ev::deletion_curve(Query{one_pixel_model(), {x}}, blocks, {.steps = 0, .feature_mask = mask});
  REQUIRE(sp.scores.size(1) == 5);
  CHECK(at(sp.scores, 0, 1) > 0.0);
  CHECK(at(sp.scores, 0, 2) == 0.0);
  // Bad input names the metric.
  const Attribution wrong{{zeros({1, kC, kH, kW + 1}, DType::f64)}, Tensor(), {0}, {-1}};
  CHECK_THROWS_WITH_AS(ev::deletion_curve(q, wrong), doctest::Contains("deletion_curve"), Error);
}

TEST_CASE("deletion/insertion: several rows and targets (faith)") {
  // Linear model on 4 scalars, 2 classes; rows explained for different classes.
  const Tensor w = from_values(std::vector<double>{1, 2, 3, 4, -1, 0, 1, 0}, {2, 4}, DType::f64);
  const Tensor x = from_values(std::vector<double>{1, 1, 1, 1, 2, 1, 0.5, 3}, {2, 4}, DType::f64);
  const Query q{linear_model(w), {x}, Target::per_row({0, 1})};
  const Attribution a{{ops::mul(x, weight_rows(w, {0, 1}))}, Tensor(), {0, 1}, {0, 1}};
  const ev::Curve del = ev::deletion_curve(q, a, {.steps = 0});
  // Row 0: removes 4, 3, 2, 1 -> scores 10, 6, 3, 1, 0.
  const std::vector<double> row0 = {10, 6, 3, 1, 0};
  for (int64_t k = 0; k < 5; ++k) CHECK(at(del.scores, 0, k) == doctest::Approx(row0[static_cast<size_t>(k)]));
  // Row 1: attributions -2, 0, 0.5, 0 -> order 2, 1, 3, 0: scores -1.5, -2, -2, -2, 0.
  const std::vector<double> row1 = {-1.5, -2, -2, -2, 0};
  for (int64_t k = 0; k < 5; ++k) CHECK(at(del.scores, 1, k) == doctest::Approx(row1[static_cast<size_t>(k)]));
  CHECK(ev::trapezoid_auc({0, 0.5, 1}, {1, 1, 0}) == doctest::Approx(0.75));
}

TEST_CASE("infidelity: zero for the exact attribution of a linear model, positive otherwise (faith)") {
  Generator g(11);
  const Tensor w = normal({3, 6}, 0.0, 1.0, DType::f64, &g);
  const Tensor b = normal({3}, 0.0, 1.0, DType::f64, &g);
  const Tensor x = normal({2, 6}, 0.0, 1.0, DType::f64, &g);
  const Query q{linear_model(w, b), {x}, Target::per_row({2, 0})};
  const Tensor grad = weight_rows(w, {2, 0});
  const Attribution gradient{{grad}, Tensor(), {0, 1}, {2, 0}};
  const Attribution times_input{{ops::mul(grad, x)}, Tensor(), {0, 1}, {2, 0}};
  // Gaussian perturbations: f(x) - f(x - I) = w . I, so the gradient w is exact (Captum's
  // convention: the model sees x - I and the attribution is dotted with I).
  Generator noise(5);
  const Tensor inf_grad = ev::infidelity(q, gradient, {.n_samples = 20, .generator = &noise});
  for (double v : values(inf_grad)) CHECK(v < 1e-24);
  const Tensor inf_wx = ev::infidelity(q, times_input, {.n_samples = 20, .generator = &noise});
  for (double v : values(inf_wx)) CHECK(v > 1e-3);
  // Subset perturbations I = z (x - x'): x - I puts the baseline on the removed features, and
  // f(x) - f(x - I) = sum_z w (x - x'). Dotted with I itself the gradient w is exact; with
  // Captum's multiply_by_inputs (I / (x - x') = z) it is w * (x - x'). Here with a baseline of 0.5.
  Query shifted = q;
  shifted.baselines = {0.5};
  const Attribution diff{{ops::mul(grad, ops::sub(x, 0.5))}, Tensor(), {0, 1}, {2, 0}};
  const ev::InfidelityOptions subset{.noise = ev::InfidelityNoise::subset, .generator = &noise};
  ev::InfidelityOptions subset_inputs = subset;
  subset_inputs.multiply_by_inputs = true;
  for (double v : values(ev::infidelity(shifted, gradient, subset))) CHECK(v < 1e-24);
  for (double v : values(ev::infidelity(shifted, diff, subset))) CHECK(v > 1e-3);
  for (double v : values(ev::infidelity(shifted, diff, subset_inputs))) CHECK(v < 1e-24);
  for (double v : values(ev::infidelity(shifted, gradient, subset_inputs))) CHECK(v > 1e-3);
  // Normalize: a rescaled exact attribution (2 w) is exact again once beta (= 1/2) is applied.
  const Attribution doubled{{ops::mul(grad, 2.0)}, Tensor(), {0, 1}, {2, 0}};
  for (double v : values(ev::infidelity(q, doubled, {.generator = &noise}))) CHECK(v > 1e-3);
  for (double v : values(ev::infidelity(q, doubled, {.normalize = true, .generator = &noise}))) CHECK(v < 1e-12);
}

TEST_CASE("max-sensitivity and faithfulness correlation on a linear model (faith)") {
  Generator g(12);
  const Tensor w = normal({2, 5}, 0.0, 1.0, DType::f64, &g);
  const Tensor x = ops::add(uniform({3, 5}, 0.0, 1.0, DType::f64, &g), 1.0);
  const Query q{linear_model(w), {x}, Target::per_row({1, 0, 1})};
  // The gradient of a linear model does not move: sensitivity 0.
  const Method grad = [](const Query& query) { return saliency(query, {.absolute = false}); };
  for (double v : values(ev::sensitivity_max(q, grad, {.generator = &g}))) CHECK(v == 0.0);
  // Input x gradient moves by w * d: with fixed noise the max ratio is known.
  const Method ixg = [](const Query& query) { return input_x_gradient(query); };
  const Tensor noise = uniform({3 * 4, 5}, -0.02, 0.02, DType::f64, &g);
  const Tensor sens = ev::sensitivity_max(q, ixg, {.n_samples = 4, .noise = noise});
  const std::vector<int64_t> targets = {1, 0, 1};
  for (int64_t r = 0; r < 3; ++r) {
    const Tensor wr = ops::select(w, 0, targets[static_cast<size_t>(r)]);
    const double base = std::sqrt(ops::sum(ops::square(ops::mul(wr, ops::select(x, 0, r)))).item());
    double best = 0;
    for (int64_t s = 0; s < 4; ++s)
      best = std::max(best, std::sqrt(ops::sum(ops::square(ops::mul(wr, ops::select(noise, 0, r * 4 + s)))).item()) / base);
    CHECK(ops::select(sens, 0, r).item() == doctest::Approx(best).epsilon(1e-12));
  }
  // Faithfulness correlation: w * x with the zero baseline sums exactly to each subset's score
  // drop (correlation 1); its negative gives -1; a constant attribution gives NaN.
  const Tensor exact = ops::mul(weight_rows(w, targets), x);
  const Attribution good{{exact}, Tensor(), {0, 1, 2}, targets};
  const Attribution bad{{ops::neg(exact)}, Tensor(), {0, 1, 2}, targets};
  for (double v : values(ev::faithfulness_correlation(q, good, {.n_samples = 20, .subset_fraction = 0.4, .generator = &g})))
    CHECK(v == doctest::Approx(1.0).epsilon(1e-9));
  for (double v : values(ev::faithfulness_correlation(q, bad, {.n_samples = 20, .subset_fraction = 0.4, .generator = &g})))
    CHECK(v == doctest::Approx(-1.0).epsilon(1e-9));
}

TEST_CASE("region_mass: exact shares of a hand-made map (faith)") {
  // 20x20, border 2 pixels (36% of the area), centre box rows/cols [3, 17) (49%).
  std::vector<double> v(2 * 20 * 20, 0.0);
  v[0 * 20 + 0] = 2.0;                 // channel 0, corner: border
  v[400 + 0 * 20 + 0] = -1.0;          // channel 1, same pixel: |.| adds 1 -> border 3
  v[10 * 20 + 10] = 5.0;               // centre
  v[400 + 2 * 20 + 10] = -2.0;         // row 2: neither border (rows 0-1) nor the box (rows 3-16)
  const Tensor a = from_values(v, {1, 2, 20, 20}, DType::f64);
  const ev::RegionShares s = ev::region_mass(a);
  CHECK(s.border.item() == doctest::Approx(0.3));
  CHECK(s.centre.item() == doctest::Approx(0.5));
  CHECK(s.border_area == doctest::Approx(0.36));
  CHECK(s.centre_area == doctest::Approx(0.49));
  // A uniform map gives the area shares; an all-zero map gives NaN.
  const ev::RegionShares u = ev::region_mass(ones({2, 1, 20, 20}, DType::f64));
  CHECK(ops::select(u.border, 0, 1).item() == doctest::Approx(0.36));
  CHECK(ops::select(u.centre, 0, 0).item() == doctest::Approx(0.49));
  CHECK(std::isnan(ev::region_mass(zeros({1, 20, 20}, DType::f64)).border.item()));
  CHECK_THROWS_WITH_AS(ev::region_mass(zeros({20, 20})), doctest::Contains("region_mass"), Error);
}

}  // namespace loupe::test
