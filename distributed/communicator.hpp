// Communicators: the collective operations data-parallel training and sharded explanation need
// (sum all-reduce, broadcast, all-gather of bytes, barrier) behind one interface, with one
// implementation per transport:
//   LocalCommunicator        one process, size 1: every collective is the identity (this file)
//   ThreadGroupCommunicator  N ranks as N threads of one process (thread_group.hpp): tests, teaching
//   MpiCommunicator          processes started by mpirun, CPU tensors (mpi_communicator.hpp;
//                            built when MPI is found)
//   NcclCommunicator         one GPU per process, CUDA tensors through NCCL, CPU tensors and
//                            bytes through MPI (nccl_communicator.hpp; built when NCCL and MPI are)
// Tensors passed in are contiguous, float32 / float64 / int64, and reduced in place. Every rank
// must call the same collectives in the same order (as in MPI); a rank that stops early leaves
// the others waiting, so command-line programs call abort() on an error (it ends all ranks).
// Layering: distributed/ sits between autograd/ and nn/ (docs/architecture.md): it uses tensors
// and autograd hooks, and nn/ (the Trainer, batch norm) uses it.
// Tests: tests/distributed/test_communicator.cpp (threads), tests/distributed/test_mpi.cpp (mpirun)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::distributed {

// An operation in flight (a non-blocking all-reduce). wait() returns when the result is in place;
// test() lets the transport make progress and says whether it is done.
class Work {
 public:
  virtual ~Work() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

// A Work that finished when it was made (transports without non-blocking collectives).
class DoneWork : public Work {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "local", "threads", "mpi", "nccl"

  // Sum over ranks of `t`, written into `t` on every rank. The async form starts it and returns
  // at once where the transport allows (MPI_Iallreduce, an NCCL stream).
  virtual std::unique_ptr<Work> all_reduce_sum_async(Tensor t) = 0;
  void all_reduce_sum(Tensor t) { all_reduce_sum_async(std::move(t))->wait(); }
  // Root's `t` copied into `t` on every rank.
  virtual void broadcast(Tensor t, int root) = 0;
  // Every rank's bytes, in rank order, on every rank.
  virtual std::vector<std::string> all_gather_bytes(const std::string& mine) = 0;
  virtual void barrier() = 0;
  // Ends every rank with this exit code (MPI_Abort); a single process just exits.
  [[noreturn]] virtual void abort(int code);

  bool is_root() const { return rank() == 0; }
};

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  std::unique_ptr<Work> all_reduce_sum_async(Tensor t) override;
  void broadcast(Tensor t, int root) override;
  std::vector<std::string> all_gather_bytes(const std::string& mine) override { return {mine}; }
  void barrier() override {}
};

// Raises loupe::Error unless `t` is a defined, contiguous float32/float64/int64 tensor; `op`
// names the collective in the message.
void check_collective_tensor(const Tensor& t, const char* op);

// Whether this process was started by an MPI launcher (mpirun / mpiexec set OMPI_COMM_WORLD_SIZE,
// PMI_SIZE or PMIX_RANK), and with how many processes (1 when not).
bool launched_by_mpi();
int launched_size();
// The rank of this process among those on its machine (for choosing its GPU); 0 when not launched.
int local_rank();
// Under an MPI launcher, gives this process's thread pool cores / (ranks on this machine) threads,
// unless LOUPE_NUM_THREADS chooses: N full-size pools on the same cores would fight over them.
void share_cores_between_ranks();
// Whether this build has the MPI and NCCL transports.
bool mpi_available();
bool nccl_available();

// The communicator of all processes of this job: a LocalCommunicator when not started by an MPI
// launcher (or started with one process), MPI otherwise, NCCL when `device` is a GPU. Created once
// (MPI_Init) and shared; later calls return the same one. Raises loupe::Error when started under
// mpirun by a build without MPI, or for GPUs without NCCL.
std::shared_ptr<Communicator> world(Device device = Device::cpu());

}  // namespace loupe::distributed
