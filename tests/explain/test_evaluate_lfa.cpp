// The LFA framework (explain/evaluate/lfa.hpp): closed forms on linear models (the squared-loss fit
// recovers w or w * x0 exactly, gradient matching the gradient, the exact explanation has zero
// LFA loss), the paper's Table-1 identities (each method equals its LFA instance: C-LIME, LIME and
// KernelSHAP on the same samples, occlusion on the one-hot neighbourhood, IG on the IG path at
// the quadrature's nodes, VG and GxI as the limits, SmoothGrad within Monte-Carlo error), the
// limits SmoothGrad -> VG (s -> 0) and IG -> GxI (a -> 1), model recovery on a logistic model,
// and bad input.
#include <doctest/doctest.h>

#include "explain/evaluate/lfa.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;
namespace lfa = explain::lfa;

namespace {

// f(x) = x . w + b with one output: (N, d) -> (N, 1).
ForwardFn linear_one(const Tensor& w, double b) {
  const Tensor wt = ops::reshape(w, {1, w.numel()});
  const Tensor bt = full({1}, b, DType::f64);
  return [wt, bt](const std::vector<Tensor>& in) { return linear(in[0], wt, bt); };
}

Tensor flat(const Tensor& t) { return ops::reshape(t, {t.numel()}); }

constexpr int64_t kD = 5;

}  // namespace

TEST_CASE("evaluate lfa: squared loss recovers a linear model exactly on every neighbourhood") {
  const Tensor w = random_tensor({kD}, DType::f64, -2, 2, 1);
  const Tensor x0 = random_tensor({1, kD}, DType::f64, 0.1, 1, 2);
  const ForwardFn f = linear_one(w, 0.7);
  const Tensor wx = flat(ops::mul(x0, ops::reshape(w, {1, kD})));
  for (lfa::Method m : {lfa::Method::lime, lfa::Method::kernel_shap, lfa::Method::occlusion, lfa::Method::clime}) {
    CAPTURE(lfa::method_name(m));
    const lfa::Spec spec = lfa::method_spec(m);
    Generator gen(3);
    const lfa::Sample s = lfa::draw(spec, x0, 200, gen);
    const Tensor y = lfa::targets(spec, f, Output::logit, -1, x0, s);
    const lfa::Fit fit = lfa::fit(spec, s, y);
    // Additive neighbourhoods see w; multiplicative ones (x0 * xi) see w * x0.
    const Tensor expected = m == lfa::Method::clime ? w : wx;
    check_close(fit.coef, expected, 1e-10, 1e-10, "coef");
    if (spec.bias)
      CHECK(fit.bias ==
            doctest::Approx(m == lfa::Method::clime ? 0.7 + values(ops::matmul(x0, w))[0] : 0.7).epsilon(1e-9));
    CHECK(lfa::loss(spec, s, y, expected) < 1e-20);
    CHECK(lfa::loss(spec, s, y, ops::add(expected, 0.1)) > 1e-4);  // and a wrong explanation is penalised
  }
}

TEST_CASE("evaluate lfa: gradient matching recovers the gradient (and x0 times it on the IG path)") {
  const Tensor w = random_tensor({kD}, DType::f64, -2, 2, 4);
  const Tensor x0 = random_tensor({1, kD}, DType::f64, 0.1, 1, 5);
  const ForwardFn f = linear_one(w, -0.3);
  const Tensor wx = flat(ops::mul(x0, ops::reshape(w, {1, kD})));
  for (lfa::Method m : {lfa::Method::smoothgrad, lfa::Method::vanilla_gradient, lfa::Method::integrated_gradients,
                        lfa::Method::gradient_x_input}) {
    CAPTURE(lfa::method_name(m));
    const lfa::Spec spec = lfa::method_spec(m);
    Generator gen(6);
    const lfa::Sample s = lfa::draw(spec, x0, 50, gen);
    const Tensor g = lfa::targets(spec, f, Output::logit, -1, x0, s);
    const lfa::Fit fit = lfa::fit(spec, s, g);
    const bool multiplicative = spec.loss == lfa::Loss::multiplicative_gradient_matching;
    check_close(fit.coef, multiplicative ? wx : w, 1e-12, 1e-12, "coef");
    CHECK(lfa::loss(spec, s, g, multiplicative ? wx : w) < 1e-24);
  }
}

TEST_CASE("evaluate lfa: C-LIME, LIME and KernelSHAP equal their LFA instances on the same samples") {
  const Tensor w1 = random_tensor({6, kD}, DType::f64, -1, 1, 7), b1 = random_tensor({6}, DType::f64, -1, 1, 8);
  const Tensor w2 = random_tensor({2, 6}, DType::f64, -2, 2, 9);
  const ForwardFn model = tanh_mlp(w1, b1, w2);
  const Tensor x0 = random_tensor({1, kD}, DType::f64, 0, 1, 10);
  const Query q{model, {x0}, Target(1)};
  const int64_t n = 300;
  SUBCASE("C-LIME") {
    Generator g1(21), g2(21);
    CLimeOptions o;
    o.n_samples = n;
    o.stdev = 0.1;
    o.generator = &g1;
    const Tensor method = flat(clime(q, o).attributions[0]);
    const lfa::Fit fit = lfa::explain(lfa::method_spec(lfa::Method::clime, 0.1), model, Output::logit, 1, x0, n, g2);
    check_close(fit.coef, method, 1e-10, 1e-8, "clime");
  }
  SUBCASE("LIME: euclidean kernel exp(-d^2 / w^2) and least squares") {
    Generator g1(22), g2(22);
    LimeOptions o;
    o.n_samples = n;
    o.distance = LimeDistance::euclidean;
    o.kernel_width = 0.75 / std::sqrt(2.0);  // LIME's exp(-d^2 / (2 w'^2)) with w' = w / sqrt(2)
    o.fit = SurrogateFit::least_squares;
    o.generator = &g1;
    const Tensor method = flat(lime(q, o).attributions[0]);
    const lfa::Fit fit =
        lfa::explain(lfa::method_spec(lfa::Method::lime, 0.1, 0.75), model, Output::logit, 1, x0, n, g2);
    check_close(fit.coef, method, 1e-10, 1e-8, "lime");
  }
  SUBCASE("KernelSHAP") {
    Generator g1(23), g2(23);
    KernelShapOptions o;
    o.n_samples = n;
    o.generator = &g1;
    const Tensor method = flat(kernel_shap(q, o).attributions[0]);
    const lfa::Fit fit = lfa::explain(lfa::method_spec(lfa::Method::kernel_shap), model, Output::logit, 1, x0, n, g2);
    check_close(fit.coef, method, 1e-9, 1e-7, "kernel_shap");
  }
}

TEST_CASE("evaluate lfa: occlusion, VG, GxI and IG equal their LFA instances exactly") {
  const Tensor w1 = random_tensor({6, kD}, DType::f64, -1, 1, 11), b1 = random_tensor({6}, DType::f64, -1, 1, 12);
  const Tensor w2 = random_tensor({3, 6}, DType::f64, -2, 2, 13);
  const ForwardFn model = tanh_mlp(w1, b1, w2);
  const Tensor x0 = random_tensor({1, kD}, DType::f64, 0, 1, 14);
  const Query q{model, {x0}, Target(2), Output::softmax};
  Generator gen(1);
  auto lfa_of = [&](lfa::Method m) {
    return lfa::explain(lfa::method_spec(m), model, Output::softmax, 2, x0, 100, gen).coef;
  };
  check_close(lfa_of(lfa::Method::occlusion), flat(occlusion(q, {.windows = {Shape{1}}}).attributions[0]), 1e-13, 1e-12,
              "occlusion");
  check_close(lfa_of(lfa::Method::vanilla_gradient), flat(saliency(q, {.absolute = false}).attributions[0]), 1e-14,
              1e-12, "vg");
  check_close(lfa_of(lfa::Method::gradient_x_input), flat(input_x_gradient(q).attributions[0]), 1e-14, 1e-12, "gxi");
  // IG with the Riemann midpoint rule is the mean of x0 * grad f(a_i x0) at a_i = (i + 0.5) / n:
  // the LFA fit on the IG path evaluated at those nodes.
  const int64_t steps = 40;
  IntegratedGradientsOptions io;
  io.n_steps = steps;
  io.method = IntegrationRule::riemann_middle;
  const Tensor ig = flat(integrated_gradients(q, io).attributions[0]);
  const Quadrature rule = quadrature(IntegrationRule::riemann_middle, steps);
  const Tensor xi = ops::contiguous(ops::expand(from_values(rule.alphas, {steps, 1}, DType::f64), {steps, kD}));
  const lfa::Spec spec = lfa::method_spec(lfa::Method::integrated_gradients);
  const lfa::Sample s = lfa::at(spec, x0, xi);
  check_close(lfa::fit(spec, s, lfa::targets(spec, model, Output::softmax, 2, x0, s)).coef, ig, 1e-13, 1e-11, "ig");
}

TEST_CASE("evaluate lfa: SmoothGrad is the gradient-matching fit on the Gaussian neighbourhood (Monte Carlo)") {
  const Tensor w1 = random_tensor({6, kD}, DType::f64, -1, 1, 15), b1 = random_tensor({6}, DType::f64, -1, 1, 16);
  const Tensor w2 = random_tensor({1, 6}, DType::f64, -2, 2, 17);
  const ForwardFn model = tanh_mlp(w1, b1, w2);
  const Tensor x0 = random_tensor({1, kD}, DType::f64, 0, 1, 18);
  const Query q{model, {x0}};
  Generator g1(5), g2(6);
  NoiseTunnelOptions o;
  o.n_samples = 4000;
  o.stdevs = {0.3};
  o.generator = &g1;
  const Tensor sg = flat(noise_tunnel(
                             q, [](const Query& qq) { return saliency(qq, {.absolute = false}); }, o)
                             .attributions[0]);
  const lfa::Spec spec = lfa::method_spec(lfa::Method::smoothgrad, 0.3);
  const Tensor fit = lfa::explain(spec, model, Output::logit, -1, x0, 4000, g2).coef;
  const Tensor vg = flat(saliency(q, {.absolute = false}).attributions[0]);
  // Both estimate E grad f(x0 + xi) from independent draws: they agree to Monte-Carlo error,
  // far closer than either is to the plain gradient at s = 0.3.
  const double between = lfa::l1_distance(sg, fit), to_vg = lfa::l1_distance(fit, vg);
  CAPTURE(between);
  CAPTURE(to_vg);
  CHECK(between < 0.25 * to_vg);
  CHECK(lfa::cosine_distance(sg, fit) < 1e-3);
  // On the same draws (NoiseTunnel's noise of a row is one normal() block of the generator,
  // replayed here) the two are the same mean of the same gradients.
  Generator g3(9), g4(9);
  o.n_samples = 300;
  o.generator = &g3;
  const Tensor sg_same = flat(noise_tunnel(
                                  q, [](const Query& qq) { return saliency(qq, {.absolute = false}); }, o)
                                  .attributions[0]);
  check_close(lfa::explain(spec, model, Output::logit, -1, x0, 300, g4).coef, sg_same, 1e-14, 1e-12, "same draws");
}

TEST_CASE("evaluate lfa: SmoothGrad -> VG as s -> 0 and IG -> GxI as the lower bound of a -> 1") {
  const Tensor w1 = random_tensor({6, kD}, DType::f64, -1, 1, 19), b1 = random_tensor({6}, DType::f64, -1, 1, 20);
  const Tensor w2 = random_tensor({1, 6}, DType::f64, -2, 2, 21);
  const ForwardFn model = tanh_mlp(w1, b1, w2);
  const Tensor x0 = random_tensor({1, kD}, DType::f64, 0, 1, 22);
  Generator gen(2);
  const Tensor vg =
      lfa::explain(lfa::method_spec(lfa::Method::vanilla_gradient), model, Output::logit, -1, x0, 1, gen).coef;
  const Tensor gxi =
      lfa::explain(lfa::method_spec(lfa::Method::gradient_x_input), model, Output::logit, -1, x0, 1, gen).coef;
  double previous = 1e300;
  for (double s : {0.3, 0.03, 0.003, 0.0003}) {
    const double dist = lfa::l1_distance(
        lfa::explain(lfa::method_spec(lfa::Method::smoothgrad, s), model, Output::logit, -1, x0, 500, gen).coef, vg);
    CAPTURE(s);
    CHECK(dist < previous);
    previous = dist;
  }
  CHECK(previous < 1e-3);
  previous = 1e300;
  for (double c : {0.0, 0.9, 0.99, 0.999}) {
    lfa::Spec spec = lfa::method_spec(lfa::Method::integrated_gradients);
    spec.alpha_low = c;
    const double dist = lfa::l1_distance(lfa::explain(spec, model, Output::logit, -1, x0, 500, gen).coef, gxi);
    CAPTURE(c);
    CHECK(dist < previous);
    previous = dist;
  }
  CHECK(previous < 1e-3);
}

TEST_CASE("evaluate lfa: model recovery on a logistic model") {
  // f = sigmoid(x . w + b). On the probability, VG, SmoothGrad and C-LIME point along w (VG and
  // SmoothGrad exactly: every gradient is sigma'(z) w); IG and GxI along w * x. On the logit,
  // occlusion, LIME and KernelSHAP (zero baseline) give w * x exactly.
  const Tensor w = random_tensor({kD}, DType::f64, -2, 2, 23);
  const Tensor x0 = random_tensor({1, kD}, DType::f64, 0.1, 1, 24);
  const ForwardFn f = linear_one(w, 0.2);
  const Tensor wx = flat(ops::mul(x0, ops::reshape(w, {1, kD})));
  const Query prob{f, {x0}, Target::none(), Output::sigmoid};
  const Query logit{f, {x0}};
  const double z = values(ops::matmul(x0, w))[0] + 0.2, sig = 1.0 / (1.0 + std::exp(-z));
  check_close(flat(saliency(prob, {.absolute = false}).attributions[0]), ops::mul(w, sig * (1 - sig)), 1e-14, 1e-12,
              "vg");
  Generator gen(3);
  NoiseTunnelOptions no;
  no.n_samples = 50;
  no.stdevs = {0.1};
  no.generator = &gen;
  const Tensor sg = flat(noise_tunnel(
                             prob, [](const Query& qq) { return saliency(qq, {.absolute = false}); }, no)
                             .attributions[0]);
  CHECK(lfa::cosine_distance(sg, w) < 1e-12);
  CLimeOptions co;
  co.generator = &gen;
  CHECK(lfa::cosine_distance(flat(clime(prob, co).attributions[0]), w) < 1e-3);
  CHECK(lfa::cosine_distance(flat(integrated_gradients(prob).attributions[0]), wx) < 1e-12);
  CHECK(lfa::cosine_distance(flat(input_x_gradient(prob).attributions[0]), wx) < 1e-12);
  check_close(flat(occlusion(logit, {.windows = {Shape{1}}}).attributions[0]), wx, 1e-12, 1e-12, "occlusion");
  LimeOptions lo;
  lo.fit = SurrogateFit::least_squares;
  lo.generator = &gen;
  check_close(flat(lime(logit, lo).attributions[0]), wx, 1e-10, 1e-10, "lime");
  KernelShapOptions ko;
  ko.generator = &gen;
  check_close(flat(kernel_shap(logit, ko).attributions[0]), wx, 1e-8, 1e-8, "kernel_shap");
  // And the two targets really differ here (x0 is not all ones).
  CHECK(lfa::cosine_distance(w, wx) > 1e-3);
}

TEST_CASE("evaluate lfa: distances and bad input") {
  const Tensor a = from_values(std::vector<double>{1, 0, -2}, {3}, DType::f64);
  const Tensor b = from_values(std::vector<double>{0, 1, -2}, {3}, DType::f64);
  CHECK(lfa::l1_distance(a, b) == doctest::Approx(2.0));
  CHECK(lfa::cosine_distance(a, b) == doctest::Approx(1.0 - 4.0 / 5.0));
  CHECK(lfa::cosine_distance(zeros({3}, DType::f64), zeros({3}, DType::f64)) == 0.0);
  CHECK(lfa::cosine_distance(a, zeros({3}, DType::f64)) == 1.0);
  // Tiny vectors (a saturated sigmoid's gradients) keep their direction: no underflow to 0 / 0.
  CHECK(lfa::cosine_distance(ops::mul(a, 1e-200), ops::mul(b, 1e-180)) == doctest::Approx(1.0 - 4.0 / 5.0));
  CHECK(lfa::cosine_distance(a, ops::mul(a, 3.0)) == 0.0);
  CHECK_THROWS_AS(lfa::l1_distance(a, zeros({2}, DType::f64)), Error);
  Generator gen(1);
  const lfa::Spec spec = lfa::method_spec(lfa::Method::clime);
  CHECK_THROWS_AS(lfa::draw(spec, zeros({2, 3}, DType::f64), 10, gen), Error);  // two rows
  CHECK_THROWS_AS(lfa::draw(spec, zeros({1, 3}, DType::f64), 0, gen), Error);
  CHECK_THROWS_AS(lfa::at(spec, zeros({1, 3}, DType::f64), zeros({4, 2}, DType::f64)), Error);
  const lfa::Sample s = lfa::draw(spec, zeros({1, 3}, DType::f64), 10, gen);
  CHECK_THROWS_AS(lfa::fit(spec, s, zeros({10, 3}, DType::f64)), Error);  // squared loss wants (n)
  CHECK_THROWS_AS(lfa::loss(spec, s, zeros({10}, DType::f64), zeros({4}, DType::f64)), Error);
  lfa::Spec bad = lfa::method_spec(lfa::Method::integrated_gradients);
  bad.alpha_low = 1.5;
  CHECK_THROWS_AS(lfa::draw(bad, zeros({1, 3}, DType::f64), 10, gen), Error);
}

}  // namespace loupe::test
