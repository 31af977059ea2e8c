// loupe's perturbation methods against Captum's, on the fixtures written by
// tests/fixtures/explain/make_perturbation_fixtures.py (one function per method there, one test
// case per method here): the small CNN of the gradient fixtures (3 rows, targets 1, 2, 0; Captum
// ran it in float64) and a float64 model of two inputs.
//
// Tolerances, as a fraction of the result's largest |value| (max |loupe - captum| / max |captum|):
// 1e-6 in float64 (Captum returns occlusion rounded to float32, about 6e-8 relative, which is all
// that differs; the errors seen are 3e-8 to 6e-8). The CNN also runs in float32 against the same
// references, at 1e-4: occlusion takes differences of scores, and float32 scores (rounded at
// about 1e-7 of their size) blur small differences; the errors seen are about 2e-6 for logits
// and 2e-5 for softmax probabilities, whose gaps are small next to the probabilities.
#include <doctest/doctest.h>

#include "tests/explain/captum_fixture.hpp"

namespace loupe::test {

using namespace explain_util;
using namespace captum_fixture;

namespace {

void compare(const std::string& what, const Tensor& loupe, const Tensor& captum, double rtol) {
  const Tensor l = ops::to_dtype(ops::to_device(loupe, Device::cpu()), DType::f64);
  const Tensor c = ops::to_dtype(captum, DType::f64);
  REQUIRE(l.shape() == c.shape());
  const double err = max_relative_error(l, c);
  CHECK_MESSAGE(err <= rtol, what << " differs from Captum by " << err << " of its scale (allowed " << rtol << ")");
  MESSAGE(what << ": " << err << " of the scale");
}

// The fixture's weights in float64.
Fixture in_f64(Fixture f) {
  for (auto& [name, w] : f.weights) w = ops::to_dtype(w, DType::f64);
  return f;
}

}  // namespace

TEST_CASE("Captum agreement: occlusion (windows, strides, baselines, softmax, two inputs)") {
  const Fixture f32 = load_fixture("cnn");
  const Fixture f64 = in_f64(f32);
  for (const Fixture* f : {&f64, &f32}) {
    const DType dtype = f == &f64 ? DType::f64 : DType::f32;
    const double rtol = f == &f64 ? 1e-6 : 1e-4;
    const std::string tag = f == &f64 ? " (float64)" : " (float32)";
    const Query q{small_cnn(*f), {ops::to_dtype(f->npy("input"), dtype)}, Target::per_row({1, 2, 0})};
    compare("occlusion (3, 3, 3)" + tag, occlusion(q, {.windows = {{3, 3, 3}}}).attributions[0],
            f->npy("occlusion_w333"), rtol);

    Query half = q;
    half.baselines = {0.5};
    compare(
        "occlusion (2, 3, 3) strides (1, 2, 2) baseline 0.5" + tag,
        occlusion(half, {.windows = {{2, 3, 3}}, .strides = {{1, 2, 2}}, .perturbations_per_eval = 4}).attributions[0],
        f->npy("occlusion_w233_s122_half"), rtol);

    Query tensor_baseline = q;
    tensor_baseline.baselines = {f->npy("baseline")};  // (1, 3, 10, 10) float32: follows the input's dtype
    compare("occlusion (3, 4, 4) stride 4 tensor baseline" + tag,
            occlusion(tensor_baseline, {.windows = {{3, 4, 4}}, .strides = {{4}}, .perturbations_per_eval = 1})
                .attributions[0],
            f->npy("occlusion_w344_s4_baseline"), rtol);

    Query prob = q;
    prob.output = Output::softmax;
    compare("occlusion (3, 2, 2) stride 2 softmax" + tag,
            occlusion(prob, {.windows = {{3, 2, 2}}, .strides = {{2}}}).attributions[0],
            f->npy("occlusion_w322_s2_softmax"), rtol);
  }

  // Two inputs, float64: images (4, 2, 5, 4) baseline 0.25, features (4, 6) one baseline row each.
  const Fixture& f = f32;
  const Tensor w_image = f.array("two_w_image"), w_features = f.array("two_w_features"), w_out = f.array("two_w_out");
  const ForwardFn two = [&](const std::vector<Tensor>& in) {
    return linear(tanh(add(linear(flatten(in[0], 1), w_image), linear(in[1], w_features))), w_out);
  };
  const Query q2{two,
                 {f.array("two_images"), f.array("two_features")},
                 Target::per_row({1, 0, 2, 2}),
                 Output::logit,
                 {0.25, f.array("two_feature_baseline")}};
  const Attribution a = occlusion(q2, {.windows = {{1, 2, 3}, {3}}, .strides = {{1, 2, 1}, {2}}});
  CHECK(a.attributions[0].dtype() == DType::f64);
  compare("two inputs: images", a.attributions[0], f.array("two_occlusion_images"), 1e-6);
  compare("two inputs: features", a.attributions[1], f.array("two_occlusion_features"), 1e-6);
}

}  // namespace loupe::test
