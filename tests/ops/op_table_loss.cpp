// Op table entries: cross_entropy, nll_loss, binary_cross_entropy_with_logits, mse_loss, l1_loss,
// smooth_l1_loss over their options (reduction, ignore_index, label_smoothing, class weights,
// pos_weight, beta, extra spatial dims), plus TEST_CASEs for known values, all-ignored batches,
// large logits and error cases. References are plain f64 loops written from PyTorch's definitions.
#include <cmath>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

// --- references ---

Tensor ref_reduce(const std::vector<double>& loss, const Shape& shape, Reduction r) {
  if (r == Reduction::none) return ref::make(loss, shape);
  double total = 0.0;
  for (double v : loss) total += v;
  if (r == Reduction::mean) total /= static_cast<double>(loss.size());
  return ref::make({total}, {});
}

// PyTorch's cross_entropy / nll_loss with class-index targets, written as torch does it:
// nll = nll_loss(log_softmax(x), ...); smooth = -sum_c w_c * logp_c; the two mixed by eps.
// `weight` empty = no class weights. input (N, C, d...) or (C).
Tensor ref_class_loss(const Tensor& input, const Tensor& target, const std::vector<double>& weight,
                      Reduction reduction, int64_t ignore_index, double eps, bool from_logits) {
  const Shape& s = input.shape();
  const bool unbatched = s.size() == 1;
  const int64_t n = unbatched ? 1 : s[0];
  const int64_t c = unbatched ? s[0] : s[1];
  int64_t d = 1;
  for (size_t i = 2; i < s.size(); ++i) d *= s[i];
  const auto x = values(input);
  const auto t = to_vector<int64_t>(target);
  auto w = [&](int64_t k) { return weight.empty() ? 1.0 : weight[static_cast<size_t>(k)]; };
  std::vector<double> nll(static_cast<size_t>(n * d), 0.0), smooth(nll.size(), 0.0);
  double nll_den = 0.0, smooth_den = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      const size_t p = static_cast<size_t>(i * d + j);
      if (t[p] == ignore_index) continue;
      std::vector<double> logp(static_cast<size_t>(c));
      double z = 0.0;
      for (int64_t k = 0; k < c; ++k) z += std::exp(x[static_cast<size_t>((i * c + k) * d + j)]);
      for (int64_t k = 0; k < c; ++k) {
        const double v = x[static_cast<size_t>((i * c + k) * d + j)];
        logp[static_cast<size_t>(k)] = from_logits ? v - std::log(z) : v;
      }
      nll[p] = -w(t[p]) * logp[static_cast<size_t>(t[p])];
      for (int64_t k = 0; k < c; ++k) smooth[p] -= w(k) * logp[static_cast<size_t>(k)];
      nll_den += w(t[p]);
      smooth_den += weight.empty() ? 1.0 : w(t[p]);
    }
  }
  const double per_class = eps / static_cast<double>(c);
  if (reduction == Reduction::none) {
    std::vector<double> out(nll.size());
    for (size_t p = 0; p < out.size(); ++p) out[p] = (1 - eps) * nll[p] + per_class * smooth[p];
    return ref::make(out, target.shape());
  }
  double nll_sum = 0.0, smooth_sum = 0.0;
  for (size_t p = 0; p < nll.size(); ++p) {
    nll_sum += nll[p];
    smooth_sum += smooth[p];
  }
  if (reduction == Reduction::mean) {
    nll_sum /= nll_den;
    smooth_sum /= smooth_den;
  }
  return ref::make({(1 - eps) * nll_sum + per_class * smooth_sum}, {});
}

// -[pw * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))], pos_weight over the last dim.
Tensor ref_bce(const Tensor& logits, const Tensor& target, const std::vector<double>& pos_weight, Reduction r) {
  const auto x = values(logits), y = values(target);
  const int64_t last = logits.shape().back();
  std::vector<double> loss(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double pw = pos_weight.empty() ? 1.0 : pos_weight[i % static_cast<size_t>(last)];
    const double sig = 1.0 / (1.0 + std::exp(-x[i]));
    loss[i] = -(pw * y[i] * std::log(sig) + (1 - y[i]) * std::log(1 - sig));
  }
  return ref_reduce(loss, logits.shape(), r);
}

Tensor ref_pointwise(const Tensor& input, const Tensor& target, Reduction r, const std::function<double(double)>& f) {
  const auto a = values(input), b = values(target);
  std::vector<double> loss(a.size());
  for (size_t i = 0; i < a.size(); ++i) loss[i] = f(a[i] - b[i]);
  return ref_reduce(loss, input.shape(), r);
}

const char* reduction_label(Reduction r) {
  return r == Reduction::none ? "none" : (r == Reduction::sum ? "sum" : "mean");
}

// --- class-index entries ---

struct ClassConfig {
  Shape input_shape;  // (N, C, d...) or (C)
  Reduction reduction = Reduction::mean;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  std::vector<double> weight;          // empty = none
  std::vector<int64_t> ignored_at;     // positions whose target is set to ignore_index
};

Tensor class_targets(const ClassConfig& cfg) {
  const Shape& s = cfg.input_shape;
  Shape target_shape;
  if (s.size() > 1) {
    target_shape.push_back(s[0]);
    for (size_t i = 2; i < s.size(); ++i) target_shape.push_back(s[i]);
  }
  const int64_t classes = s.size() > 1 ? s[1] : s[0];
  auto t = to_vector<int64_t>(random_indices(target_shape, 0, classes, 131));
  for (int64_t p : cfg.ignored_at) t[static_cast<size_t>(p)] = cfg.ignore_index;
  return from_values(t, target_shape);
}

OpCase class_case(const std::string& name, ClassConfig cfg, bool from_logits) {
  OpCase c;
  c.name = std::string(from_logits ? "cross_entropy/" : "nll_loss/") + name + " " + reduction_label(cfg.reduction);
  c.make_inputs = [cfg, from_logits](DType dtype) {
    // nll_loss is linear in its input: any values do; log-probabilities look like these.
    return Inputs{random_tensor(cfg.input_shape, dtype, from_logits ? -2.0 : -3.0, from_logits ? 2.0 : -0.1, 132),
                  class_targets(cfg)};
  };
  c.op = [cfg, from_logits](const Inputs& in) {
    CrossEntropyOptions o;
    o.reduction = cfg.reduction;
    o.ignore_index = cfg.ignore_index;
    o.label_smoothing = cfg.label_smoothing;
    // Class weights are constants (no gradient): built here rather than passed as an input, on
    // the input's device (the CUDA suite runs the same entries on the GPU).
    if (!cfg.weight.empty()) {
      o.weight = ops::to_device(from_values(cfg.weight, {static_cast<int64_t>(cfg.weight.size())}, in[0].dtype()),
                                in[0].device());
    }
    return from_logits ? cross_entropy(in[0], in[1], o) : nll_loss(in[0], in[1], o);
  };
  c.reference = [cfg, from_logits](const Inputs& in) {
    return ref_class_loss(in[0], in[1], cfg.weight, cfg.reduction, cfg.ignore_index, cfg.label_smoothing, from_logits);
  };
  if (cfg.input_shape.size() > 1) {
    c.make_empty_inputs = [cfg](DType dtype) {
      Shape s = cfg.input_shape;
      s[0] = 0;
      Shape ts{0};
      for (size_t i = 2; i < s.size(); ++i) ts.push_back(s[i]);
      return Inputs{zeros(s, dtype), zeros(ts, DType::i64)};
    };
  }
  return c;
}

// --- float-target entries ---

OpCase bce_case(const std::string& name, Shape shape, std::vector<double> pos_weight, Reduction r) {
  OpCase c;
  c.name = "binary_cross_entropy_with_logits/" + name + " " + reduction_label(r);
  c.make_inputs = [shape](DType dtype) {
    // Soft targets in [0, 1] so the target gradient is exercised everywhere.
    return Inputs{random_tensor(shape, dtype, -3, 3, 141), random_tensor(shape, dtype, 0, 1, 142)};
  };
  c.make_empty_inputs = [shape](DType dtype) {
    Shape s = shape;
    s[0] = 0;
    return Inputs{zeros(s, dtype), zeros(s, dtype)};
  };
  c.op = [pos_weight, r](const Inputs& in) {
    const int64_t n = static_cast<int64_t>(pos_weight.size());
    // On the logits' device (the CUDA suite runs the same entries on the GPU).
    const Tensor pw =
        pos_weight.empty() ? Tensor() : ops::to_device(from_values(pos_weight, {n}, in[0].dtype()), in[0].device());
    return binary_cross_entropy_with_logits(in[0], in[1], pw, r);
  };
  c.reference = [pos_weight, r](const Inputs& in) { return ref_bce(in[0], in[1], pos_weight, r); };
  return c;
}

OpCase pointwise_case(const std::string& name, std::function<Tensor(const Tensor&, const Tensor&)> op,
                      std::function<double(double)> f, Reduction r) {
  OpCase c;
  c.name = name + " " + reduction_label(r);
  c.make_inputs = [](DType dtype) {
    return Inputs{random_tensor({3, 4}, dtype, -2, 2, 151), random_tensor({3, 4}, dtype, -2, 2, 152)};
  };
  c.make_empty_inputs = [](DType dtype) { return Inputs{zeros({0, 4}, dtype), zeros({0, 4}, dtype)}; };
  c.op = [op](const Inputs& in) { return op(in[0], in[1]); };
  c.reference = [f, r](const Inputs& in) { return ref_pointwise(in[0], in[1], r, f); };
  return c;
}

double smooth_l1_ref(double d, double beta) {
  const double a = std::abs(d);
  return a < beta ? 0.5 * d * d / beta : a - 0.5 * beta;
}

std::vector<OpCase> loss_cases() {
  std::vector<OpCase> cases;
  const std::vector<double> w4{0.3, 1.0, 2.0, 0.7};
  const std::vector<double> w3{1.5, 0.5, 1.0};
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    cases.push_back(class_case("(N, C)", {.input_shape = {5, 4}, .reduction = r}, true));
    cases.push_back(class_case("(N, C, d1, d2) weight", {.input_shape = {2, 3, 2, 2}, .reduction = r, .weight = w3},
                               true));
    cases.push_back(class_case("ignore_index -100", {.input_shape = {6, 4}, .reduction = r, .ignored_at = {1, 4}},
                               true));
    cases.push_back(class_case("weight + ignore_index 2 + smoothing 0.2",
                               {.input_shape = {6, 4},
                                .reduction = r,
                                .ignore_index = 2,
                                .label_smoothing = 0.2,
                                .weight = w4,
                                .ignored_at = {0, 3}},
                               true));
    cases.push_back(class_case("(N, C, d) smoothing 0.1",
                               {.input_shape = {2, 4, 3}, .reduction = r, .label_smoothing = 0.1}, true));
    cases.push_back(class_case("(N, C, d) weight + ignore + smoothing 0.3",
                               {.input_shape = {2, 3, 4},
                                .reduction = r,
                                .label_smoothing = 0.3,
                                .weight = w3,
                                .ignored_at = {5}},
                               true));
    cases.push_back(class_case("(N, C)", {.input_shape = {5, 4}, .reduction = r}, false));
    cases.push_back(class_case("(N, C, d) weight + ignore_index 1",
                               {.input_shape = {3, 4, 2}, .reduction = r, .ignore_index = 1, .weight = w4,
                                .ignored_at = {2}},
                               false));
    cases.push_back(bce_case("(N, C)", {4, 3}, {}, r));
    cases.push_back(bce_case("(N, C) pos_weight", {4, 3}, {0.5, 2.0, 3.0}, r));
    cases.push_back(bce_case("(N, H, C) pos_weight", {2, 3, 4}, {1.5, 0.25, 1.0, 4.0}, r));
    cases.push_back(pointwise_case("mse_loss", [r](const Tensor& a, const Tensor& b) { return mse_loss(a, b, r); },
                                   [](double d) { return d * d; }, r));
    cases.push_back(pointwise_case("l1_loss", [r](const Tensor& a, const Tensor& b) { return l1_loss(a, b, r); },
                                   [](double d) { return std::abs(d); }, r));
    cases.push_back(pointwise_case(
        "smooth_l1_loss/beta 1", [r](const Tensor& a, const Tensor& b) { return smooth_l1_loss(a, b, r); },
        [](double d) { return smooth_l1_ref(d, 1.0); }, r));
  }
  // Options that do not interact with the reduction: one entry each.
  cases.push_back(class_case("unbatched (C)", {.input_shape = {5}}, true));
  cases.push_back(class_case("unbatched (C) smoothing 0.1", {.input_shape = {5}, .reduction = Reduction::none,
                                                             .label_smoothing = 0.1},
                             true));
  cases.push_back(class_case("smoothing 1.0", {.input_shape = {4, 3}, .label_smoothing = 1.0, .weight = w3}, true));
  cases.push_back(pointwise_case(
      "smooth_l1_loss/beta 0.5",
      [](const Tensor& a, const Tensor& b) { return smooth_l1_loss(a, b, Reduction::mean, 0.5); },
      [](double d) { return smooth_l1_ref(d, 0.5); }, Reduction::mean));
  cases.push_back(pointwise_case(
      "smooth_l1_loss/beta 0 (= l1)",
      [](const Tensor& a, const Tensor& b) { return smooth_l1_loss(a, b, Reduction::sum, 0.0); },
      [](double d) { return std::abs(d); }, Reduction::sum));
  return cases;
}

const bool registered = register_ops(loss_cases());

}  // namespace

TEST_CASE("cross_entropy: a value computed by hand, and its gradient softmax - onehot") {
  // log(e + e^2 + e^3) - 3 = 0.40760596444...
  const Tensor logits = from_values(std::vector<double>{1, 2, 3}, {1, 3}, DType::f64).set_requires_grad(true);
  const Tensor loss = cross_entropy(logits, from_values(std::vector<int64_t>{2}, {1}));
  CHECK(loss.dim() == 0);
  CHECK(loss.item() == doctest::Approx(0.40760596444438).epsilon(1e-12));
  const Tensor g = grad({loss}, {logits})[0];
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  check_close(g, ref::make({std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z - 1.0}, {1, 3}), 1e-12, 1e-12,
              "cross_entropy gradient");
}

TEST_CASE("cross_entropy and nll_loss: mean over an all-ignored batch is NaN, sum is 0") {
  const Tensor logits = random_tensor({3, 4}, DType::f64);
  const Tensor target = from_values(std::vector<int64_t>{-100, -100, -100}, {3});
  CHECK(std::isnan(cross_entropy(logits, target).item()));
  CHECK(std::isnan(nll_loss(logits, target).item()));
  CrossEntropyOptions o;
  o.reduction = Reduction::sum;
  CHECK(cross_entropy(logits, target, o).item() == 0.0);
  const Tensor x = logits.detach().set_requires_grad(true);
  const Tensor g = grad({cross_entropy(x, target, o)}, {x})[0];
  for (double v : values(g)) CHECK(v == 0.0);
}

TEST_CASE("binary_cross_entropy_with_logits stays finite for large logits") {
  const Tensor logits = from_values(std::vector<double>{-200, -50, 50, 200}, {4}, DType::f32);
  const Tensor target = from_values(std::vector<double>{1, 0, 0, 1}, {4}, DType::f32);
  const auto loss = values(binary_cross_entropy_with_logits(logits, target, Tensor(), Reduction::none));
  CHECK(loss[0] == doctest::Approx(200.0));
  CHECK(loss[1] == doctest::Approx(0.0));
  CHECK(loss[2] == doctest::Approx(50.0));
  CHECK(loss[3] == doctest::Approx(0.0));
  const Tensor x = logits.detach().set_requires_grad(true);
  const auto g = values(grad({binary_cross_entropy_with_logits(x, target, Tensor(), Reduction::sum)}, {x})[0]);
  // sigmoid(x) - y
  CHECK(g[0] == doctest::Approx(-1.0));
  CHECK(g[1] == doctest::Approx(0.0));
  CHECK(g[2] == doctest::Approx(1.0));
  CHECK(g[3] == doctest::Approx(0.0));
}

TEST_CASE("loss errors raise loupe::Error naming the op") {
  const Tensor logits = random_tensor({3, 4});
  const Tensor target = from_values(std::vector<int64_t>{0, 3, 1}, {3});
  // shapes
  CHECK_THROWS_WITH_AS(cross_entropy(logits, from_values(std::vector<int64_t>{0, 1}, {2})),
                       doctest::Contains("cross_entropy: target of shape (2,) does not match input of shape (3, 4)"),
                       Error);
  CHECK_THROWS_AS(cross_entropy(random_tensor({2, 3, 4}), from_values(std::vector<int64_t>{0, 1}, {2})), Error);
  CHECK_THROWS_AS(nll_loss(logits, zeros({3, 1}, DType::i64)), Error);
  CHECK_THROWS_AS(cross_entropy(zeros({}), zeros({}, DType::i64)), Error);
  // targets out of range (and not ignore_index)
  CHECK_THROWS_WITH_AS(cross_entropy(logits, from_values(std::vector<int64_t>{0, 4, 1}, {3})),
                       doctest::Contains("cross_entropy: target 4 is out of bounds for 4 classes"), Error);
  CHECK_THROWS_AS(cross_entropy(logits, from_values(std::vector<int64_t>{0, -1, 1}, {3})), Error);
  CHECK_THROWS_AS(nll_loss(logits, from_values(std::vector<int64_t>{0, 7, 1}, {3})), Error);
  CrossEntropyOptions ignore_minus_one;
  ignore_minus_one.ignore_index = -1;
  CHECK_NOTHROW(cross_entropy(logits, from_values(std::vector<int64_t>{0, -1, 1}, {3}), ignore_minus_one));
  // target dtype
  CHECK_THROWS_WITH_AS(cross_entropy(logits, zeros({3}, DType::f32)), doctest::Contains("cross_entropy: target"),
                       Error);
  CHECK_THROWS_AS(nll_loss(logits, zeros({3}, DType::b8)), Error);
  CHECK_THROWS_AS(cross_entropy(zeros({3, 4}, DType::i64), target), Error);
  // options
  CrossEntropyOptions bad_weight;
  bad_weight.weight = ones({3});
  CHECK_THROWS_AS(cross_entropy(logits, target, bad_weight), Error);
  CrossEntropyOptions bad_smoothing;
  bad_smoothing.label_smoothing = 1.5;
  CHECK_THROWS_AS(cross_entropy(logits, target, bad_smoothing), Error);
  bad_smoothing.label_smoothing = 0.1;
  CHECK_THROWS_WITH_AS(nll_loss(logits, target, bad_smoothing), doctest::Contains("nll_loss"), Error);
  // float-target losses
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(logits, zeros({4, 3})),
                       doctest::Contains("binary_cross_entropy_with_logits: target of shape (4, 3)"), Error);
  CHECK_THROWS_AS(binary_cross_entropy_with_logits(logits, zeros({3, 4}, DType::i64)), Error);
  CHECK_THROWS_AS(binary_cross_entropy_with_logits(logits, zeros({3, 4}), ones({3})), Error);  // pos_weight
  CHECK_NOTHROW(binary_cross_entropy_with_logits(logits, zeros({3, 4}), ones({4})));
  CHECK_THROWS_WITH_AS(mse_loss(logits, zeros({4, 3})), doctest::Contains("mse_loss: input of shape (3, 4)"), Error);
  CHECK_THROWS_AS(l1_loss(logits, zeros({3})), Error);
  CHECK_THROWS_AS(smooth_l1_loss(logits, zeros({3, 1})), Error);
  CHECK_THROWS_AS(mse_loss(zeros({3, 4}, DType::i64), zeros({3, 4}, DType::i64)), Error);
  CHECK_THROWS_WITH_AS(smooth_l1_loss(logits, logits, Reduction::mean, -1.0), doctest::Contains("smooth_l1_loss"),
                       Error);
}

}  // namespace loupe::test
