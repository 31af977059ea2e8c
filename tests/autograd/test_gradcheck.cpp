// gradcheck itself: it must accept right backwards and reject wrong ones, on both paths
// (full Jacobian and random projections).
#include <doctest/doctest.h>

#include "autograd/record.hpp"
#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {
// y = x^3 with a backward scaled by `factor` (1 = right, anything else = wrong).
Tensor cube_with_backward(const Tensor& x, double factor) {
  Tensor y = ops::mul(ops::mul(x, x), x);
  if (!autograd::should_record({x})) return y;
  return autograd::record(
      y, autograd::OpKind::custom, "cube", {x},
      [factor](const autograd::Node& n, const Tensor& g) -> std::vector<Tensor> {
        return {ops::mul(ops::mul(g, ops::mul(ops::square(n.saved[0]), 3.0)), factor)};
      },
      {x});
}
}  // namespace

TEST_CASE("gradcheck accepts a correct backward and rejects a wrong one (full Jacobian)") {
  const Tensor x = random_tensor({3, 4}, DType::f64, 0.5, 1.5);
  auto right = gradcheck([](const Inputs& in) { return cube_with_backward(in[0], 1.0); }, {x});
  CHECK(right.ok);
  CHECK(right.max_error < 1e-6);
  auto wrong = gradcheck([](const Inputs& in) { return cube_with_backward(in[0], 1.01); }, {x});
  CHECK(!wrong.ok);
  CHECK(wrong.message.find("analytic") != std::string::npos);
}

TEST_CASE("gradcheck accepts a correct backward and rejects a wrong one (projections)") {
  const Tensor x = random_tensor({30, 20}, DType::f64, 0.5, 1.5);  // 600 elements > full limit
  auto right = gradcheck([](const Inputs& in) { return cube_with_backward(in[0], 1.0); }, {x});
  CHECK(right.ok);
  auto wrong = gradcheck([](const Inputs& in) { return cube_with_backward(in[0], 1.05); }, {x});
  CHECK(!wrong.ok);
}

TEST_CASE("gradcheck passes integer inputs through and differentiates the float ones") {
  const Tensor x = random_tensor({5}, DType::f64);
  const Tensor k = arange(5);
  auto result = gradcheck([](const Inputs& in) { return in[0] * ops::to_dtype(in[1], DType::f64); }, {x, k});
  CHECK(result.ok);
}

}  // namespace loupe::test
