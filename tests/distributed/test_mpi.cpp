// The MPI transport over real processes: runs mpi_check (mpi_check.cpp) under `mpirun -np 2` and
// `-np 3`. Skipped (and counted as skipped) when this build has no MPI or no mpirun is installed.
#include <doctest/doctest.h>

#include <filesystem>

#include "tests/cli_test_util.hpp"
#include "tests/distributed/mpi_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("mpi: all-reduce, buckets in flight, broadcast, all-gather and the gradient reducer over processes" *
          doctest::skip(!mpirun_usable())) {
  std::error_code ec;
  const auto program = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "distributed" / "mpi_check";
  REQUIRE(std::filesystem::exists(program));
  const std::filesystem::path dir = fresh_temp_dir("mpi");
  for (int ranks : {2, 3}) {
    CAPTURE(ranks);
    const std::string command = mpirun_prefix(ranks) + "'" + program.string() + "' > '" + (dir / "out.txt").string() +
                                "' 2>&1";
    const int status = std::system(command.c_str());
    const std::string output = read_text(dir / "out.txt");
    CAPTURE(output);
    CHECK(status == 0);
    for (int rank = 0; rank < ranks; ++rank) {
      CHECK(output.find("rank " + std::to_string(rank) + " of " + std::to_string(ranks) + ": ") != std::string::npos);
    }
    CHECK(output.find("FAILED") == std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace loupe::test
