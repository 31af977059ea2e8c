// Tests of `loupe unix train` (cli/unix.cpp), run as a program (build/cli/loupe):
//   - --quick for both arms exits 0, writes DIR/model.safetensors and DIR/metrics.json, and the
//     JSON (stdout and file) holds the three held-out losses (image, caption, text) as finite
//     numbers below log(vocab), the loss of a uniform prediction, which an untrained model sits
//     near; the arm's N and M; a state dict that loads strictly into a UnixLM of that config
//   - bad options (--steps 0, --separated-front 9, a missing --digits file) fail with exit 1 and a
//     message naming the option or file; --help works
// Skipped with a MESSAGE when the digits file, the text folder or the program is absent.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include "nn/serialization.hpp"
#include "tests/cli_test_util.hpp"
#include "tests/nn/data/data_paths.hpp"
#include "unix/data.hpp"
#include "unix/model.hpp"

namespace fs = std::filesystem;
using loupe::test::loupe_program;
using loupe::test::read_text;
using loupe::test::run_loupe_command;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The number after "key": in `json` (NaN when absent or null).
double json_value(const std::string& json, const std::string& key) {
  std::smatch m;
  const std::regex pattern("\"" + key + "\": ([-+0-9.eE]+)");
  if (!std::regex_search(json, m, pattern)) return std::nan("");
  return std::stod(m[1].str());
}

std::string q(const std::string& s) { return "'" + s + "'"; }

}  // namespace

TEST_CASE("loupe unix train: quick runs of both arms, files, held-out losses, bad options") {
  const std::string program = loupe_program();
  const std::string digits = loupe::unix::find_digits_csv(LOUPE_TEST_SOURCE_ROOT);
  if (program.empty() || digits.empty() || !fs::is_directory("/usr/share/common-licenses")) {
    MESSAGE("skipped: needs build/cli/loupe, sklearn's digits.csv.gz (./run extracts it) and /usr/share/common-licenses");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / "loupe_test_unix_cli";
  fs::remove_all(dir);
  fs::create_directories(dir);

  for (const std::string arm : {"unix", "shared"}) {
    CAPTURE(arm);
    const fs::path out = dir / arm;
    std::string stdout_text, stderr_text;
    REQUIRE(run_loupe_command(program, "unix", "train --quick --arm " + arm + " --digits " + q(digits) + " --out " +
                                                   q(out.string()) + " --json",
                              dir, &stdout_text, &stderr_text) == 0);
    INFO(stderr_text);
    CHECK(fs::exists(out / "model.safetensors"));
    REQUIRE(fs::exists(out / "metrics.json"));
    const std::string json = read_text(out / "metrics.json");
    CHECK(json == stdout_text);
    const double bound = json_value(json, "initial_loss_bound");
    const double vocab = json_value(json, "vocab_size");
    REQUIRE(vocab > 10);
    CHECK(bound == doctest::Approx(std::log(vocab)));
    const size_t losses_at = json.find("\"heldout_loss\"");
    REQUIRE(losses_at != std::string::npos);
    const std::string losses = json.substr(losses_at, json.find('}', losses_at) - losses_at);
    for (const char* modality : {"image", "caption", "text"}) {
      const double loss = json_value(losses, modality);
      CAPTURE(modality);
      CHECK(std::isfinite(loss));
      CHECK(loss > 0.0);
      CHECK(loss < bound);
    }
    CHECK(json_value(json, "tokens_per_second") > 0.0);
    CHECK(json_value(json, "train_loss_last") < json_value(json, "train_loss_first"));
    const int64_t n = arm == "unix" ? 1 : 0;
    CHECK(json_value(json, "separated_front") == n);
    CHECK(json_value(json, "separated_back") == n);
    CHECK(json_value(json, "layers") == 4);
    CHECK(json_value(json, "hidden") == 64);
    if (arm == "unix") CHECK(json_value(json, "parameters_total") > json_value(json, "parameters_active"));
    else CHECK(json_value(json, "parameters_total") == json_value(json, "parameters_active"));

    // The saved file is the model's state dict: it loads strictly into a UnixLM of the same shape.
    loupe::unix::UnixConfig config;
    config.vocab_size = static_cast<int64_t>(vocab);
    config.hidden = 64;
    config.intermediate = 176;
    config.n_layers = 4;
    config.n_heads = 4;
    config.n_separated_start = n;
    config.m_separated_end = n;
    config.qk_norm = true;
    loupe::unix::UnixLM lm(config);
    CHECK_NOTHROW(loupe::nn::load_state_dict(lm, (out / "model.safetensors").string(), true));
  }

  // The text table.
  std::string stdout_text;
  REQUIRE(run_loupe_command(program, "unix", "train --quick --steps 3 --digits " + q(digits) + " --out " +
                                                 q((dir / "table").string()),
                            dir, &stdout_text) == 0);
  CHECK(contains(stdout_text, "held-out modality"));
  CHECK(contains(stdout_text, "caption"));
  REQUIRE(run_loupe_command(program, "unix", "train --help", dir, &stdout_text) == 0);
  CHECK(contains(stdout_text, "--separated-front"));

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--steps 0", "--steps"},
      {"--layers 0", "--layers"},
      {"--separated-front 9", "--separated-front"},
      {"--arm both", "--arm"},
      {"--arm shared --separated-front 1", "--separated-front"},
      {"--digits " + q((dir / "no_digits.csv.gz").string()), "no_digits.csv.gz"},
  };
  for (const auto& [args, part] : bad) {
    CAPTURE(args);
    std::string stderr_text;
    CHECK(run_loupe_command(program, "unix", "train --quick " + args + " --out " + q((dir / "bad").string()), dir,
                            nullptr, &stderr_text) == 1);
    CHECK_MESSAGE(contains(stderr_text, part), stderr_text);
  }
  fs::remove_all(dir);
}
