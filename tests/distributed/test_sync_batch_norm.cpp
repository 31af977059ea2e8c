// Synchronised batch norm (distributed/sync_batch_norm.hpp): its backward against finite
// differences (gradcheck, one rank: the all-reduces are the identity), and 2 or 3 thread ranks
// holding shards of a batch against batch_norm of the whole batch: outputs, input gradients,
// weight/bias gradients summed over ranks, running statistics. Also BatchNorm2d with a sync group.
#include <doctest/doctest.h>

#include <mutex>

#include "distributed/sync_batch_norm.hpp"
#include "distributed/thread_group.hpp"
#include "nn/layers/norm.hpp"
#include "tests/support.hpp"

namespace loupe::test {

using distributed::Communicator;

TEST_CASE("sync_batch_norm: gradcheck of x, weight and bias on one rank (4-D and 2-D input)") {
  distributed::LocalCommunicator local;
  for (const Shape& shape : {Shape{3, 2, 2, 3}, Shape{5, 3}}) {
    CAPTURE(shape_str(shape));
    const int64_t c = shape[1];
    Tensor x = random_tensor(shape, DType::f64, -2, 2, 3);
    Tensor w = random_tensor({c}, DType::f64, 0.5, 1.5, 4);
    Tensor b = random_tensor({c}, DType::f64, -1, 1, 5);
    auto result = gradcheck(
        [&](const std::vector<Tensor>& in) {
          return distributed::sync_batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], 0.1, 1e-5, local);
        },
        {x, w, b});
    CHECK_MESSAGE(result.ok, result.message);
  }
}

TEST_CASE("sync_batch_norm: thread ranks with shards equal batch_norm of the whole batch") {
  const int64_t n = 7, c = 3;
  const Tensor x_all = random_tensor({n, c, 2, 3}, DType::f64, -2, 2, 11);
  const Tensor g_all = random_tensor({n, c, 2, 3}, DType::f64, -1, 1, 12);  // dL/dy
  const Tensor w0 = random_tensor({c}, DType::f64, 0.5, 1.5, 13), b0 = random_tensor({c}, DType::f64, -1, 1, 14);
  // Reference: one process, the whole batch.
  Tensor x_ref = ops::clone(x_all).set_requires_grad(), w_ref = ops::clone(w0).set_requires_grad(),
         b_ref = ops::clone(b0).set_requires_grad();
  Tensor rm_ref = zeros({c}, DType::f64), rv_ref = ones({c}, DType::f64);
  Tensor y_ref = batch_norm(x_ref, rm_ref, rv_ref, w_ref, b_ref, true, 0.1, 1e-5);
  backward(y_ref, g_all);
  for (int ranks : {2, 3}) {
    CAPTURE(ranks);
    std::mutex mutex;
    std::vector<Tensor> ys(ranks), dxs(ranks), running(ranks);
    Tensor dw = zeros({c}, DType::f64), db = zeros({c}, DType::f64);
    distributed::run_thread_group(ranks, [&](Communicator& comm) {
      const int64_t lo = n * comm.rank() / ranks, hi = n * (comm.rank() + 1) / ranks;
      Tensor x = ops::clone(ops::narrow(x_all, 0, lo, hi - lo)).set_requires_grad();
      Tensor w = ops::clone(w0).set_requires_grad(), b = ops::clone(b0).set_requires_grad();
      Tensor rm = zeros({c}, DType::f64), rv = ones({c}, DType::f64);
      Tensor y = distributed::sync_batch_norm(x, rm, rv, w, b, 0.1, 1e-5, comm);
      backward(y, ops::narrow(g_all, 0, lo, hi - lo));
      std::lock_guard<std::mutex> lock(mutex);
      ys[comm.rank()] = y.detach();
      dxs[comm.rank()] = x.grad();
      running[comm.rank()] = ops::cat({rm, rv});
      ops::add_(dw, w.grad());
      ops::add_(db, b.grad());
    });
    CHECK(check_close(ops::cat(ys, 0), y_ref.detach(), 1e-12, 1e-10, "output"));
    CHECK(check_close(ops::cat(dxs, 0), x_ref.grad(), 1e-12, 1e-10, "input gradient"));
    CHECK(check_close(dw, w_ref.grad(), 1e-12, 1e-10, "weight gradient"));
    CHECK(check_close(db, b_ref.grad(), 1e-12, 1e-10, "bias gradient"));
    for (int r = 0; r < ranks; ++r) CHECK(check_close(running[r], ops::cat({rm_ref, rv_ref}), 1e-12, 1e-10, "running"));
  }
}

TEST_CASE("sync_batch_norm: BatchNorm2d with a sync group normalises by the global batch; errors name the shape") {
  const Tensor x_all = random_tensor({4, 2, 3, 3}, DType::f32, -2, 2, 21);
  nn::BatchNorm2d whole(2);
  const Tensor y_ref = whole(x_all);
  std::mutex mutex;
  std::vector<Tensor> ys(2);
  distributed::run_thread_group(2, [&](Communicator& comm) {
    nn::BatchNorm2d bn(2);
    CHECK(nn::set_sync_batch_norm(bn, std::shared_ptr<Communicator>(&comm, [](Communicator*) {})) == 1);
    const Tensor y = bn(ops::narrow(x_all, 0, 2 * comm.rank(), 2));
    std::lock_guard<std::mutex> lock(mutex);
    ys[comm.rank()] = y.detach();
    CHECK(check_close(bn.running_mean, whole.running_mean, 1e-6, 1e-5, "running mean"));
    CHECK(check_close(bn.running_var, whole.running_var, 1e-6, 1e-5, "running var"));
  });
  CHECK(check_close(ops::cat(ys, 0), y_ref.detach(), 1e-5, 1e-5, "output"));
  distributed::LocalCommunicator local;
  CHECK_THROWS_WITH_AS(distributed::sync_batch_norm(random_tensor({2, 3, 4}), Tensor(), Tensor(), Tensor(), Tensor(), 0.1,
                                                    1e-5, local),
                       doctest::Contains("(2, 3, 4)"), Error);
  CHECK_THROWS_WITH_AS(distributed::sync_batch_norm(random_tensor({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), 0.1,
                                                    1e-5, local),
                       doctest::Contains("more than one"), Error);
}

}  // namespace loupe::test
