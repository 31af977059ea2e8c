// NcclCommunicator: one GPU per process (the process's --device), CUDA tensors reduced by NCCL;
// CPU tensors, bytes and barriers go through the MPI communicator that started the job (NCCL's
// unique id is also handed out through it). A collective runs on a stream of its own that first
// waits for the work already queued on loupe's stream of the device; Work::wait() makes loupe's
// stream wait for it in turn (no host synchronisation), so backward keeps computing while a bucket
// is reduced.
// Built only when NCCL, CUDA and MPI are found (LOUPE_WITH_NCCL). UNTESTED on a GPU so far: this
// project's machine has no GPU; tests/distributed/test_nccl.cpp skips without one (see
// docs/distributed.md for how to run it on a GPU machine).
#pragma once

#include <memory>

#include "distributed/communicator.hpp"

namespace loupe::distributed {

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> host, Device device);

}  // namespace loupe::distributed
