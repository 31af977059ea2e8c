// Data-parallel training end to end through the built program: `mpirun -np 2 loupe train` with a
// global batch of 8 (4 images per rank) against one process with batch 8, on a tiny image folder
// (ResNet18 layout at width 4 on 16x16 images, 16 of its 32 training images). With --sync-bn the two runs compute the same
// thing in a different order of floating-point additions, so the parameters agree to float
// tolerance after 4 SGD steps (2 epochs of 2 batches; docs/distributed.md says why they are not
// bit-identical, and how fast such differences grow on this tiny network at higher rates); with
// batch norm per rank they do not (the test shows that the comparison can fail). A run stopped
// after one epoch on 2 ranks and resumed on 1 process ends where the 1-process run ends.
// Skipped when this build has no MPI or no mpirun is installed.
#include <doctest/doctest.h>

#include <filesystem>

#include "nn/data/image.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/cli_test_util.hpp"
#include "tests/distributed/mpi_util.hpp"
#include "tests/distributed/train_ranks_util.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("data-parallel training: 2 MPI ranks with --sync-bn reach the parameters of 1 process; resume on 1 process" *
          doctest::skip(!mpirun_usable() || loupe_program().empty())) {
  ScratchDir dir("train-ranks");
  const std::string data = dir.file("data");
  write_ranks_folder(data);
  const std::string one = dir.file("one"), two = dir.file("two"), local = dir.file("local"), half = dir.file("half");
  run_program("LOUPE_NUM_THREADS=1 ", train_args(data, one, 2), dir.path());
  run_program(mpirun_prefix(2), train_args(data, two, 2) + " --sync-bn", dir.path());
  run_program(mpirun_prefix(2), train_args(data, local, 2), dir.path());
  const double synced = model_difference(one + "/last.safetensors", two + "/last.safetensors");
  const double per_rank = model_difference(one + "/last.safetensors", local + "/last.safetensors");
  MESSAGE("largest parameter difference after 4 steps: 2 ranks with --sync-bn ", synced, ", batch norm per rank ",
          per_rank);
  CHECK(synced < 1e-4);
  CHECK(per_rank > 1e-3);  // per-rank statistics of 4 images are another computation

  // One epoch on 2 ranks, the second on 1 process: the checkpoint holds no rank count.
  run_program(mpirun_prefix(2), train_args(data, half, 1) + " --sync-bn", dir.path());
  run_program("LOUPE_NUM_THREADS=1 ", "--resume '" + half + "/last.safetensors' --epochs 2", dir.path());
  CHECK(model_difference(one + "/last.safetensors", half + "/last.safetensors") < 1e-4);

  // Sharded explanation: 3 images over 2 ranks give the files and report of one process.
  const std::string inputs = " --input '" + data + "/test/bright/0.png' --input '" + data + "/test/dark/0.png' --input '" +
                             data + "/test/dark/1.png'";
  const std::string explain_args = "--model '" + one + "/last.safetensors' --method saliency,ig --steps 8" + inputs;
  for (const auto& [prefix, out] : {std::pair<std::string, std::string>{"", dir.file("explain-one")},
                                    {mpirun_prefix(2), dir.file("explain-two")}}) {
    const std::string command = prefix + "'" + loupe_program() + "' explain " + explain_args + " --out '" + out + "' > '" +
                                (dir.path() / "log.txt").string() + "' 2>&1";
    INFO(read_text(dir.path() / "log.txt"));
    CHECK(std::system(command.c_str()) == 0);
  }
  const std::string html = read_text(dir.file("explain-two") + "/report.html");
  for (const std::string name : {"0_saliency.npy", "0-2_saliency.npy", "1_ig.npy"}) {
    CAPTURE(name);
    CHECK(html.find(name) != std::string::npos);  // every image is in rank 0's report
    const Tensor a = load_npy(dir.file("explain-one") + "/" + name), b = load_npy(dir.file("explain-two") + "/" + name);
    CHECK(max_abs_diff(a, b) < 1e-6);
  }
}

}  // namespace loupe::test
