// The `loupe evaluate-explanations images` and `loupe explain --baseline` commands, run through
// the built program: the --quick suite on the real chest X-rays and Fashion-MNIST (skipped when
// either is missing) writes its files and names its baseline; bad options fail naming them.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "nn/checkpoint.hpp"
#include "nn/data/image.hpp"
#include "tests/cli_test_util.hpp"
#include "tests/explain/explain_test_util.hpp"
#include "tests/nn/data/helpers.hpp"

namespace loupe::test {

namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Single-quoted for the shell (built by appending: GCC 12 warns falsely on "'" + string).
std::string shell_quoted(const fs::path& p) {
  std::string q(1, '\'');
  q.append(p.string());
  q.push_back('\'');
  return q;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("loupe evaluate-explanations images --quick: files, JSON and errors (faith)") {
  const std::string program = loupe_program();
  if (program.empty()) {
    MESSAGE("build/cli/loupe not found next to the test program: command test skipped");
    return;
  }
  const fs::path dir = fresh_dir("loupe_test_eval_images");
  std::string out_text, err_text;
  REQUIRE(run_loupe_command(program, "evaluate-explanations", "images --help", dir, &out_text) == 0);
  CHECK(contains(out_text, "--quick"));
  CHECK(contains(out_text, "--fashion-model"));
  CHECK(run_loupe_command(program, "evaluate-explanations", "images --quick", dir, nullptr, &err_text) == 1);
  CHECK(contains(err_text, "--out"));
  CHECK(run_loupe_command(program, "evaluate-explanations", "images --quick --sanity-blocks layers --out x", dir,
                          nullptr, &err_text) == 1);
  CHECK(contains(err_text, "--sanity-blocks"));
  CHECK(run_loupe_command(program, "evaluate-explanations",
                          "images --quick --data " + shell_quoted(dir / "none.csv") + " --out " + shell_quoted(dir / "o"), dir,
                          nullptr, &err_text) == 1);
  CHECK(contains(err_text, "none.csv"));

  const std::string cxr = cxr_dir();
  if (cxr.empty() || !fs::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: the chest X-rays (../shared/data/cxr) or Fashion-MNIST are not there");
    return;
  }
  const fs::path out = dir / "suite";
  REQUIRE(run_loupe_command(program, "evaluate-explanations",
                            "images --quick --data " + shell_quoted(fs::path(cxr) / "labels.csv") + " --out " + shell_quoted(out) +
                                " --json",
                            dir, &out_text, &err_text) == 0);
  CHECK(err_text.empty());  // no progress bar when stderr is not a terminal
  CHECK(contains(out_text, "\"suite\": \"images\""));
  CHECK(contains(out_text, "\"baseline\": \"black\""));
  CHECK(read_text(out / "summary.json") == out_text);
  for (const char* name : {"report.html", "per_image.csv", "curves.csv", "randomisation.csv", "baselines.csv",
                           "cxr_input_0.png", "maps/cxr_ig_0_overlay.png", "maps/fashion_baseline_blur_deeplift_0.png"})
    CHECK_MESSAGE(fs::exists(out / name), name);
  const std::string html = read_text(out / "report.html");
  CHECK(contains(html, "<svg"));
  CHECK(contains(html, "Randomisation check"));
  // 6 methods x 2 images, plus the header; deletion AUCs of a probability lie in [0, 1].
  const std::string csv = read_text(out / "per_image.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 13);
  const std::string baselines = read_text(out / "baselines.csv");
  for (const char* b : {",black,", ",zeros,", ",blur,", ",uniform,", ",mean,"}) CHECK(contains(baselines, b));
  fs::remove_all(dir);
}

TEST_CASE("loupe explain --baseline: the summary and JSON name it (faith)") {
  const std::string program = loupe_program();
  if (program.empty()) {
    MESSAGE("build/cli/loupe not found next to the test program: command test skipped");
    return;
  }
  const fs::path dir = fresh_dir("loupe_test_explain_baseline");
  nn::ModelInfo info;
  info.model = "resnet18";
  info.num_classes = 3;
  info.in_channels = 1;
  info.image_size = 16;
  info.width = 4;
  info.mean = {0.5};
  info.std = {0.25};
  Generator g(1);
  const std::shared_ptr<nn::Module> model = nn::build_model(info, &g);
  const std::string ckpt = (dir / "m.safetensors").string();
  nn::save_checkpoint(ckpt, *model, info);
  nn::save_png((dir / "a.png").string(), uniform({1, 16, 16}, 0.0, 1.0, DType::f32, &g));
  const std::string base = "--model " + shell_quoted(ckpt) + " --input " + shell_quoted(dir / "a.png") + " --method ig --steps 2 --out " +
                           shell_quoted(dir / "out");
  std::string out_text, err_text;
  REQUIRE(run_loupe_command(program, "explain", base + " --json", dir, &out_text) == 0);
  CHECK(contains(out_text, "\"baseline\": \"black\""));  // the default
  REQUIRE(run_loupe_command(program, "explain", base + " --baseline blur --json", dir, &out_text) == 0);
  CHECK(contains(out_text, "\"baseline\": \"blur\""));
  REQUIRE(run_loupe_command(program, "explain", base + " --baseline zeros", dir, &out_text) == 0);
  CHECK(contains(out_text, "baseline: zeros"));
  CHECK(contains(read_text(dir / "out" / "report.html"), "baseline: zeros"));
  CHECK(run_loupe_command(program, "explain", base + " --baseline grey", dir, nullptr, &err_text) == 1);
  CHECK(contains(err_text, "--baseline"));
  CHECK(contains(err_text, "grey"));
  fs::remove_all(dir);
}

TEST_CASE("loupe evaluate-explanations all: help, and options it refuses") {
  const std::string program = loupe_program();
  if (program.empty()) {
    MESSAGE("build/cli/loupe not found next to the test program: command test skipped");
    return;
  }
  const fs::path dir = fresh_dir("loupe_test_eval_all");
  std::string out_text, err_text;
  REQUIRE(run_loupe_command(program, "evaluate-explanations", "all --help", dir, &out_text) == 0);
  CHECK(contains(out_text, "DIR/tabular"));
  CHECK(run_loupe_command(program, "evaluate-explanations", "all --quick", dir, nullptr, &err_text) == 1);
  CHECK(contains(err_text, "--out DIR is required"));
  CHECK(run_loupe_command(program, "evaluate-explanations", "all --steps 3 --out x", dir, nullptr, &err_text) == 1);
  CHECK(contains(err_text, "'--steps'"));
  CHECK(!fs::exists(dir / "x"));
  CHECK(run_loupe_command(program, "evaluate-explanations", "everything", dir, nullptr, &err_text) != 0);
  CHECK(contains(err_text, "known: tabular, images, all"));
}

}  // namespace loupe::test
