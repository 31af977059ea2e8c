// Resuming with `loupe train --resume CKPT` alone: the run's options come from the checkpoint,
// --out defaults to its folder, --epochs (and where the data is, workers, device) may change, and
// any other option given with another value is refused with a message naming it. A checkpoint
// without stored options (an older loupe) still needs the options, and its refusal names every
// field that differs instead of printing two identical model descriptions.
#include <doctest/doctest.h>

#include <filesystem>

#include "cli/commands.hpp"
#include "nn/training.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/cli/bad_input_util.hpp"
#include "tests/nn/data/helpers.hpp"

namespace loupe::test {

namespace {

int run_command(int (*command)(int, char**), std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), {"loupe", "train"});
  std::vector<char*> argv;
  for (std::string& a : arguments) argv.push_back(a.data());
  return command(static_cast<int>(argv.size()), argv.data());
}

std::vector<std::string> options(const std::string& data, const std::string& out, int epochs) {
  return {"--data", data, "--model", "resnet18", "--small-input", "--width", "4", "--image-size", "16",
          "--in-channels", "1", "--epochs", std::to_string(epochs), "--batch-size", "4", "--workers", "1",
          "--schedule", "step", "--step-size", "2", "--gamma", "0.5", "--warmup", "2", "--clip", "1", "--lr", "0.002",
          "--optimizer", "sgd", "--seed", "3", "--out", out};
}

void check_same_tensors(const std::string& a, const std::string& b) {
  const auto x = load_safetensors(a), y = load_safetensors(b);
  REQUIRE(x.size() == y.size());
  for (const auto& named : x) {  // not a structured binding: doctest's INFO captures it
    const std::string& name = named.first;
    const Tensor& tensor = named.second;
    INFO(name);
    CHECK(to_vector<double>(ops::to_dtype(tensor, DType::f64)) ==
          to_vector<double>(ops::to_dtype(y.at(name), DType::f64)));
  }
}

}  // namespace

TEST_CASE("train --resume CKPT alone continues the run with its own options; only safe options may change") {
  ScratchDir dir("resume-options");
  const std::string data = dir.file("data");
  write_image_folder(data);
  REQUIRE(run_command(cli::run_train, options(data, dir.file("straight"), 3)) == 0);
  REQUIRE(run_command(cli::run_train, options(data, dir.file("run"), 1)) == 0);
  const std::string last = dir.file("run/last.safetensors");
  const auto metadata = load_safetensors_metadata(last);
  CHECK(metadata.at("cli.train.width") == "4");
  CHECK(metadata.at("cli.train.small-input") == "1");
  CHECK(metadata.at("cli.train.optimizer") == "sgd");
  CHECK(metadata.count("cli.train.out") == 0);

  SUBCASE("refusals name the option, its saved value and the given one") {
    const std::string expected = "--resume: '" + last + "' was trained with --width '4' but this command gives --width "
                                 "'8'. A resumed run takes its options from the checkpoint; only --checkpoint-every, "
                                 "--device, --epochs, --fashion-mnist-dir, --image-dir, --limit-test, --on-bad-image, "
                                 "--sync-bn, --workers may "
                                 "change (leave --width out, or start a new run in another --out)";
    CHECK_THROWS_WITH_AS(run_command(cli::run_train, {"--resume", last, "--width", "8"}), expected.c_str(), Error);
    CHECK_THROWS_WITH_AS(run_command(cli::run_train, {"--resume", last, "--lr", "0.1"}), doctest::Contains("--lr '0.1'"),
                         Error);
    CHECK_THROWS_WITH_AS(run_command(cli::run_train, {"--resume", last, "--multilabel"}),
                         doctest::Contains("--multilabel (not set) but this command gives --multilabel (set)"), Error);
    CHECK_THROWS_WITH_AS(run_command(cli::run_train, {"--resume", last, "--data", dir.file("elsewhere")}),
                         doctest::Contains("--data"), Error);
    // The refusals come before anything is written: the run is as it was.
    CHECK(load_safetensors_metadata(last).at("train.global_step") == "3");
  }
  SUBCASE("--resume CKPT --epochs 3 alone equals the straight run; repeating the same options is allowed") {
    // "2e-3" is the saved "0.002" written differently; --workers may change.
    REQUIRE(run_command(cli::run_train, {"--resume", last, "--epochs", "3", "--lr", "2e-3", "--workers", "0",
                                         "--small-input"}) == 0);
    check_same_tensors(dir.file("straight/last.safetensors"), last);
    CHECK(nn::read_metrics_csv(dir.file("run/metrics.csv"), 3, 2).size() == 3);
    // Resuming a finished run without more epochs does nothing and says so.
    CHECK(run_command(cli::run_train, {"--resume", last}) == 0);
    CHECK(load_safetensors_metadata(last).at("train.global_step") == "9");
  }
  SUBCASE("a checkpoint without stored options: the options are needed, and a refusal names what differs") {
    auto tensors = load_safetensors(last);
    auto old_metadata = metadata;
    for (auto it = old_metadata.begin(); it != old_metadata.end();) {
      it = it->first.rfind("cli.train.", 0) == 0 ? old_metadata.erase(it) : std::next(it);
    }
    save_safetensors(dir.file("old.safetensors"), tensors, old_metadata);
    auto given = options(data, dir.file("old-run"), 2);
    given.erase(given.begin() + 4);  // drop --small-input
    given.insert(given.end(), {"--resume", dir.file("old.safetensors")});
    CHECK_THROWS_WITH_AS(run_command(cli::run_train, given),
                         doctest::Contains("--small-input: 1 in the checkpoint, 0 from the options"), Error);
    auto all = options(data, dir.file("old-run"), 3);
    all.insert(all.end(), {"--resume", dir.file("old.safetensors")});
    REQUIRE(run_command(cli::run_train, all) == 0);
    check_same_tensors(dir.file("straight/last.safetensors"), dir.file("old-run/last.safetensors"));
  }
}

}  // namespace loupe::test
