// Starting programs under mpirun from a test: whether it can be done here, and the command prefix.
// Open MPI refuses to run as root unless told (CI containers run as root), and a container often
// forbids the cross-memory attach its shared-memory transport tries first; both are set here.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "distributed/communicator.hpp"

namespace loupe::test {

// This build has the MPI transport and an `mpirun` is on the PATH.
inline bool mpirun_usable() {
  return distributed::mpi_available() && std::system("command -v mpirun > /dev/null 2>&1") == 0;
}

// "mpirun ... -np N " (one thread per rank: two ranks share two cores in the tests).
inline std::string mpirun_prefix(int ranks) {
  return "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none "
         "OMPI_MCA_rmaps_base_oversubscribe=1 LOUPE_NUM_THREADS=1 mpirun --bind-to none -np " +
         std::to_string(ranks) + " ";
}

// A fresh folder of this process for one test (removed by the caller).
inline std::filesystem::path fresh_temp_dir(const std::string& tag) {
  const auto dir = std::filesystem::temp_directory_path() / ("loupe-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace loupe::test
