// MpiCommunicator. See mpi_communicator.hpp.
#include "distributed/mpi_communicator.hpp"

// Only the C API: Open MPI's deprecated C++ bindings do not compile warning-free.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdlib>
#include <string>

namespace loupe::distributed {

namespace {

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(std::string("distributed: ") + call + " failed: " + std::string(text, static_cast<size_t>(length)));
}

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    default: throw Error(std::string("distributed: no MPI type for ") + dtype_name(dtype));
  }
}

void check_cpu(const Tensor& t, const char* op) {
  LOUPE_CHECK(t.device().is_cpu(), op, ": the MPI transport takes CPU tensors, got one on ", t.device().str(),
              " (GPU tensors go through NCCL)");
  LOUPE_CHECK(t.numel() <= INT32_MAX, op, ": ", t.numel(), " elements is more than one MPI call takes");
}

class MpiWork : public Work {
 public:
  MpiWork() = default;
  ~MpiWork() override {
    // A reduction still in flight writes into its tensor: finish it before the handle goes.
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }
  MPI_Request* request() { return &request_; }
  bool test() override {
    if (request_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    check_mpi(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;
  }
  void wait() override {
    if (request_ != MPI_REQUEST_NULL) check_mpi(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait");
  }

 private:
  MPI_Request request_ = MPI_REQUEST_NULL;
};

// MPI_Finalize at normal exit (after every communicator handle is gone or not: MPI needs it once).
struct MpiSession {
  MpiSession() {
    // A rank waiting in a collective busy-polls by default. With more ranks (and loupe threads)
    // than free cores, as on a shared machine, the poller takes the core from the rank that would
    // finish the work it waits for: measured on 2 shared cores, a 2-rank epoch took 17.5 s polling
    // and 2.3 s yielding (docs/distributed.md). Yield unless the user chose otherwise.
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  }
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  std::unique_ptr<Work> all_reduce_sum_async(Tensor t) override {
    check_collective_tensor(t, "all_reduce_sum");
    check_cpu(t, "all_reduce_sum");
    auto work = std::make_unique<MpiWork>();
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), MPI_SUM,
                             MPI_COMM_WORLD, work->request()),
              "MPI_Iallreduce");
    return work;
  }

  void broadcast(Tensor t, int root) override {
    check_collective_tensor(t, "broadcast");
    check_cpu(t, "broadcast");
    LOUPE_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of ", size_);
    check_mpi(MPI_Bcast(t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), root, MPI_COMM_WORLD),
              "MPI_Bcast");
  }

  std::vector<std::string> all_gather_bytes(const std::string& mine) override {
    LOUPE_CHECK(mine.size() <= INT32_MAX, "all_gather_bytes: ", mine.size(), " bytes is more than one MPI call takes");
    int length = static_cast<int>(mine.size());
    std::vector<int> lengths(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    check_mpi(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[r] = static_cast<int>(total);
      total += lengths[r];
    }
    LOUPE_CHECK(total <= INT32_MAX, "all_gather_bytes: ", total, " bytes in all is more than one MPI call takes");
    std::string all(static_cast<size_t>(total), '\0');
    check_mpi(MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR,
                             MPI_COMM_WORLD),
              "MPI_Allgatherv");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(static_cast<size_t>(offsets[r]), static_cast<size_t>(lengths[r])));
    return out;
  }

  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::shared_ptr<Communicator> make_mpi_communicator() {
  static MpiSession session;
  return std::make_shared<MpiCommunicator>();
}

}  // namespace loupe::distributed
