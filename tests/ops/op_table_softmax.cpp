// Op table entries: softmax and log_softmax along one dim. The reference normalises each line
// with plain loops in f64. Extra test cases: the saved tensors rules rely on, the backward
// kernels on their own, infinities, and errors.
#include <cmath>
#include <limits>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

// softmax (or log_softmax) of every line of x along dim d: max-subtracted, as any careful
// implementation must be for the large-input entries.
Tensor softmax_ref(const Tensor& x, int64_t d, bool log) {
  const Shape& shape = x.shape();
  if (d < 0) d += static_cast<int64_t>(shape.size());
  const auto v = values(x);
  std::vector<double> out(v.size());
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto idx = ref::unravel(i, shape);
    double m = -INFINITY;
    for (int64_t k = 0; k < shape[static_cast<size_t>(d)]; ++k) {
      idx[static_cast<size_t>(d)] = k;
      m = std::max(m, v[static_cast<size_t>(ref::ravel(idx, shape))]);
    }
    double s = 0.0;
    for (int64_t k = 0; k < shape[static_cast<size_t>(d)]; ++k) {
      idx[static_cast<size_t>(d)] = k;
      s += std::exp(v[static_cast<size_t>(ref::ravel(idx, shape))] - m);
    }
    const double e = v[static_cast<size_t>(i)] - m;
    out[static_cast<size_t>(i)] = log ? e - std::log(s) : std::exp(e) / s;
  }
  return ref::make(out, shape);
}

OpCase softmax_case(const std::string& name, bool log, int64_t dim, Shape shape = {3, 4, 5}, double lo = -3.0,
                    double hi = 3.0) {
  OpCase c;
  c.name = name;
  c.make_inputs = [shape, lo, hi](DType dtype) { return Inputs{random_tensor(shape, dtype, lo, hi, 51)}; };
  c.make_empty_inputs = [](DType dtype) { return Inputs{zeros({0, 4, 5}, dtype)}; };
  c.op = [log, dim](const Inputs& in) { return log ? log_softmax(in[0], dim) : softmax(in[0], dim); };
  c.reference = [log, dim](const Inputs& in) { return softmax_ref(in[0], dim, log); };
  return c;
}

const bool registered = register_ops({
    softmax_case("softmax/last_dim", false, -1),
    softmax_case("softmax/middle_dim", false, 1),
    softmax_case("softmax/first_dim", false, 0),
    // exp(800) overflows even float64: only the max-subtracted form gets these right.
    softmax_case("softmax/large_values", false, 2, {3, 4, 5}, 700.0, 800.0),
    softmax_case("softmax/1-d", false, 0, {7}),
    softmax_case("log_softmax/last_dim", true, -1),
    softmax_case("log_softmax/middle_dim", true, 1),
    softmax_case("log_softmax/large_values", true, 0, {3, 4, 5}, -800.0, -700.0),
});

Tensor vec(const std::vector<double>& v) { return from_values(v, {static_cast<int64_t>(v.size())}, DType::f64); }

TEST_CASE("softmax: nodes save {x, y} and attrs {dim} for rules") {
  for (bool log : {false, true}) {
    Tensor x = random_tensor({2, 3}, DType::f64, -1, 1, 52);
    x.set_requires_grad(true);
    const Tensor y = log ? log_softmax(x, -1) : softmax(x, -1);
    const auto node = y.grad_fn();
    REQUIRE(node != nullptr);
    CHECK(node->kind() == (log ? autograd::OpKind::log_softmax : autograd::OpKind::softmax));
    REQUIRE(node->saved.size() == 2);
    CHECK(values(node->saved[0]) == values(x));
    CHECK(values(node->saved[1]) == values(y));
    CHECK(node->attrs == std::vector<double>{1.0});  // dim -1 of a 2-d tensor, wrapped
  }
}

TEST_CASE("softmax: lines sum to one; infinities") {
  const Tensor y = ops::softmax(random_tensor({4, 6}, DType::f32, -5, 5, 53), 1);
  check_close(ops::sum(y, {1}), ones({4}, DType::f32), 1e-6, 0, "softmax row sums");
  const double inf = std::numeric_limits<double>::infinity();
  // -inf entries get probability 0 (a masked attention score); a 0-d input is its own line.
  CHECK(values(ops::softmax(vec({0.0, -inf, 0.0}), 0)) == std::vector<double>{0.5, 0.0, 0.5});
  CHECK(values(ops::log_softmax(vec({0.0, -inf}), 0)) == std::vector<double>{0.0, -inf});
  CHECK(ops::softmax(scalar_tensor(3.0, DType::f64), 0).item() == 1.0);
  CHECK(std::isnan(values(ops::softmax(vec({-inf, -inf}), 0))[0]));  // 0 / 0, as in PyTorch
}

TEST_CASE("softmax: backward kernels match the formulas") {
  const Tensor x = random_tensor({3, 4}, DType::f64, -1, 1, 54);
  const Tensor g = random_tensor({3, 4}, DType::f64, -1, 1, 55);
  const Tensor y = ops::softmax(x, 0);
  // dx_ij = y_ij (g_ij - sum_k g_kj y_kj) along dim 0.
  const auto yv = values(y), gv = values(g);
  std::vector<double> expected(12), expected_log(12);
  const auto ly = values(ops::log_softmax(x, 0));
  for (int j = 0; j < 4; ++j) {
    double dot = 0.0, total = 0.0;
    for (int i = 0; i < 3; ++i) {
      dot += gv[i * 4 + j] * yv[i * 4 + j];
      total += gv[i * 4 + j];
    }
    for (int i = 0; i < 3; ++i) {
      expected[i * 4 + j] = yv[i * 4 + j] * (gv[i * 4 + j] - dot);
      expected_log[i * 4 + j] = gv[i * 4 + j] - std::exp(ly[i * 4 + j]) * total;
    }
  }
  check_close(ops::softmax_backward(y, g, 0), ref::make(expected, {3, 4}), 1e-12, 1e-12, "softmax_backward");
  check_close(ops::log_softmax_backward(ops::log_softmax(x, 0), g, -2), ref::make(expected_log, {3, 4}), 1e-12,
              1e-12, "log_softmax_backward");
}

TEST_CASE("softmax: results do not depend on the thread count") {
  const Tensor x = random_tensor({64, 2048}, DType::f32, -3, 3, 56);
  const Tensor g = random_tensor({64, 2048}, DType::f32, -1, 1, 57);
  const auto run = [&] {
    const Tensor y = ops::softmax(x, 1);
    return std::vector<Tensor>{y, ops::log_softmax(x, 0), ops::softmax_backward(y, g, 1)};
  };
  const int threads = num_threads();
  set_num_threads(1);
  const auto serial = run();
  set_num_threads(threads);
  const auto parallel = run();
  for (size_t i = 0; i < serial.size(); ++i) {
    CHECK(check_close(parallel[i], serial[i], 0, 0, "softmax " + std::to_string(i)));
  }
}

TEST_CASE("softmax: bad arguments raise loupe::Error") {
  const Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH_AS(ops::softmax(x, 2), doctest::Contains("softmax: dim 2 out of range"), Error);
  CHECK_THROWS_AS(log_softmax(x, -3), Error);
  CHECK_THROWS_WITH_AS(ops::softmax(zeros({3}, DType::i64), 0), doctest::Contains("softmax"), Error);
  CHECK_THROWS_AS(ops::log_softmax(zeros({3}, DType::b8), 0), Error);
  CHECK_THROWS_WITH_AS(ops::softmax_backward(x, zeros({3, 2}), 0), doctest::Contains("(3, 2)"), Error);
  CHECK_THROWS_AS(ops::log_softmax_backward(x, zeros({2, 3}, DType::f64), 0), Error);
}

}  // namespace
}  // namespace loupe::test
