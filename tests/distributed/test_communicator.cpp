// The communicator layer on ranks that are threads (distributed/thread_group.hpp): all-reduce,
// broadcast, all-gather, bad tensors; and the bucketed GradientReducer: N ranks with shards of a
// batch end with the gradient one process computes on the whole batch, buckets run in reverse
// parameter order and start during backward. The same over real processes: test_mpi.cpp.
#include <doctest/doctest.h>

#include <mutex>

#include "distributed/gradient_reducer.hpp"
#include "distributed/thread_group.hpp"
#include "tests/support.hpp"

namespace loupe::test {

using distributed::Communicator;
using distributed::run_thread_group;

TEST_CASE("communicator: thread ranks all-reduce float32/float64/int64 and broadcast, in place") {
  for (int ranks : {1, 2, 3}) {
    CAPTURE(ranks);
    std::mutex mutex;
    std::vector<std::vector<double>> sums(ranks), casts(ranks);
    run_thread_group(ranks, [&](Communicator& comm) {
      const double r = comm.rank();
      Tensor a = from_values(std::vector<double>{r, 10 * r, 1.0}, {3}, DType::f32);
      Tensor b = from_values(std::vector<double>{r + 0.5}, {1}, DType::f64);
      Tensor c = from_values(std::vector<int64_t>{comm.rank() + 1}, {1});
      comm.all_reduce_sum(a);
      comm.all_reduce_sum(b);
      comm.all_reduce_sum(c);
      Tensor d = from_values(std::vector<double>{r, r}, {2}, DType::f64);
      comm.broadcast(d, comm.size() - 1);
      std::lock_guard<std::mutex> lock(mutex);
      sums[comm.rank()] = {values(a)[0], values(a)[1], values(a)[2], values(b)[0], values(c)[0]};
      casts[comm.rank()] = values(d);
    });
    const double n = ranks, rank_sum = n * (n - 1) / 2;
    for (int r = 0; r < ranks; ++r) {
      CHECK(sums[r] == std::vector<double>{rank_sum, 10 * rank_sum, n, rank_sum + 0.5 * n, rank_sum + n});
      CHECK(casts[r] == std::vector<double>{n - 1, n - 1});
    }
  }
}

TEST_CASE("communicator: all-gather of bytes in rank order; bad tensors are refused by name") {
  std::vector<std::string> gathered;
  std::mutex mutex;
  run_thread_group(3, [&](Communicator& comm) {
    auto all = comm.all_gather_bytes(std::string(static_cast<size_t>(comm.rank()), 'x') + "|");
    std::lock_guard<std::mutex> lock(mutex);
    if (comm.rank() == 1) gathered = all;
  });
  CHECK(gathered == std::vector<std::string>{"|", "x|", "xx|"});

  distributed::LocalCommunicator local;
  Tensor strided = ops::transpose(random_tensor({3, 4}), 0, 1);
  CHECK_THROWS_WITH_AS(local.all_reduce_sum(strided), doctest::Contains("contiguous"), Error);
  CHECK_THROWS_WITH_AS(local.all_reduce_sum(ops::to_dtype(random_tensor({3}), DType::b8)), doctest::Contains("bool"), Error);
  CHECK_THROWS_WITH_AS(local.broadcast(random_tensor({2}), 1), doctest::Contains("root 1"), Error);
  Tensor same = from_values(std::vector<double>{1, 2}, {2});
  local.all_reduce_sum(same);  // one rank: the identity
  CHECK(values(same) == std::vector<double>{1, 2});
}

namespace {

// A small two-layer model as plain tensors: (N, 4) -> tanh(x W1^T + b1) W2^T + b2 -> mean square.
struct Tiny {
  std::vector<Tensor> parameters;
  explicit Tiny(uint64_t seed) {
    parameters = {random_tensor({6, 4}, DType::f64, -1, 1, seed), random_tensor({6}, DType::f64, -1, 1, seed + 1),
                  random_tensor({3, 6}, DType::f64, -1, 1, seed + 2), random_tensor({3}, DType::f64, -1, 1, seed + 3)};
    for (Tensor& p : parameters) p.set_requires_grad();
  }
  // The mean over rows of this shard, times its share of the whole batch (as the Trainer does).
  Tensor loss(const Tensor& x, double share) const {
    Tensor h = tanh(add(matmul(x, transpose(parameters[0], 0, 1)), parameters[1]));
    Tensor y = add(matmul(h, transpose(parameters[2], 0, 1)), parameters[3]);
    return mul(mean(square(y)), share);
  }
};

}  // namespace

TEST_CASE("GradientReducer: thread ranks with shards of a batch get the whole batch's gradient") {
  const Tensor batch = random_tensor({10, 4}, DType::f64, -2, 2, 77);
  Tiny reference(5);
  backward(reference.loss(batch, 1.0));
  for (int ranks : {2, 3}) {
    for (int64_t bucket_bytes : {int64_t{1} << 20, int64_t{64}}) {  // one bucket; one per parameter or so
      CAPTURE(ranks);
      CAPTURE(bucket_bytes);
      std::mutex mutex;
      std::vector<std::vector<Tensor>> grads(ranks);
      std::vector<std::vector<std::vector<size_t>>> buckets(ranks);
      std::vector<int64_t> started(ranks);
      run_thread_group(ranks, [&](Communicator& comm) {
        Tiny model(5);
        auto comm_ptr = std::shared_ptr<Communicator>(&comm, [](Communicator*) {});
        distributed::GradientReducer reducer(model.parameters, comm_ptr, bucket_bytes);
        const int64_t n = batch.size(0);
        const int64_t lo = n * comm.rank() / comm.size(), hi = n * (comm.rank() + 1) / comm.size();
        reducer.backward(model.loss(ops::narrow(batch, 0, lo, hi - lo), static_cast<double>(hi - lo) / n));
        std::lock_guard<std::mutex> lock(mutex);
        for (const Tensor& p : model.parameters) grads[comm.rank()].push_back(p.grad());
        buckets[comm.rank()] = reducer.bucket_parameters();
        started[comm.rank()] = reducer.buckets_started_during_backward();
      });
      for (int r = 0; r < ranks; ++r) {
        for (size_t k = 0; k < grads[r].size(); ++k) {
          CHECK(check_close(grads[r][k], reference.parameters[k].grad(), 1e-12, 1e-10, "parameter gradient"));
        }
      }
      if (bucket_bytes == 64) {
        // 8-byte elements: b2 (24 B) and W2 (144 B) cannot share; reverse order: b2 first, W1 last.
        REQUIRE(buckets[0].size() >= 3);
        CHECK(buckets[0].front().front() == 3);
        CHECK(buckets[0].back().back() == 0);
        // Every bucket's parameters are final before backward reaches W1's: all but the last
        // bucket started while backward was still running.
        CHECK(started[0] >= static_cast<int64_t>(buckets[0].size()) - 1);
      } else {
        CHECK(buckets[0].size() == 1);
      }
    }
  }
}

TEST_CASE("GradientReducer: a parameter backward does not reach gets zeros on every rank") {
  run_thread_group(2, [&](Communicator& comm) {
    Tensor used = from_values(std::vector<double>{1.0, 2.0}, {2}, DType::f64).set_requires_grad();
    Tensor unused = from_values(std::vector<double>{3.0}, {1}, DType::f64).set_requires_grad();
    distributed::GradientReducer reducer({used, unused}, std::shared_ptr<Communicator>(&comm, [](Communicator*) {}));
    reducer.backward(sum(mul(used, static_cast<double>(comm.rank() + 1))));
    CHECK(values(used.grad()) == std::vector<double>{3.0, 3.0});  // 1 + 2 from the two ranks
    CHECK(values(unused.grad()) == std::vector<double>{0.0});
  });
}

}  // namespace loupe::test
