// The NCCL transport (distributed/nccl_communicator.hpp). Needs a GPU: skipped (and counted as
// skipped) without one or in a build without NCCL. One GPU: a one-rank NCCL communicator reduces
// and broadcasts CUDA tensors in place (identity) and hands CPU tensors to its host transport.
// Two or more GPUs and mpirun: `mpirun -np 2 loupe train --device cuda --sync-bn` reaches the
// parameters of one process on one GPU (the CPU test's data and tolerance).
// Not yet run anywhere: this project's machine has no GPU (docs/distributed.md).
#include <doctest/doctest.h>

#include "distributed/config.hpp"
#include "tensor/cuda/backend.hpp"
#include "tests/distributed/mpi_util.hpp"
#include "tests/distributed/train_ranks_util.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"
#ifdef LOUPE_WITH_NCCL
#include "distributed/nccl_communicator.hpp"
#endif

namespace loupe::test {

#ifdef LOUPE_WITH_NCCL
TEST_CASE("nccl: one rank reduces and broadcasts CUDA tensors in place" * doctest::skip(cuda::device_count() < 1)) {
  auto host = std::make_shared<distributed::LocalCommunicator>();
  auto comm = distributed::make_nccl_communicator(host, Device::cuda(0));
  CHECK(comm->backend() == "nccl");
  CHECK(comm->size() == 1);
  const Tensor values_cpu = random_tensor({1000}, DType::f32, -1, 1, 9);
  Tensor on_gpu = ops::to_device(values_cpu, Device::cuda(0));
  comm->all_reduce_sum_async(on_gpu)->wait();
  comm->broadcast(on_gpu, 0);
  CHECK(max_abs_diff(ops::to_device(on_gpu, Device::cpu()), values_cpu) == 0.0);
  Tensor on_cpu = ops::clone(values_cpu);
  comm->all_reduce_sum(on_cpu);  // through the host transport
  CHECK(max_abs_diff(on_cpu, values_cpu) == 0.0);
  CHECK_THROWS_AS(comm->broadcast(on_gpu, 1), Error);
}

TEST_CASE("nccl: 2 GPU ranks with --sync-bn reach the parameters of 1 GPU" *
          doctest::skip(cuda::device_count() < 2 || !mpirun_usable() || loupe_program().empty())) {
  ScratchDir dir("train-gpu-ranks");
  const std::string data = dir.file("data");
  write_ranks_folder(data);
  const std::string one = dir.file("one"), two = dir.file("two");
  run_program("", train_args(data, one, 2) + " --device cuda", dir.path());
  run_program(mpirun_prefix(2), train_args(data, two, 2) + " --device cuda --sync-bn", dir.path());
  const double difference = model_difference(one + "/last.safetensors", two + "/last.safetensors");
  MESSAGE("largest parameter difference after 4 steps, 2 GPU ranks vs 1 GPU: ", difference);
  CHECK(difference < 1e-4);
}
#else
TEST_CASE("nccl: this build has no NCCL" * doctest::skip(true)) {}
#endif

}  // namespace loupe::test
