// Op table entries: batch_norm, layer_norm, rms_norm (forward, gradcheck for x, weight, bias),
// plus TEST_CASEs for what the table cannot express: in-place running-statistic updates,
// rms_norm's dtype epsilon, and error cases.
// References are plain f64 loops written from PyTorch's definitions.
#include <cmath>
#include <limits>

#include "tensor/ops/device.hpp"
#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

// --- references ---

// x (N, C, *): per channel c, mean and variance over n and the trailing dims.
// mean/var given (inference) or computed from the batch (biased variance).
Tensor ref_batch_norm(const Tensor& x, const std::vector<double>& w, const std::vector<double>& b, bool training,
                      std::vector<double> mean, std::vector<double> var, double eps) {
  const Shape& s = x.shape();
  const int64_t n = s[0], c = s[1];
  int64_t spatial = 1;
  for (size_t d = 2; d < s.size(); ++d) spatial *= s[d];
  const auto v = values(x);
  auto at = [&](int64_t i, int64_t ch, int64_t j) { return static_cast<size_t>((i * c + ch) * spatial + j); };
  if (training) {
    mean.assign(static_cast<size_t>(c), 0.0);
    var.assign(static_cast<size_t>(c), 0.0);
    const double m = static_cast<double>(n * spatial);
    for (int64_t ch = 0; ch < c; ++ch) {
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < spatial; ++j) sum += v[at(i, ch, j)];
      const double mu = sum / m;
      double sq = 0.0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < spatial; ++j) sq += (v[at(i, ch, j)] - mu) * (v[at(i, ch, j)] - mu);
      mean[static_cast<size_t>(ch)] = mu;
      var[static_cast<size_t>(ch)] = sq / m;
    }
  }
  std::vector<double> out(v.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t j = 0; j < spatial; ++j) {
        const size_t k = static_cast<size_t>(ch);
        out[at(i, ch, j)] = (v[at(i, ch, j)] - mean[k]) / std::sqrt(var[k] + eps) * (w.empty() ? 1.0 : w[k]) +
                            (b.empty() ? 0.0 : b[k]);
      }
  return ref::make(out, s);
}

// Rows of the last `k` elements: layer norm (center) or rms norm.
Tensor ref_row_norm(const Tensor& x, int64_t k, const std::vector<double>& w, const std::vector<double>& b,
                    double eps, bool center) {
  const auto v = values(x);
  std::vector<double> out(v.size());
  const int64_t rows = k ? x.numel() / k : 0;
  for (int64_t r = 0; r < rows; ++r) {
    double mu = 0.0;
    if (center) {
      for (int64_t j = 0; j < k; ++j) mu += v[static_cast<size_t>(r * k + j)];
      mu /= static_cast<double>(k);
    }
    double sq = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      const double d = v[static_cast<size_t>(r * k + j)] - mu;
      sq += d * d;
    }
    const double denom = std::sqrt(sq / static_cast<double>(k) + eps);
    for (int64_t j = 0; j < k; ++j) {
      const size_t i = static_cast<size_t>(r * k + j);
      out[i] = (v[i] - mu) / denom * (w.empty() ? 1.0 : w[static_cast<size_t>(j)]) +
               (b.empty() ? 0.0 : b[static_cast<size_t>(j)]);
    }
  }
  return ref::make(out, x.shape());
}

std::vector<double> maybe_values(const Inputs& in, size_t i) {
  return i < in.size() && in[i].defined() ? values(in[i]) : std::vector<double>{};
}

// --- batch norm entries ---

// Fixed running statistics for inference entries (C = 3).
const std::vector<double> kRunningMean{0.1, -0.2, 0.3};
const std::vector<double> kRunningVar{0.5, 1.5, 0.8};

struct BnConfig {
  Shape x_shape;
  bool affine = true;
  bool training = true;
  double eps = 1e-5;
  bool with_running = true;  // pass running stats (fresh each call) in training
};

OpCase batch_norm_case(const std::string& name, BnConfig cfg) {
  OpCase c;
  c.name = name;
  const int64_t channels = cfg.x_shape[1];
  c.make_inputs = [cfg, channels](DType dtype) {
    Inputs in{random_tensor(cfg.x_shape, dtype, -2, 2, 101)};
    if (cfg.affine) {
      in.push_back(random_tensor({channels}, dtype, 0.5, 1.5, 102));
      in.push_back(random_tensor({channels}, dtype, -0.5, 0.5, 103));
    }
    return in;
  };
  Shape empty_shape = cfg.x_shape;
  empty_shape[0] = 0;
  c.make_empty_inputs = [cfg, channels, empty_shape](DType dtype) {
    Inputs in{zeros(empty_shape, dtype)};
    if (cfg.affine) {
      in.push_back(ones({channels}, dtype));
      in.push_back(zeros({channels}, dtype));
    }
    return in;
  };
  c.op = [cfg, channels](const Inputs& in) {
    const DType dt = in[0].dtype();
    Tensor rm, rv;
    if (!cfg.training) {
      rm = from_values(kRunningMean, {channels}, dt);
      rv = from_values(kRunningVar, {channels}, dt);
    } else if (cfg.with_running) {
      rm = zeros({channels}, dt);
      rv = ones({channels}, dt);
    }
    // The running statistics live on the input's device (the GPU suite runs this op on cuda:0).
    if (rm.defined() && in[0].device() != rm.device()) {
      rm = ops::to_device(rm, in[0].device());
      rv = ops::to_device(rv, in[0].device());
    }
    const Tensor w = cfg.affine ? in[1] : Tensor();
    const Tensor b = cfg.affine ? in[2] : Tensor();
    return batch_norm(in[0], rm, rv, w, b, cfg.training, 0.1, cfg.eps);
  };
  c.reference = [cfg](const Inputs& in) {
    return ref_batch_norm(in[0], maybe_values(in, 1), maybe_values(in, 2), cfg.training, kRunningMean, kRunningVar,
                          cfg.eps);
  };
  return c;
}

// --- layer / rms norm entries ---

OpCase layer_norm_case(const std::string& name, Shape x_shape, Shape normalized, bool weight, bool bias,
                       double eps = 1e-5) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType dtype) {
    Inputs in{random_tensor(x_shape, dtype, -2, 2, 111)};
    in.push_back(weight ? random_tensor(normalized, dtype, 0.5, 1.5, 112) : Tensor());
    in.push_back(bias ? random_tensor(normalized, dtype, -0.5, 0.5, 113) : Tensor());
    return in;
  };
  Shape empty_shape = x_shape;
  empty_shape[0] = 0;
  c.make_empty_inputs = [=](DType dtype) {
    return Inputs{zeros(empty_shape, dtype), weight ? ones(normalized, dtype) : Tensor(),
                  bias ? zeros(normalized, dtype) : Tensor()};
  };
  c.op = [=](const Inputs& in) { return layer_norm(in[0], normalized, in[1], in[2], eps); };
  c.reference = [=](const Inputs& in) {
    return ref_row_norm(in[0], shape_numel(normalized), maybe_values(in, 1), maybe_values(in, 2), eps, true);
  };
  return c;
}

// eps < 0: the dtype's epsilon in the op; the f64 reference uses double's (a difference far
// below the float32 tolerance; the TEST_CASE below checks float32's epsilon directly).
OpCase rms_norm_case(const std::string& name, Shape x_shape, Shape normalized, bool weight, double eps) {
  OpCase c;
  c.name = name;
  c.make_inputs = [=](DType dtype) {
    return Inputs{random_tensor(x_shape, dtype, -2, 2, 121),
                  weight ? random_tensor(normalized, dtype, 0.5, 1.5, 122) : Tensor()};
  };
  Shape empty_shape = x_shape;
  empty_shape[0] = 0;
  c.make_empty_inputs = [=](DType dtype) {
    return Inputs{zeros(empty_shape, dtype), weight ? ones(normalized, dtype) : Tensor()};
  };
  c.op = [=](const Inputs& in) { return rms_norm(in[0], normalized, in[1], eps); };
  c.reference = [=](const Inputs& in) {
    const double e = eps < 0 ? std::numeric_limits<double>::epsilon() : eps;
    return ref_row_norm(in[0], shape_numel(normalized), maybe_values(in, 1), {}, e, false);
  };
  return c;
}

const bool registered = register_ops({
    batch_norm_case("batch_norm/train (N, C)", {.x_shape = {6, 3}}),
    batch_norm_case("batch_norm/train (N, C, H, W)", {.x_shape = {3, 3, 2, 3}}),
    batch_norm_case("batch_norm/train (N, C, L) no affine, no running stats",
                    {.x_shape = {4, 3, 5}, .affine = false, .with_running = false}),
    batch_norm_case("batch_norm/train eps 1e-2", {.x_shape = {2, 3, 4}, .eps = 1e-2}),
    batch_norm_case("batch_norm/eval (N, C, H, W)", {.x_shape = {4, 3, 2, 2}, .training = false}),
    batch_norm_case("batch_norm/eval (N, C) no affine", {.x_shape = {5, 3}, .affine = false, .training = false}),
    layer_norm_case("layer_norm/last dim", {4, 5}, {5}, true, true),
    layer_norm_case("layer_norm/two dims eps 1e-3", {2, 3, 4}, {3, 4}, true, true, 1e-3),
    layer_norm_case("layer_norm/no affine", {3, 6}, {6}, false, false),
    layer_norm_case("layer_norm/weight only (B, T, D)", {2, 2, 5}, {5}, true, false),
    rms_norm_case("rms_norm/default eps", {4, 5}, {5}, true, -1.0),
    rms_norm_case("rms_norm/two dims eps 1e-5", {2, 3, 4}, {3, 4}, true, 1e-5),
    rms_norm_case("rms_norm/no weight", {3, 6}, {6}, false, 1e-6),
});

}  // namespace

TEST_CASE("batch_norm updates the running statistics in place (momentum, unbiased variance)") {
  // x (N=2, C=2, L=3)
  const std::vector<double> xv{1, 2, 4, -1, 0, 3, 2, 5, 0, 2, 2, -4};
  const double momentum = 0.25;
  for (DType dtype : {DType::f32, DType::f64}) {
    INFO(dtype_name(dtype));
    const Tensor x = from_values(xv, {2, 2, 3}, dtype);
    Tensor rm = from_values(std::vector<double>{0.5, -1.0}, {2}, dtype);
    Tensor rv = from_values(std::vector<double>{1.0, 2.0}, {2}, dtype);
    std::vector<double> expect_mean{0.5, -1.0}, expect_var{1.0, 2.0};
    for (int step = 0; step < 2; ++step) {  // two steps: the update compounds
      batch_norm(x, rm, rv, Tensor(), Tensor(), /*training=*/true, momentum);
      for (int64_t c = 0; c < 2; ++c) {
        std::vector<double> group;
        for (int64_t n = 0; n < 2; ++n)
          for (int64_t j = 0; j < 3; ++j) group.push_back(xv[static_cast<size_t>((n * 2 + c) * 3 + j)]);
        double mu = 0.0;
        for (double g : group) mu += g;
        mu /= 6.0;
        double sq = 0.0;
        for (double g : group) sq += (g - mu) * (g - mu);
        const size_t k = static_cast<size_t>(c);
        expect_mean[k] = (1 - momentum) * expect_mean[k] + momentum * mu;
        expect_var[k] = (1 - momentum) * expect_var[k] + momentum * sq / 5.0;  // unbiased: M - 1 = 5
      }
      const double tol = dtype == DType::f32 ? 1e-6 : 1e-14;
      check_close(rm, ref::make(expect_mean, {2}), tol, tol, "running_mean");
      check_close(rv, ref::make(expect_var, {2}), tol, tol, "running_var");
    }
    CHECK(rm.dtype() == dtype);
    // Inference leaves them alone.
    const auto before_mean = values(rm), before_var = values(rv);
    batch_norm(x, rm, rv, Tensor(), Tensor(), /*training=*/false, momentum);
    CHECK(values(rm) == before_mean);
    CHECK(values(rv) == before_var);
  }
}

TEST_CASE("batch_norm updates strided running statistics and leaves them out of the graph") {
  const Tensor x = random_tensor({4, 3}, DType::f64, -1, 1, 5).set_requires_grad(true);
  const Tensor base = zeros({6}, DType::f64);
  const Tensor rm = ops::slice(base, 0, 0, 6, 2);  // elements 0, 2, 4
  const Tensor rv = ones({3}, DType::f64);
  const Tensor w = ones({3}, DType::f64).set_requires_grad(true);
  const Tensor y = batch_norm(x, rm, rv, w, Tensor(), true, 1.0);  // momentum 1: running = batch
  const auto xv = values(x);
  const auto bv = values(base);
  for (int64_t c = 0; c < 3; ++c) {
    double mu = 0.0;
    for (int64_t n = 0; n < 4; ++n) mu += xv[static_cast<size_t>(n * 3 + c)];
    CHECK(bv[static_cast<size_t>(2 * c)] == doctest::Approx(mu / 4.0).epsilon(1e-12));
    CHECK(bv[static_cast<size_t>(2 * c + 1)] == 0.0);
  }
  CHECK(y.requires_grad());
  CHECK(!rm.requires_grad());
  // Training-mode batch norm output sums to bias * N per channel: d sum(y) / dx = 0.
  const auto g = grad({sum(y)}, {x, w});
  for (double v : values(g[0])) CHECK(std::abs(v) < 1e-12);
  for (double v : values(g[1])) CHECK(std::abs(v) < 1e-12);  // sum(xhat) = 0
}

TEST_CASE("rms_norm's default eps is the input dtype's machine epsilon") {
  // mean(x^2) = 1e-8 is below float32's epsilon (1.19e-7), so eps dominates the result.
  const Tensor x = full({2, 4}, 1e-4, DType::f32);
  const double expect = 1e-4 / std::sqrt(1e-8 + static_cast<double>(std::numeric_limits<float>::epsilon()));
  for (double v : values(rms_norm(x, {4}))) CHECK(v == doctest::Approx(expect).epsilon(1e-5));
  const Tensor xd = full({2, 4}, 1e-4, DType::f64);
  const double expect_d = 1e-4 / std::sqrt(1e-8 + std::numeric_limits<double>::epsilon());
  for (double v : values(rms_norm(xd, {4}))) CHECK(v == doctest::Approx(expect_d).epsilon(1e-12));
}

TEST_CASE("normalisation errors raise loupe::Error naming the op") {
  const Tensor x = random_tensor({4, 3, 2});
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), ones({4}), Tensor(), true),
                       doctest::Contains("batch_norm: weight has shape (4,), expected (3,)"), Error);
  CHECK_THROWS_AS(batch_norm(random_tensor({3}), Tensor(), Tensor(), Tensor(), Tensor(), true), Error);
  CHECK_THROWS_AS(batch_norm(x, zeros({3}), Tensor(), Tensor(), Tensor(), true), Error);  // one stat only
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                       doctest::Contains("batch_norm"), Error);  // inference without running stats
  CHECK_THROWS_WITH_AS(batch_norm(random_tensor({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("more than 1 value per channel"), Error);
  CHECK_THROWS_AS(batch_norm(zeros({4, 3}, DType::i64), Tensor(), Tensor(), Tensor(), Tensor(), true), Error);
  CHECK_THROWS_AS(batch_norm(x, zeros({3}, DType::i64), ones({3}), Tensor(), Tensor(), true), Error);
  CHECK_THROWS_WITH_AS(layer_norm(x, {3}), doctest::Contains("layer_norm: input of shape (4, 3, 2)"), Error);
  CHECK_THROWS_AS(layer_norm(x, {3, 2}, ones({2})), Error);
  CHECK_THROWS_AS(layer_norm(x, {}), Error);
  CHECK_THROWS_AS(layer_norm(x, {5, 4, 3, 2}), Error);
  CHECK_THROWS_WITH_AS(rms_norm(x, {2}, ones({3})), doctest::Contains("rms_norm: weight"), Error);
  CHECK_THROWS_AS(rms_norm(zeros({2, 2}, DType::i64), {2}), Error);
}

TEST_CASE("batch_norm_relu_of_concat equals relu(batch_norm(cat)) and rejects parts that do not fit") {
  // DenseNet's inference step: the parts are read in place, the concatenation never written.
  // Parts of 1-5 channels, one strided (a transposed view, made contiguous inside), float32 and
  // float64.
  for (DType dtype : {DType::f32, DType::f64}) {
    const std::vector<Tensor> parts = {random_tensor({3, 2, 5, 4}, dtype, -2, 2, 31),
                                       random_tensor({3, 5, 5, 4}, dtype, -2, 2, 32),
                                       ops::transpose(random_tensor({3, 4, 5, 1}, dtype, -2, 2, 33), 1, 3)};
    const Tensor mean = random_tensor({8}, dtype, -1, 1, 34), var = random_tensor({8}, dtype, 0.1, 2, 35);
    const Tensor w = random_tensor({8}, dtype, -2, 2, 36), b = random_tensor({8}, dtype, -1, 1, 37);
    const Tensor fused = ops::batch_norm_relu_of_concat(parts, mean, var, w, b, 1e-3);
    const Tensor steps = ops::relu(ops::batch_norm(ops::cat(parts, 1), mean, var, w, b, false, 0.1, 1e-3));
    check_close(fused, steps, 0.0, 0.0, std::string("batch_norm_relu_of_concat ") + dtype_name(dtype));
    // Without weight and bias (1 and 0).
    check_close(ops::batch_norm_relu_of_concat(parts, mean, var, Tensor(), Tensor()),
                ops::relu(ops::batch_norm(ops::cat(parts, 1), mean, var, Tensor(), Tensor(), false)), 0.0, 0.0,
                "batch_norm_relu_of_concat, no affine");
  }
  const Tensor a = random_tensor({2, 3, 4, 4}), stats = zeros({5}), var = ones({5});
  CHECK_THROWS_WITH_AS(ops::batch_norm_relu_of_concat({a, random_tensor({2, 2, 4, 5})}, stats, var, Tensor(), Tensor()),
                       doctest::Contains("part 1 has shape (2, 2, 4, 5)"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm_relu_of_concat({a, random_tensor({2, 2, 4, 4}, DType::f64)}, stats, var,
                                                      Tensor(), Tensor()),
                       doctest::Contains("part 1 is float64"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm_relu_of_concat({a, random_tensor({2, 1, 4, 4})}, stats, var, Tensor(), Tensor()),
                       doctest::Contains("running_mean has shape (5,), expected (4,)"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm_relu_of_concat({a}, Tensor(), Tensor(), Tensor(), Tensor()),
                       doctest::Contains("needs running_mean"), Error);
  CHECK_THROWS_AS(ops::batch_norm_relu_of_concat({}, stats, var, Tensor(), Tensor()), Error);
}

}  // namespace loupe::test
