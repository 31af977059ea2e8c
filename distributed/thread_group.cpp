// ThreadGroupCommunicator. See thread_group.hpp.
#include "distributed/thread_group.hpp"

#include <barrier>
#include <exception>
#include <mutex>
#include <thread>

#include "tensor/ops.hpp"

namespace loupe::distributed {

namespace {

// What the ranks of one group share.
struct Shared {
  explicit Shared(int size) : size(size), barrier(size), tensors(size), bytes(size) {}
  int size;
  std::barrier<> barrier;
  std::vector<Tensor> tensors;     // each rank's published tensor
  std::vector<std::string> bytes;  // each rank's published bytes
};

class ThreadGroupCommunicator : public Communicator {
 public:
  ThreadGroupCommunicator(Shared& shared, int rank) : shared_(shared), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return shared_.size; }
  std::string backend() const override { return "threads"; }

  std::unique_ptr<Work> all_reduce_sum_async(Tensor t) override {
    check_collective_tensor(t, "all_reduce_sum");
    shared_.tensors[rank_] = t;
    shared_.barrier.arrive_and_wait();
    Tensor sum = ops::clone(shared_.tensors[0]);
    for (int r = 1; r < shared_.size; ++r) {
      const Tensor& other = shared_.tensors[r];
      LOUPE_CHECK(other.shape() == t.shape() && other.dtype() == t.dtype(), "all_reduce_sum: rank ", r, " gave ",
                  shape_str(other.shape()), " ", dtype_name(other.dtype()), ", rank ", rank_, " ",
                  shape_str(t.shape()), " ", dtype_name(t.dtype()));
      ops::add_(sum, other);
    }
    shared_.barrier.arrive_and_wait();  // everyone has read every rank's tensor
    ops::copy_(t, sum);
    shared_.tensors[rank_] = Tensor();
    return std::make_unique<DoneWork>();
  }

  void broadcast(Tensor t, int root) override {
    check_collective_tensor(t, "broadcast");
    LOUPE_CHECK(root >= 0 && root < shared_.size, "broadcast: root ", root, " is not a rank of ", shared_.size);
    shared_.tensors[rank_] = t;
    shared_.barrier.arrive_and_wait();
    const Tensor source = rank_ == root ? t : ops::clone(shared_.tensors[root]);
    shared_.barrier.arrive_and_wait();
    if (rank_ != root) ops::copy_(t, source);
    shared_.tensors[rank_] = Tensor();
  }

  std::vector<std::string> all_gather_bytes(const std::string& mine) override {
    shared_.bytes[rank_] = mine;
    shared_.barrier.arrive_and_wait();
    std::vector<std::string> all = shared_.bytes;
    shared_.barrier.arrive_and_wait();
    return all;
  }

  void barrier() override { shared_.barrier.arrive_and_wait(); }

 private:
  Shared& shared_;
  int rank_;
};

}  // namespace

void run_thread_group(int size, const std::function<void(Communicator& comm)>& fn) {
  LOUPE_CHECK(size >= 1 && size <= 64, "run_thread_group: size must be in [1, 64], got ", size);
  Shared shared(size);
  std::vector<std::exception_ptr> errors(size);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < size; ++rank) {
    threads.emplace_back([&, rank] {
      ThreadGroupCommunicator comm(shared, rank);
      try {
        fn(comm);
      } catch (...) {
        errors[rank] = std::current_exception();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace loupe::distributed
