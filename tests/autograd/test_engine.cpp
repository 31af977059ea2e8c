// The autograd engine: accumulation, diamonds, retain_graph, grad() w.r.t. inputs, no_grad.
#include <doctest/doctest.h>

#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("engine: b = a + a; c = b + b gives dc/da = 4") {
  Tensor a = from_values(std::vector<double>{1.0, 2.0}, {2}, DType::f64).set_requires_grad();
  Tensor b = a + a;
  Tensor c = b + b;
  backward(sum(c));
  CHECK(values(a.grad()) == std::vector<double>{4, 4});
}

TEST_CASE("engine: a diamond sums both paths") {
  Tensor x = scalar_tensor(3.0, DType::f64).set_requires_grad();
  Tensor left = x * x;          // 2x
  Tensor right = exp(x) * 2.0;  // 2 e^x
  Tensor y = left + right;
  backward(y);
  CHECK(x.grad().item() == doctest::Approx(2 * 3.0 + 2 * std::exp(3.0)));
}

TEST_CASE("engine: gradients accumulate across backward calls; retain_graph allows a second pass") {
  Tensor x = scalar_tensor(2.0, DType::f64).set_requires_grad();
  Tensor y = x * x * x;  // 3x^2 = 12
  backward(y, Tensor(), /*retain_graph=*/true);
  CHECK(x.grad().item() == doctest::Approx(12.0));
  backward(y);
  CHECK(x.grad().item() == doctest::Approx(24.0));
  CHECK_THROWS_AS(backward(y), Error);  // the graph was freed by the second pass
  zero_grad({x});
  CHECK(!x.grad().defined());
}

TEST_CASE("engine: grad() w.r.t. leaves and intermediates leaves .grad untouched") {
  Tensor x = from_values(std::vector<double>{1.0, -2.0, 3.0}, {3}, DType::f64).set_requires_grad();
  Tensor h = x * 3.0;
  Tensor y = sum(square(h));  // dy/dh = 2h, dy/dx = 18x
  auto g = grad({y}, {x, h});
  CHECK(values(g[0]) == std::vector<double>{18, -36, 54});
  CHECK(values(g[1]) == std::vector<double>{6, -12, 18});
  CHECK(!x.grad().defined());
}

TEST_CASE("engine: a given output gradient and an unused input") {
  Tensor x = from_values(std::vector<double>{1.0, 2.0}, {2}, DType::f64).set_requires_grad();
  Tensor unused = scalar_tensor(1.0, DType::f64).set_requires_grad();
  Tensor y = x * 2.0;
  auto g = grad({y}, {x, unused}, {from_values(std::vector<double>{10, 100}, {2}, DType::f64)});
  CHECK(values(g[0]) == std::vector<double>{20, 200});
  CHECK(!g[1].defined());
  CHECK_THROWS_AS(backward(y), Error);  // non-scalar output needs a grad_output
}

TEST_CASE("engine: no_grad records nothing; detach cuts history") {
  Tensor x = scalar_tensor(1.0, DType::f64).set_requires_grad();
  {
    NoGradGuard guard;
    Tensor y = x * 2.0;
    CHECK(!y.requires_grad());
    {
      EnableGradGuard enable;
      CHECK((x * 2.0).requires_grad());
    }
  }
  CHECK(!(x.detach() * 2.0).requires_grad());
  CHECK_THROWS_AS(backward(x.detach() * 2.0), Error);
}

TEST_CASE("engine: broadcast gradients are reduced to the input shape") {
  Tensor a = random_tensor({3, 1}, DType::f64).set_requires_grad();
  Tensor b = random_tensor({4}, DType::f64).set_requires_grad();
  backward(sum(a * b));
  CHECK(a.grad().shape() == Shape{3, 1});
  CHECK(b.grad().shape() == Shape{4});
  const double sum_b = values(ops::sum(b))[0];
  for (double v : values(a.grad())) CHECK(v == doctest::Approx(sum_b));
}

TEST_CASE("engine: a deep chain runs without recursion") {
  Tensor x = scalar_tensor(1.0, DType::f64).set_requires_grad();
  Tensor y = x;
  for (int i = 0; i < 200000; ++i) y = y * 1.0;
  backward(y);
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("engine: views are differentiable") {
  Tensor x = random_tensor({2, 3}, DType::f64).set_requires_grad();
  Tensor y = sum(transpose(x, 0, 1) * from_values(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2}, DType::f64));
  backward(y);
  // x^T (3, 2) weights w[i][j] -> x[j][i] gets w[i][j].
  CHECK(values(x.grad()) == std::vector<double>{1, 3, 5, 2, 4, 6});
}

}  // namespace loupe::test

#include "autograd/record.hpp"

namespace loupe::test {

TEST_CASE("engine: grad() runs only the part of the graph that leads to the requested inputs") {
  // z = (x * w) computed by a node that reports which input gradients it was asked for.
  Tensor x = random_tensor({3}, DType::f64).set_requires_grad();
  Tensor w = random_tensor({3}, DType::f64, -1, 1, 9).set_requires_grad();
  std::vector<std::pair<bool, bool>> asked;
  auto product = [&] {
    Tensor out = ops::mul(x, w);
    return autograd::record(
        out, autograd::OpKind::custom, "product", {x, w},
        [&asked](const autograd::Node& n, const Tensor& g) -> std::vector<Tensor> {
          asked.emplace_back(n.needs_input_grad(0), n.needs_input_grad(1));
          return {n.needs_input_grad(0) ? ops::mul(g, n.saved[1]) : Tensor(),
                  n.needs_input_grad(1) ? ops::mul(g, n.saved[0]) : Tensor()};
        },
        {x, w});
  };
  // A branch that only involves w: it must not run when only x's gradient is wanted.
  Tensor y = sum(product()) + sum(exp(w));
  const Tensor gx = grad({y}, {x}, {}, /*retain_graph=*/true)[0];
  check_close(gx, w, 0, 0, "d y / d x");
  REQUIRE(asked.size() == 1);
  CHECK(asked[0] == std::make_pair(true, false));
  const Tensor gw = grad({y}, {w})[0];
  check_close(gw, ops::add(x, ops::exp(w)), 1e-12, 1e-12, "d y / d w");
  CHECK(asked[1] == std::make_pair(false, true));
  // backward() still fills every leaf's .grad.
  Tensor y2 = sum(product());
  backward(y2);
  CHECK(asked[2] == std::make_pair(true, true));
  CHECK(x.grad().defined());
  CHECK(w.grad().defined());
}

}  // namespace loupe::test
