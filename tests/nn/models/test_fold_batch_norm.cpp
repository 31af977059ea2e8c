// Batch-norm folding (nn/fold_batch_norm.hpp): which pairs fold, that the folded model computes
// the same outputs, and that every gradient- and rule-based attribution is unchanged to 1e-5 of
// its scale on ResNet18 and DenseNet-121 with non-trivial batch-norm statistics.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "explain/explain.hpp"
#include "nn/fold_batch_norm.hpp"
#include "nn/layers/layers.hpp"
#include "nn/models/zoo.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// Running statistics and affine parameters far from the identity, so a wrong fold shows.
void randomize_batch_norms(nn::Module& model, uint64_t seed) {
  NoGradGuard no_grad;
  uint64_t s = seed;
  for (auto& [name, m] : model.named_modules()) {
    auto* bn = dynamic_cast<nn::BatchNorm2d*>(m);
    if (bn == nullptr) continue;
    const Shape c = {bn->num_features()};
    ops::copy_(bn->running_mean, random_tensor(c, DType::f32, -0.5, 0.5, ++s));
    ops::copy_(bn->running_var, random_tensor(c, DType::f32, 0.3, 2.0, ++s));
    ops::copy_(bn->weight, random_tensor(c, DType::f32, 0.5, 1.5, ++s));
    ops::copy_(bn->bias, random_tensor(c, DType::f32, -0.3, 0.3, ++s));
  }
}

// Two copies of the same model in eval mode: the second one folded.
struct Pair {
  std::string name;
  std::shared_ptr<nn::Module> plain, folded;
  nn::FoldReport report;
};

// A float64 copy of `model` (a zoo model called `name`), in eval mode.
std::shared_ptr<nn::Module> clone_as_f64(const nn::Module& model, const std::string& name) {
  auto copy = nn::make_model(name, 10, 3);
  copy->load_state_dict(model.state_dict());
  for (auto [key, t] : copy->named_parameters()) t.set_data(ops::to_dtype(t, DType::f64));
  for (auto [key, t] : copy->named_buffers()) {
    if (t.dtype() == DType::f32) t.set_data(ops::to_dtype(t, DType::f64));
  }
  copy->eval();
  return copy;
}

Pair make_pair(const char* name, const Shape& input_shape) {
  Pair p;
  p.name = name;
  Generator gen(5);
  p.plain = nn::make_model(name, 10, 3, &gen);
  randomize_batch_norms(*p.plain, 40);
  p.plain->eval();
  p.folded = nn::make_model(name, 10, 3, &gen);
  p.folded->load_state_dict(p.plain->state_dict());
  p.folded->eval();
  p.report = nn::fold_batch_norms(*p.folded, zeros(input_shape));
  return p;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : values(t)) m = std::max(m, std::abs(v));
  return m;
}

// |a - b| <= 1e-5 max|a| everywhere.
void check_same_attribution(const explain::Attribution& a, const explain::Attribution& b, const std::string& what) {
  CAPTURE(what);
  REQUIRE(a.attributions.size() == b.attributions.size());
  const double scale = max_abs(a.attributions[0]);
  CHECK(scale > 0);
  const double diff = max_abs_diff(a.attributions[0], b.attributions[0]);
  MESSAGE(what << ": max |folded - unfolded| " << diff / scale << " of scale");
  CHECK(diff <= 1e-5 * scale);
}

void check_attributions(const Pair& p, const Shape& input_shape) {
  namespace ex = explain;
  const Tensor x = random_tensor(input_shape, DType::f32, -1.0, 1.0, 3);
  auto query = [&](nn::Module& m) { return ex::Query{ex::as_forward(m), {x}, ex::Target(3), ex::Output::logit}; };
  auto both = [&](const std::string& what, const ex::Method& method) {
    check_same_attribution(method(query(*p.plain)), method(query(*p.folded)), what);
  };
  both("saliency", [](const ex::Query& q) { return ex::saliency(q); });
  both("input x gradient", [](const ex::Query& q) { return ex::input_x_gradient(q); });
  both("integrated gradients", [](const ex::Query& q) { return ex::integrated_gradients(q, {.n_steps = 6}); });
  both("smoothgrad", [](const ex::Query& q) {
    Generator gen(9);  // the same noise for both models
    ex::NoiseTunnelOptions o;
    o.n_samples = 4;
    o.stdevs = {0.2};
    o.generator = &gen;
    return ex::noise_tunnel(q, [](const ex::Query& qq) { return ex::saliency(qq); }, o);
  });
  both("guided backprop", [](const ex::Query& q) { return ex::guided_backprop(q); });
  both("deconvolution", [](const ex::Query& q) { return ex::deconvolution(q); });
  // DeepLIFT's rescale rule divides by x - x' at every ReLU, so units where input and baseline give
  // nearly the same pre-activation turn the last bits of x and x' into visible changes of their
  // multiplier: any change of float rounding moves its attributions more than a gradient's. So
  // the transform is checked exactly in float64 (the same function: 1e-10 of scale), and in
  // float32 folding must not take DeepLIFT further from the float64 truth than the unfolded
  // model already is (at most 2x its error, and 3e-5 of scale between the two).
  const auto deeplift = [&](nn::Module& m, const Tensor& input) {
    return ex::deeplift(ex::Query{ex::as_forward(m), {input}, ex::Target(3), ex::Output::logit}).attributions[0];
  };
  const Tensor plain32 = deeplift(*p.plain, x), folded32 = deeplift(*p.folded, x);
  const Shape model_input = {1, input_shape[1], input_shape[2], input_shape[3]};
  auto plain64 = clone_as_f64(*p.plain, p.name), folded64 = clone_as_f64(*p.plain, p.name);
  const nn::FoldReport report64 = nn::fold_batch_norms(*folded64, zeros(model_input, DType::f64));
  CHECK(report64.folded.size() == p.report.folded.size());
  const Tensor x64 = ops::to_dtype(x, DType::f64);
  const Tensor truth = deeplift(*plain64, x64), folded_truth = deeplift(*folded64, x64);
  const double scale = max_abs(truth);
  const double exact = max_abs_diff(truth, folded_truth) / scale;
  const double plain_error = max_abs_diff(plain32, truth) / scale, folded_error = max_abs_diff(folded32, truth) / scale;
  const double between = max_abs_diff(plain32, folded32) / scale;
  MESSAGE("deeplift: float64 folded vs unfolded " << exact << " of scale; float32 vs the float64 truth: unfolded "
                                                  << plain_error << ", folded " << folded_error << "; between them "
                                                  << between);
  CHECK(exact <= 1e-10);
  CHECK(folded_error <= 2 * plain_error + 1e-6);
  CHECK(between <= 3e-5);
}

}  // namespace

TEST_CASE("fold_batch_norms: ResNet18 folds all 20 batch norms, same outputs and attributions") {
  const Shape shape = {2, 3, 64, 64};
  const Pair p = make_pair("resnet18", shape);
  CHECK(p.report.folded.size() == 20);
  CHECK(p.report.kept.empty());
  CHECK(p.report.folded.front().convolution == "conv1");
  CHECK(p.report.folded.front().batch_norm == "bn1");
  const Tensor x = random_tensor(shape, DType::f32, -1.0, 1.0, 2);
  NoGradGuard no_grad;
  const Tensor y0 = (*p.plain)(x), y1 = (*p.folded)(x);
  CHECK(max_abs_diff(y0, y1) <= 1e-5 * max_abs(y0));
  check_attributions(p, {1, 3, 64, 64});
}

TEST_CASE("fold_batch_norms: DenseNet-121 folds norm0 and each dense layer's norm2, keeps the norms before convolutions") {
  const Shape shape = {1, 3, 32, 32};
  const Pair p = make_pair("densenet121", shape);
  REQUIRE(p.report.folded.size() == 59);  // norm0 + norm2 of the 58 dense layers (after their 1x1 conv1)
  CHECK(p.report.folded[0].convolution == "features.conv0");
  CHECK(p.report.folded[0].batch_norm == "features.norm0");
  CHECK(p.report.folded[1].convolution == "features.denseblock1.denselayer1.conv1");
  CHECK(p.report.folded[1].batch_norm == "features.denseblock1.denselayer1.norm2");
  CHECK(p.report.kept.size() == 62);  // each dense layer's norm1, 3 transitions' norm, norm5: inputs are concatenations
  const Tensor x = random_tensor(shape, DType::f32, -1.0, 1.0, 2);
  NoGradGuard no_grad;
  const Tensor y0 = (*p.plain)(x), y1 = (*p.folded)(x);
  CHECK(max_abs_diff(y0, y1) <= 1e-5 * max_abs(y0));
  check_attributions(p, shape);
}

namespace {
// conv -> bn, but the convolution's raw output is also added to the result: not foldable.
class ReusedConvOutput : public nn::Module {
 public:
  ReusedConvOutput() {
    Generator gen(3);
    conv_ = register_module("conv", std::make_shared<nn::Conv2d>(2, 2, 3, nn::Conv2dOptions{.padding = {1, 1}}, &gen));
    bn_ = register_module("bn", std::make_shared<nn::BatchNorm2d>(2));
    bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(2));
    conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(2, 2, 1, nn::Conv2dOptions{}, &gen));
  }
  Tensor forward(const Tensor& x) override {
    const Tensor h = (*conv_)(x);
    return (*bn2_)((*conv2_)((*bn_)(h) + h));  // bn2 after conv2 (which has a bias) folds
  }

 private:
  std::shared_ptr<nn::Conv2d> conv_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn_, bn2_;
};
}  // namespace

TEST_CASE("fold_batch_norms: a reused convolution output stays; a convolution with bias folds; errors") {
  ReusedConvOutput plain, folded;
  randomize_batch_norms(plain, 70);
  folded.load_state_dict(plain.state_dict());
  plain.eval();
  folded.eval();
  const Tensor x = random_tensor({2, 2, 5, 5}, DType::f32, -1.0, 1.0, 4);
  const nn::FoldReport report = nn::fold_batch_norms(folded, x);
  REQUIRE(report.folded.size() == 1);
  CHECK(report.folded[0].convolution == "conv2");
  CHECK(report.folded[0].batch_norm == "bn2");
  REQUIRE(report.kept.size() == 1);
  CHECK(report.kept[0] == "bn: the convolution's output is used elsewhere too");
  NoGradGuard no_grad;
  CHECK(max_abs_diff(plain(x), folded(x)) <= 1e-6);
  // A folded model refuses training; folding refuses a model in training mode.
  folded.train();
  CHECK_THROWS_WITH_AS(folded(x), doctest::Contains("folded into the preceding convolution"), Error);
  ReusedConvOutput training;
  CHECK_THROWS_WITH_AS(nn::fold_batch_norms(training, x), doctest::Contains("training mode"), Error);
}

}  // namespace loupe::test
