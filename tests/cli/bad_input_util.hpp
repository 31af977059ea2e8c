// Shared by the program tests of tests/cli/: running the built `loupe` with a time limit, extra
// environment and resource limits, and the small image-folder data set they train on.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "nn/data/image.hpp"
#include "tests/cli_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

struct Outcome {
  int code = 0;          // exit status; 128 + N when killed by signal N; 124 / 137 when timed out
  std::string out, err;  // stdout and stderr
  bool crashed() const { return code > 128 && code != 137; }
  bool timed_out() const { return code == 124 || code == 137; }
};

// Runs `prefix loupe <args>` through the shell inside `dir` (so relative paths are the scratch
// folder's) under `timeout`: `prefix` may set variables ("LOUPE_NUM_THREADS=0") or limits
// ("ulimit -f 8;"). A child killed by a signal gives 128 + the signal, a hang 124.
inline Outcome run_program(const std::string& program, const std::string& args, const std::filesystem::path& dir,
                           const std::string& prefix = "", int seconds = 300) {
  const std::filesystem::path out_file = dir / "stdout.txt", err_file = dir / "stderr.txt";
  // SIGXFSZ is ignored so that a file-size limit (the "disk full" cases) makes write() fail with
  // EFBIG, as a full disk makes it fail with ENOSPC, instead of killing the program.
  const std::string command = "cd '" + dir.string() + "' && trap '' XFSZ && " + prefix + " timeout -k 5 " +
                              std::to_string(seconds) + " '" + program + "' " + args + " > '" + out_file.string() +
                              "' 2> '" + err_file.string() + "'";
  const std::filesystem::path script = dir / "command.sh";
  {
    std::ofstream file(script);
    file << command << "\n";
  }
  const int status = std::system(("bash '" + script.string() + "'").c_str());
  Outcome outcome;
  outcome.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  outcome.out = read_text(out_file);
  outcome.err = read_text(err_file);
  return outcome;
}

// root/{train,test}/{bright,dark}/<n>.png, 16x16 grey: the classes differ in brightness.
inline void write_image_folder(const std::string& root, int train_per_class = 6, int test_per_class = 3) {
  Generator g(3);
  for (const std::string split : {"train", "test"}) {
    for (int c = 0; c < 2; ++c) {
      for (int i = 0; i < (split == "train" ? train_per_class : test_per_class); ++i) {
        Tensor noise = uniform({1, 16, 16}, 0.0, 0.3, DType::f32, &g);
        Tensor image = ops::add(noise, c == 0 ? 0.6 : 0.05);
        const std::string folder = root + "/" + split + "/" + (c == 0 ? "bright" : "dark");
        std::filesystem::create_directories(folder);
        nn::save_image(folder + "/" + std::to_string(i) + ".png", image);
      }
    }
  }
}

// The options of a tiny training run on write_image_folder's data (a few seconds on one core).
inline std::string tiny_train_options(const std::string& data, const std::string& out, int epochs) {
  return "--data '" + data + "' --model resnet18 --small-input --width 4 --image-size 16 --in-channels 1 --epochs " +
         std::to_string(epochs) + " --batch-size 4 --workers 1 --seed 3 --out '" + out + "'";
}

}  // namespace loupe::test
