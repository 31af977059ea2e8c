// AutocastGuard without a GPU: the thread-local scope nests and restores, only bfloat16 is
// accepted, and CPU tensors are never cast (same dtypes, values and gradients as outside the
// scope). The GPU side is in tests/cuda/test_cuda_amp.cpp.
#include <doctest/doctest.h>

#include <thread>

#include "autograd/autocast.hpp"
#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("autocast: the scope nests, can be disabled inside, and restores on exit") {
  CHECK_FALSE(autocast::is_enabled());
  {
    AutocastGuard outer;
    CHECK(autocast::is_enabled());
    CHECK(autocast::dtype() == DType::bf16);
    {
      AutocastGuard off(DType::bf16, /*enabled=*/false);
      CHECK_FALSE(autocast::is_enabled());
      {
        AutocastGuard inner;
        CHECK(autocast::is_enabled());
      }
      CHECK_FALSE(autocast::is_enabled());
    }
    CHECK(autocast::is_enabled());
    // Thread-local: another thread starts outside any scope.
    bool other_thread = true;
    std::thread([&] { other_thread = autocast::is_enabled(); }).join();
    CHECK_FALSE(other_thread);
  }
  CHECK_FALSE(autocast::is_enabled());
}

TEST_CASE("autocast: only bfloat16 is accepted, and a refused guard changes nothing") {
  CHECK_THROWS_WITH_AS(AutocastGuard{DType::f16}, doctest::Contains("float16"), Error);
  CHECK_THROWS_AS(AutocastGuard{DType::f32}, Error);
  CHECK_FALSE(autocast::is_enabled());
}

TEST_CASE("autocast: CPU tensors are unaffected (dtypes, values, gradients)") {
  const Tensor x0 = random_tensor({2, 3, 6, 6}, DType::f32, -1, 1, 80);
  const Tensor cw0 = random_tensor({4, 3, 3, 3}, DType::f32, -0.5, 0.5, 81);
  const Tensor lw0 = random_tensor({5, 64}, DType::f32, -0.2, 0.2, 82);
  const Tensor lb0 = random_tensor({5}, DType::f32, -0.5, 0.5, 83);
  struct Run {
    Tensor loss, out, cw_grad, lw_grad, lb_grad;
  };
  const auto run = [&](bool with_autocast) {
    Tensor cw = ops::clone(cw0).set_requires_grad(), lw = ops::clone(lw0).set_requires_grad();
    Tensor lb = ops::clone(lb0).set_requires_grad();
    Run r;
    {
      AutocastGuard guard(DType::bf16, with_autocast);
      const Tensor h = relu(conv2d(x0, cw, Tensor(), Conv2dParams{}));  // (2, 4, 4, 4)
      r.out = linear(reshape(h, {2, -1}), lw, lb);
      r.loss = mean(softmax(r.out, 1)) + sum(exp(r.out)) + sum(matmul(r.out, ops::transpose(r.out, 0, 1)));
    }
    backward(r.loss);
    r.cw_grad = cw.grad();
    r.lw_grad = lw.grad();
    r.lb_grad = lb.grad();
    return r;
  };
  const Run plain = run(false), cast = run(true);
  CHECK(cast.out.dtype() == DType::f32);
  CHECK(cast.loss.dtype() == DType::f32);
  check_close(cast.out, plain.out, 0, 0, "output");
  check_close(cast.loss, plain.loss, 0, 0, "loss");
  check_close(cast.cw_grad, plain.cw_grad, 0, 0, "conv weight gradient");
  check_close(cast.lw_grad, plain.lw_grad, 0, 0, "linear weight gradient");
  check_close(cast.lb_grad, plain.lb_grad, 0, 0, "linear bias gradient");
  // autocast_to_float / autocast_to_lower leave CPU tensors alone (the very same tensor).
  AutocastGuard guard;
  CHECK(autocast_to_lower(x0).is_same(x0));
  CHECK(autocast_to_float(x0).is_same(x0));
}

}  // namespace loupe::test
