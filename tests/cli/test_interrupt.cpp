// Stopping `loupe train` with SIGINT / SIGTERM: the run writes a checkpoint of the exact position
// and exits with 128 + the signal; `--resume` then ends with the same bytes (every tensor: model,
// optimiser state) and the same training position as a run that never stopped. In-process at an
// exact step through the real handler (LOUPE_TEST_INTERRUPT_AFTER_STEP raises SIGINT), including
// the last step of an epoch; and as a child process killed with SIGTERM at an arbitrary moment.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cli/commands.hpp"
#include "nn/training.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/cli/bad_input_util.hpp"
#include "tests/nn/data/helpers.hpp"

namespace loupe::test {

namespace {

int train(std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), {"loupe", "train"});
  std::vector<char*> argv;
  for (std::string& a : arguments) argv.push_back(a.data());
  return cli::run_train(static_cast<int>(argv.size()), argv.data());
}

std::vector<std::string> options(const std::string& data, const std::string& out, int epochs) {
  return {"--data", data, "--model", "resnet18", "--small-input", "--width", "4", "--image-size", "16",
          "--in-channels", "1", "--epochs", std::to_string(epochs), "--batch-size", "4", "--workers", "1",
          "--schedule", "cosine", "--seed", "5", "--out", out};
}

// Same tensors (bit for bit) and the same training position.
void check_same_run(const std::string& a, const std::string& b) {
  const auto x = load_safetensors(a), y = load_safetensors(b);
  REQUIRE(x.size() == y.size());
  for (const auto& named : x) {  // not a structured binding: doctest's INFO captures it
    const std::string& name = named.first;
    const Tensor& tensor = named.second;
    INFO(name);
    CHECK(to_vector<double>(ops::to_dtype(tensor, DType::f64)) ==
          to_vector<double>(ops::to_dtype(y.at(name), DType::f64)));
  }
  const auto mx = load_safetensors_metadata(a), my = load_safetensors_metadata(b);
  for (const char* key : {"train.global_step", "train.loader_epoch", "train.loader_batch", "train.generator",
                          "train.default_generator", "train.best_epoch"}) {
    INFO(key);
    CHECK(mx.at(key) == my.at(key));
  }
}

}  // namespace

TEST_CASE("SIGINT between steps: a checkpoint of that step, exit 130, and --resume ends byte for byte as a straight run") {
  ScratchDir dir("interrupt");
  const std::string data = dir.file("data");
  write_image_folder(data);  // 12 training images, batch 4: 3 steps per epoch
  REQUIRE(train(options(data, dir.file("straight"), 2)) == 0);
  for (int step : {2, 3, 4}) {  // mid-epoch, the last step of an epoch, the first step of the next
    CAPTURE(step);
    const std::string out = dir.file("stopped-" + std::to_string(step));
    struct sigaction before = {};
    sigaction(SIGINT, nullptr, &before);  // the test runner's own handler, if any
    ::setenv("LOUPE_TEST_INTERRUPT_AFTER_STEP", std::to_string(step).c_str(), 1);
    const int code = train(options(data, out, 2));
    ::unsetenv("LOUPE_TEST_INTERRUPT_AFTER_STEP");
    CHECK(code == 128 + SIGINT);
    const auto metadata = load_safetensors_metadata(out + "/last.safetensors");
    CHECK(metadata.at("train.global_step") == std::to_string(step));
    // The previous handler is back after the command.
    struct sigaction after = {};
    sigaction(SIGINT, nullptr, &after);
    CHECK(reinterpret_cast<void*>(after.sa_handler) == reinterpret_cast<void*>(before.sa_handler));
    REQUIRE(train({"--resume", out + "/last.safetensors"}) == 0);
    check_same_run(dir.file("straight/last.safetensors"), out + "/last.safetensors");
    CHECK(nn::read_metrics_csv(out + "/metrics.csv", 2, 2).size() == 2);
  }
}

TEST_CASE("SIGTERM to a running loupe train: exit 143, one message, a whole checkpoint; resuming completes the run") {
  const std::string program = loupe_program();
  if (program.empty()) {
    MESSAGE("skipped: build/cli/loupe is not built");
    return;
  }
  ScratchDir dir("sigterm");
  const std::string data = dir.file("data");
  write_image_folder(data, 24, 3);  // 48 training images: 12 steps per epoch
  REQUIRE(train(options(data, dir.file("straight"), 12)) == 0);
  // The child is started in the background and gets SIGTERM as soon as it reports its first epoch
  // (stdout is line-buffered, so the line is in the file at once): step 12 of 144, well inside the
  // run. (A fixed delay after the first line could land after the last step on a quiet machine, and
  // then after the handler was removed on the way out: exit 143 with no message.)
  std::string args;
  for (const std::string& a : options("data", "run", 12)) args += "'" + a + "' ";
  const std::filesystem::path script = dir.path() / "kill.sh";
  {
    std::ofstream file(script);
    file << "cd '" << dir.path().string() << "'\n"
         << "'" << program << "' train " << args << " > stdout.txt 2> stderr.txt &\n"
         << "pid=$!\n"
         << "for i in $(seq 1 6000); do grep -q '^epoch 1/' stdout.txt 2>/dev/null && break; sleep 0.01; done\n"
         << "kill -TERM $pid\n"
         << "wait $pid\n"
         << "echo $? > code.txt\n";
  }
  REQUIRE(std::system(("timeout 600 bash '" + script.string() + "'").c_str()) == 0);
  const std::string code = read_text(dir.path() / "code.txt");
  const std::string err = read_text(dir.path() / "stderr.txt");
  INFO("stderr: ", err);
  INFO("stdout: ", read_text(dir.path() / "stdout.txt"));
  INFO("exit: ", code);
  if (code == "0\n") {
    MESSAGE("the run finished before the signal arrived; nothing to check");
    return;
  }
  CHECK(code == "143\n");
  CHECK(err.find("loupe train: stopped by SIGTERM after step ") != std::string::npos);
  CHECK(err.find("--resume run/last.safetensors") != std::string::npos);
  // No temporary file is left, and the checkpoint is whole; resuming completes the same run.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "run")) {
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  }
  REQUIRE(train({"--resume", dir.file("run/last.safetensors")}) == 0);
  check_same_run(dir.file("straight/last.safetensors"), dir.file("run/last.safetensors"));
}

}  // namespace loupe::test
