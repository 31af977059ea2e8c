// NoiseTunnel (SmoothGrad, SmoothGrad^2, VarGrad): statistical checks against the analytic
// expectations on a quadratic, range-relative noise, reproducibility and chunking independence.
#include <doctest/doctest.h>

#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

const Method signed_saliency = [](const Query& q) { return saliency(q, {.absolute = false}); };

// f(x) = sum_j a_j x_j^2 per row: gradient 2 a (x + e) under noise e ~ N(0, s^2).
struct Quadratic {
  Tensor a = from_values(std::vector<double>{1.0, -0.5, 2.0, 0.25}, {4}, DType::f64);
  Tensor x = from_values(std::vector<double>{0.3, -1.0, 0.5, 2.0}, {1, 4}, DType::f64);
  ForwardFn model() const {
    return [a = a](const std::vector<Tensor>& in) { return sum(mul(square(in[0]), a), {1}); };
  }
};

}  // namespace

TEST_CASE("SmoothGrad, SmoothGrad^2 and VarGrad approach their expectations on a quadratic") {
  const Quadratic f;
  const double s = 0.5;
  const int64_t n = 4000;
  Generator gen(2024);
  auto run = [&](NoiseType type) {
    return values(noise_tunnel(Query{f.model(), {f.x}}, signed_saliency,
                               {.type = type, .n_samples = n, .stdevs = {s}, .generator = &gen})
                      .attributions[0]);
  };
  const auto mean = run(NoiseType::smoothgrad), sq = run(NoiseType::smoothgrad_sq), var = run(NoiseType::vargrad);
  const auto a = values(f.a), x = values(f.x);
  const double root_n = std::sqrt(static_cast<double>(n));
  for (size_t j = 0; j < 4; ++j) {
    // E[2a(x+e)] = 2ax, sd 2|a|s.   E[(2a(x+e))^2] = 4a^2 (x^2 + s^2), var 16a^4 (4x^2 s^2 + 2 s^4).
    // Var[2a(x+e)] = 4a^2 s^2, sd of the sample variance ~ 4a^2 s^2 sqrt(2).  Bounds: 5 standard errors.
    const double a2 = a[j] * a[j];
    CHECK(std::abs(mean[j] - 2 * a[j] * x[j]) < 5 * 2 * std::abs(a[j]) * s / root_n);
    CHECK(std::abs(sq[j] - 4 * a2 * (x[j] * x[j] + s * s)) <
          5 * std::sqrt(16 * a2 * a2 * (4 * x[j] * x[j] * s * s + 2 * std::pow(s, 4))) / root_n);
    CHECK(std::abs(var[j] - 4 * a2 * s * s) < 5 * 4 * a2 * s * s * std::sqrt(2.0) / root_n);
  }
}

TEST_CASE("noise relative to the input range: sigma = level * (max - min) of each row") {
  // A base "method" that returns its (noisy) input: VarGrad is then the noise variance.
  const Method identity = [](const Query& q) {
    Attribution a;
    a.attributions = {q.inputs[0]};
    return a;
  };
  const Tensor x = from_values(std::vector<double>{0, 1, 2, 3, 0, 10, 20, 30}, {2, 4}, DType::f64);  // ranges 3, 30
  Generator gen(5);
  auto model = [](const std::vector<Tensor>& in) { return sum(in[0], {1}); };
  const auto var = values(noise_tunnel(Query{model, {x}}, identity,
                                       {.type = NoiseType::vargrad, .n_samples = 3000, .stdevs = {0.1},
                                        .relative_to_range = true, .generator = &gen})
                              .attributions[0]);
  for (size_t j = 0; j < 8; ++j) {
    const double sigma = 0.1 * (j < 4 ? 3.0 : 30.0);
    CHECK(var[j] == doctest::Approx(sigma * sigma).epsilon(0.15));  // sd of the estimate ~ 2.6%
  }
}

TEST_CASE("NoiseTunnel: seeded, reproducible, and independent of internal_batch_size") {
  const Tensor w1 = random_tensor({6, 4}, DType::f32, -1, 1, 111), b1 = random_tensor({6}, DType::f32, -1, 1, 112);
  const Tensor w2 = random_tensor({3, 6}, DType::f32, -1, 1, 113);
  Query q{tanh_mlp(w1, b1, w2), {random_tensor({3, 4}, DType::f32, -1, 1, 114)}, Target::per_row({0, 2, 1})};
  auto run = [&](int64_t chunk, Generator& gen) {
    return noise_tunnel(q, signed_saliency,
                        {.type = NoiseType::smoothgrad_sq, .n_samples = 7, .stdevs = {0.3}, .internal_batch_size = chunk,
                         .generator = &gen})
        .attributions[0];
  };
  Generator g0(9);
  const Tensor all = run(0, g0);
  for (int64_t chunk : {1, 4, 7, 20}) {
    Generator g(9);
    check_close(run(chunk, g), all, 1e-7, 1e-5, "chunked NoiseTunnel");
    CHECK(g.offset() == g0.offset());  // the generator advances by the same amount
  }
  // The generator moved on: a second call draws new noise.
  CHECK(max_relative_error(run(0, g0), all) > 1e-3);

  // Rows of 3 float32 values do not fill whole Philox blocks (6 words): drawn row by row, with
  // the same independence of the split.
  const Tensor w3 = random_tensor({6, 3}, DType::f32, -1, 1, 115);
  Query odd{tanh_mlp(w3, b1, w2), {random_tensor({2, 3}, DType::f32, -1, 1, 116)}, Target::per_row({1, 0})};
  auto run_odd = [&](int64_t chunk) {
    Generator g(10);
    return noise_tunnel(odd, signed_saliency, {.n_samples = 5, .stdevs = {0.3}, .internal_batch_size = chunk, .generator = &g})
        .attributions[0];
  };
  const Tensor odd_all = run_odd(0);
  for (int64_t chunk : {1, 3}) check_close(run_odd(chunk), odd_all, 1e-7, 1e-5, "chunked NoiseTunnel, odd rows");
}

TEST_CASE("NoiseTunnel over integrated gradients keeps the baseline and averages the delta") {
  // Linear model: IG at x + e is (x + e - x') * w, whose mean tends to (x - x') * w; each delta is 0.
  const Tensor w = random_tensor({2, 3}, DType::f64, -1, 1, 121);
  Query q{linear_model(w), {random_tensor({2, 3}, DType::f64, -1, 1, 122)}, 1};
  q.baselines = {0.5};
  Generator gen(3);
  const Method ig = [](const Query& query) {
    return integrated_gradients(query, {.n_steps = 4, .return_convergence_delta = true});
  };
  const Attribution a = noise_tunnel(q, ig, {.n_samples = 2000, .stdevs = {0.1}, .internal_batch_size = 300, .generator = &gen});
  const Tensor expected = ops::mul(ops::sub(q.inputs[0], ops::scalar_like(0.5, q.inputs[0])), weight_rows(w, {1, 1}));
  check_close(a.attributions[0], expected, 5 * 0.1 / std::sqrt(2000.0), 0, "SmoothGrad of IG");
  REQUIRE(a.delta.defined());
  for (double d : values(a.delta)) CHECK(std::abs(d) < 1e-12);
  CHECK_THROWS_AS(noise_tunnel(q, ig, {.n_samples = 0}), Error);
  CHECK_THROWS_AS(noise_tunnel(q, ig, {.stdevs = {0.1, 0.2}}), Error);
}

}  // namespace loupe::test
