// Gradient-ready hooks (autograd/hooks.hpp): called once per leaf, when its .grad is final, in
// the order backward finishes the leaves; not for unreached leaves, not from grad().
#include <doctest/doctest.h>

#include <map>
#include <vector>

#include "autograd/hooks.hpp"
#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("hooks: a leaf used twice is reported once, with its summed gradient") {
  Tensor w = scalar_tensor(3.0, DType::f64).set_requires_grad();
  Tensor x = scalar_tensor(2.0, DType::f64).set_requires_grad();
  Tensor unused = scalar_tensor(1.0, DType::f64).set_requires_grad();
  std::map<const AutogradMeta*, std::vector<double>> seen;  // the .grad value at each call
  {
    autograd::GradReadyScope scope([&](AutogradMeta& leaf) { seen[&leaf].push_back(leaf.grad->item()); });
    // y = w*x + w*w: dy/dw = x + 2w = 8 (two edges into w), dy/dx = w = 3
    backward(w * x + w * w);
  }
  REQUIRE(seen.size() == 2);
  CHECK(seen[w.autograd_meta_ptr().get()] == std::vector<double>{8.0});
  CHECK(seen[x.autograd_meta_ptr().get()] == std::vector<double>{3.0});
  CHECK(seen.count(unused.autograd_meta_ptr().get()) == 0);
}

TEST_CASE("hooks: later layers' parameters are final first (the order buckets are reduced in)") {
  Tensor w1 = from_values(std::vector<double>{0.5, -1.0}, {2}, DType::f64).set_requires_grad();
  Tensor w2 = from_values(std::vector<double>{2.0, 1.5}, {2}, DType::f64).set_requires_grad();
  Tensor w3 = from_values(std::vector<double>{-1.0, 0.25}, {2}, DType::f64).set_requires_grad();
  Tensor x = from_values(std::vector<double>{1.0, 2.0}, {2}, DType::f64);
  std::vector<const AutogradMeta*> order;
  autograd::GradReadyScope scope([&](AutogradMeta& leaf) { order.push_back(&leaf); });
  backward(sum(tanh(tanh(x * w1) * w2) * w3));
  REQUIRE(order.size() == 3);
  CHECK(order[0] == w3.autograd_meta_ptr().get());
  CHECK(order[1] == w2.autograd_meta_ptr().get());
  CHECK(order[2] == w1.autograd_meta_ptr().get());
}

TEST_CASE("hooks: grad() calls no hook, a scope ends with its lifetime, an inner scope replaces the outer") {
  Tensor w = scalar_tensor(3.0, DType::f64).set_requires_grad();
  int outer = 0, inner = 0;
  autograd::GradReadyScope outer_scope([&](AutogradMeta&) { ++outer; });
  grad({w * w}, {w});
  CHECK(outer == 0);
  {
    autograd::GradReadyScope inner_scope([&](AutogradMeta&) { ++inner; });
    backward(w * w);
  }
  CHECK(inner == 1);
  CHECK(outer == 0);
  backward(w * w);
  CHECK(outer == 1);
  CHECK(w.grad().item() == doctest::Approx(12.0));
}

}  // namespace loupe::test
