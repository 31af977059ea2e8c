// ThreadGroupCommunicator: N ranks as N threads of one process, sharing memory. The collectives
// are the same as MPI's, computed by every rank in rank order (so every rank gets the same bits).
// It exists so that the layers above (the gradient reducer, synchronised batch norm) can be
// tested inside the ordinary test program, without mpirun.
//
//   run_thread_group(2, [&](Communicator& comm) { ... comm.all_reduce_sum(t); ... });
//
// Each collective is two barriers: everyone publishes its tensor, everyone computes the result
// from all of them, everyone has read them, then each rank writes its own. An exception on one
// rank would leave the others at a barrier, so run_thread_group is for code whose ranks fail
// alike (tests). Tests: tests/distributed/test_communicator.cpp
#pragma once

#include <functional>

#include "distributed/communicator.hpp"

namespace loupe::distributed {

// Runs fn on `size` threads, each with the communicator of its rank; returns when all are done
// and rethrows the first exception a rank raised.
void run_thread_group(int size, const std::function<void(Communicator& comm)>& fn);

}  // namespace loupe::distributed
