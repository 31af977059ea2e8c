// Bad input raises loupe::Error with a message naming the op and the offending shapes/dtypes.
#include <doctest/doctest.h>

#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("errors: broadcasting failures name the op and both shapes") {
  CHECK_THROWS_WITH_AS(ops::add(zeros({2, 3}), zeros({4, 3})), doctest::Contains("add: shapes (2, 3) and (4, 3)"), Error);
  CHECK_THROWS_WITH_AS(ops::where(ops::gt(zeros({2}), zeros({2})), zeros({3}), zeros({2})), doctest::Contains("where"),
                       Error);
}

TEST_CASE("errors: dims out of range") {
  CHECK_THROWS_WITH_AS(ops::transpose(zeros({2, 3}), 0, 2), doctest::Contains("transpose: dim 2 out of range"), Error);
  CHECK_THROWS_AS(ops::select(zeros({2, 3}), 1, 3), Error);
  CHECK_THROWS_AS(ops::narrow(zeros({4}), 0, 2, 3), Error);
  CHECK_THROWS_AS(ops::sum(zeros({2, 3}), {0, 0}), Error);
  CHECK_THROWS_AS(ops::sum(zeros({2, 3}), {-3}), Error);
}

TEST_CASE("errors: dtypes") {
  CHECK_THROWS_WITH_AS(zeros({2}).data<double>(), doctest::Contains("float32"), Error);
  CHECK_THROWS_WITH_AS(ops::unary_backward(ops::UnaryOp::exp, arange(2), arange(2), arange(2)),
                       doctest::Contains("exp"), Error);
  CHECK_THROWS_AS(ops::where(zeros({2}), zeros({2}), zeros({2})), Error);  // condition not bool
  CHECK_THROWS_AS(arange(3).set_requires_grad(true), Error);              // integers have no gradient
  CHECK_THROWS_AS(ops::relu(ops::gt(zeros({2}), zeros({2}))), Error);      // bool input
}

TEST_CASE("errors: views outside their storage and undefined tensors") {
  Tensor t = zeros({4});
  CHECK_THROWS_AS(Tensor::view_of(t.storage(), 2, {3}, {1}, DType::f32), Error);
  CHECK_THROWS_AS(Tensor::view_of(t.storage(), 0, {2}, {-1}, DType::f32), Error);
  Tensor undefined;
  CHECK_THROWS_WITH_AS(undefined.shape(), doctest::Contains("undefined"), Error);
  CHECK_THROWS_AS(Tensor::empty({-1}), Error);
  CHECK_THROWS_AS(ops::view(zeros({2, 3}), {4}), Error);
  CHECK_THROWS_AS(ops::reshape(zeros({2, 3}), {-1, -1}), Error);
  CHECK_THROWS_AS(Device::parse("gpu"), Error);
}

TEST_CASE("errors: autograd misuse") {
  Tensor x = random_tensor({3}, DType::f64).set_requires_grad();
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(backward(y), doctest::Contains("grad_output"), Error);
  CHECK_THROWS_AS(backward(y, zeros({2}, DType::f64)), Error);
  CHECK_THROWS_AS(grad({sum(y)}, {zeros({3}, DType::f64)}), Error);  // input does not require grad
  CHECK_THROWS_AS(y.set_requires_grad(false), Error);                // non-leaf
}

}  // namespace loupe::test
