// MpiCommunicator: the processes of an `mpirun -np N` job, CPU tensors, through MPI (Open MPI on
// Debian). MPI is initialised once (MPI_THREAD_FUNNELED: only the thread that calls these
// functions talks to MPI; loupe's worker threads never do) and finalised at exit.
// all_reduce_sum_async is MPI_Iallreduce: Open MPI has no progress thread by default, so a
// started reduction advances when this process calls into MPI again; the gradient reducer calls
// Work::test() from its hooks for that reason (docs/distributed.md).
// Built only when meson finds MPI (LOUPE_WITH_MPI). Tests: tests/distributed/test_mpi.cpp
#pragma once

#include <memory>

#include "distributed/communicator.hpp"

namespace loupe::distributed {

// MPI_COMM_WORLD (initialising MPI on the first call).
std::shared_ptr<Communicator> make_mpi_communicator();

}  // namespace loupe::distributed
