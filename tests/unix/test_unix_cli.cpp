// Tests of `loupe unix train|eval|conflict|sample|experiment` (cli/unix_*.cpp), run as a program
// (build/cli/loupe). train:
//   - --quick for both arms exits 0, writes DIR/model.safetensors and DIR/metrics.json, and the
//     JSON (stdout and file) holds the three held-out losses (image, caption, text) as finite
//     numbers below log(vocab), the loss of a uniform prediction, which an untrained model sits
//     near; the arm's N and M; a state dict that loads strictly into a UnixLM of that config
//   - bad options (--steps 0, --separated-front 9, a missing --digits file) fail with exit 1 and a
//     message naming the option or file; --help works
// Skipped with a MESSAGE when the digits file, the text folder or the program is absent.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <regex>
#include <string>

#include "nn/data/image.hpp"
#include "nn/serialization.hpp"
#include "tensor/io/json.hpp"
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
  const fs::path dir = fs::temp_directory_path() / ("loupe_test_unix_cli_" + std::to_string(getpid()));
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
  for (const auto& bad_case : bad) {
    const std::string& args = bad_case.first;  // not a structured binding: clang < 16 cannot capture one
    const std::string& part = bad_case.second;
    CAPTURE(args);
    std::string stderr_text;
    CHECK(run_loupe_command(program, "unix", "train --quick " + args + " --out " + q((dir / "bad").string()), dir,
                            nullptr, &stderr_text) == 1);
    CHECK_MESSAGE(contains(stderr_text, part), stderr_text);
  }
  fs::remove_all(dir);
}

// The other subcommands on one short Uni-X run with checkpoints (and one shared run):
//   - eval reproduces the held-out losses train wrote to metrics.json (same model, same sequences)
//   - conflict's CSV has exactly one row per checkpoint, shared layer and matrix kind (+ "all"),
//     none for separated layers; --fresh adds step 0; the HTML has the plots and the label
//   - sample writes 64x64 PNGs of digits; the KV cache and recomputation give the same images
//   - experiment --quick: three arms, the control's total within tolerance of Uni-X's, finite
//     losses, the files; bad options name the option
TEST_CASE("loupe unix eval, conflict, sample and experiment on quick runs") {
  const std::string program = loupe_program();
  const std::string digits = loupe::unix::find_digits_csv(LOUPE_TEST_SOURCE_ROOT);
  if (program.empty() || digits.empty() || !fs::is_directory("/usr/share/common-licenses")) {
    MESSAGE("skipped: needs build/cli/loupe, sklearn's digits.csv.gz (./run extracts it) and /usr/share/common-licenses");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("loupe_test_unix_cli2_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string data = " --digits " + q(digits);
  const fs::path run = dir / "run";
  std::string out, err;
  REQUIRE(run_loupe_command(program, "unix",
                            "train --quick --steps 20 --eval-sequences 48 --checkpoint-steps 0,10,20 --arm unix" + data +
                                " --out " + q(run.string()),
                            dir, &out, &err) == 0);
  INFO(err);
  for (int s : {0, 10, 20}) CHECK(fs::exists(run / "checkpoints" / ("step_" + std::to_string(s) + ".safetensors")));

  // eval == train's numbers.
  REQUIRE(run_loupe_command(program, "unix", "eval --json --run " + q(run.string()) + data, dir, &out, &err) == 0);
  const std::string metrics = read_text(run / "metrics.json");
  const auto losses_of = [](const std::string& json) {
    const size_t at = json.find("\"heldout_loss\"");
    return json.substr(at, json.find('}', at) - at);
  };
  for (const char* modality : {"image", "caption", "text"}) {
    CAPTURE(modality);
    const double trained = json_value(losses_of(metrics), modality);
    REQUIRE(std::isfinite(trained));
    CHECK(json_value(losses_of(out), modality) == doctest::Approx(trained).epsilon(1e-7));
  }
  // A checkpoint evaluates too, and differs from the final model.
  REQUIRE(run_loupe_command(program, "unix", "eval --json --run " + q((run / "checkpoints" / "step_0.safetensors").string()) + data,
                            dir, &out) == 0);
  CHECK(json_value(losses_of(out), "image") > json_value(losses_of(metrics), "image"));

  // conflict at the three checkpoints: L 4, N = M = 1 -> layers 1 and 2 shared.
  REQUIRE(run_loupe_command(program, "unix", "conflict --batches 2 --batch-size 4 --run " + q(run.string()) + data, dir,
                            &out, &err) == 0);
  const std::string csv = read_text(run / "conflict" / "conflict.csv");
  std::map<std::string, int> seen;
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);
  CHECK(line.find("within_batch_cos_image_text_not_paper_metric") != std::string::npos);
  int rows = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string step, layer, kind;
    std::getline(fields, step, ',');
    std::getline(fields, layer, ',');
    std::getline(fields, kind, ',');
    seen[step + "/" + layer + "/" + kind] += 1;
    ++rows;
  }
  CHECK(rows == 3 * 2 * 8);
  for (const char* step : {"0", "10", "20"}) {
    for (const char* layer : {"1", "2"}) {
      for (const char* kind : {"q", "k", "v", "o", "gate", "up", "down", "all"}) {
        CHECK_MESSAGE(seen[std::string(step) + "/" + layer + "/" + kind] == 1, step, " ", layer, " ", kind);
      }
    }
  }
  const std::string html = read_text(run / "conflict" / "conflict.html");
  CHECK(contains(html, "<svg"));
  CHECK(contains(html, "NOT the paper"));
  CHECK(contains(html, "baseline"));

  // A shared run without checkpoints: --fresh measures the initialisation and the final model, all 4 layers.
  const fs::path shared = dir / "shared";
  REQUIRE(run_loupe_command(program, "unix", "train --quick --steps 5 --eval-sequences 16 --arm shared" + data +
                                                 " --out " + q(shared.string()), dir) == 0);
  REQUIRE(run_loupe_command(program, "unix", "conflict --fresh --batches 2 --batch-size 4 --run " + q(shared.string()) +
                                                 " --out " + q((dir / "c2").string()) + data, dir) == 0);
  const std::string csv2 = read_text(dir / "c2" / "conflict.csv");
  CHECK(contains(csv2, "\n0,0,q,model.layers.0.self_attn.q_proj.weight,"));
  CHECK(contains(csv2, "\n5,3,down,model.layers.3.mlp.down_proj.weight,"));
  // The fresh model is train's initialisation: the same step-0 rows as a saved checkpoint 0 (the run
  // file alone has no checkpoints, so --fresh builds step 0 from the seed).
  REQUIRE(run_loupe_command(program, "unix", "train --quick --steps 5 --eval-sequences 16 --arm shared --checkpoint-steps 0" +
                                                 data + " --out " + q((dir / "shared0").string()), dir) == 0);
  REQUIRE(run_loupe_command(program, "unix", "conflict --batches 2 --batch-size 4 --run " +
                                                 q((dir / "shared0").string()) + " --out " + q((dir / "c3").string()) + data,
                            dir) == 0);
  const auto step0_rows = [](const std::string& text) {
    std::string rows;
    std::istringstream in(text);
    std::string row;
    while (std::getline(in, row)) {
      if (row.rfind("0,", 0) == 0) rows += row + "\n";
    }
    return rows;
  };
  const std::string checkpoint_rows = step0_rows(read_text(dir / "c3" / "conflict.csv"));
  CHECK(checkpoint_rows.size() > 100);
  CHECK(checkpoint_rows == step0_rows(csv2));

  // sample: PNGs of 64x64, the same with and without the KV cache.
  const std::string sample = "sample --caption 'a drawing of a seven.' --count 2 --top-k 3 --seed 4 --run " + q(run.string()) + data;
  REQUIRE(run_loupe_command(program, "unix", sample + " --out " + q((dir / "s1").string()), dir, &out, &err) == 0);
  REQUIRE(run_loupe_command(program, "unix", sample + " --no-cache --out " + q((dir / "s2").string()), dir) == 0);
  for (const char* name : {"caption0_sample0.png", "caption0_sample1.png"}) {
    CAPTURE(name);
    REQUIRE(fs::exists(dir / "s1" / name));
    const loupe::Tensor image = loupe::nn::load_image((dir / "s1" / name).string());
    CHECK(image.shape() == loupe::Shape{1, 64, 64});
    CHECK(read_text(dir / "s1" / name) == read_text(dir / "s2" / name));
  }
  // Greedy, every class caption by default: 10 images, and the grid of 10 rows x 2 columns.
  REQUIRE(run_loupe_command(program, "unix", "sample --grid --count 2 --run " + q(run.string()) + data + " --out " +
                                                 q((dir / "s3").string()), dir) == 0);
  CHECK(fs::exists(dir / "s3" / "caption9_sample1.png"));
  const loupe::Tensor grid = loupe::nn::load_image((dir / "s3" / "grid.png").string());
  CHECK(grid.shape() == loupe::Shape{1, 10 * 66 - 2, 2 * 66 - 2});
  // Greedy: both columns are the same image, and the grid's first cell is caption 0's first sample.
  CHECK(read_text(dir / "s3" / "caption3_sample0.png") == read_text(dir / "s3" / "caption3_sample1.png"));
  const loupe::Tensor first = loupe::nn::load_image((dir / "s3" / "caption0_sample0.png").string());
  CHECK(loupe::to_vector<float>(loupe::ops::slice(loupe::ops::slice(grid, 1, 0, 64), 2, 0, 64)) ==
        loupe::to_vector<float>(first));

  // The Mixture-of-Transformers arm trains and evaluates; it has no shared layer to measure.
  const fs::path mot = dir / "mot";
  REQUIRE(run_loupe_command(program, "unix", "train --quick --steps 3 --eval-sequences 16 --arm mot" + data + " --out " +
                                                 q(mot.string()), dir, &out, &err) == 0);
  CHECK(json_value(read_text(mot / "metrics.json"), "parameters_total") >
        json_value(read_text(mot / "metrics.json"), "parameters_active"));
  REQUIRE(run_loupe_command(program, "unix", "conflict --run " + q(mot.string()) + data, dir, nullptr, &err) == 1);
  CHECK(contains(err, "no shared layer"));

  // experiment --quick, with the MoT arm as a fourth.
  const fs::path exp = dir / "exp";
  REQUIRE(run_loupe_command(program, "unix", "experiment --quick --with-mot" + data + " --out " + q(exp.string()), dir,
                            &out, &err) == 0);
  const std::string ejson = read_text(exp / "experiment.json");
  const loupe::json::Value v = loupe::json::parse(ejson);
  const auto& arms = v.find("arms")->items;
  REQUIRE(arms.size() == 4);
  CHECK(arms[3].find("name")->text == "mot");
  const double unix_total = std::stod(arms[1].find("parameters_total")->text);
  const double matched_total = std::stod(arms[2].find("parameters_total")->text);
  CHECK(std::stod(arms[1].find("parameters_active")->text) == std::stod(arms[0].find("parameters_total")->text));
  CHECK(std::abs(matched_total / unix_total - 1) <= 0.03);
  for (const auto& s : v.find("summary")->items) {
    for (const char* modality : {"image", "caption", "text"}) {
      const auto* loss = s.find("heldout_loss")->find(modality)->find("mean");
      CHECK(loss->kind == loupe::json::Value::Kind::number);
    }
  }
  CHECK(contains(out, "Uni-X-L4"));
  CHECK(fs::exists(exp / "report.html"));
  CHECK(fs::exists(exp / "conflict_by_depth.svg"));
  for (const char* arm : {"shared", "unix", "matched"}) CHECK(fs::exists(exp / ("conflict_" + std::string(arm) + "_seed0.csv")));

  // Bad input: each message names the option or file.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"eval --run " + q((dir / "missing").string()), "missing"},
      {"eval --run " + q(run.string()) + " --eval-sequences -5", "--eval-sequences"},
      {"conflict --run " + q(run.string()) + " --batches 0", "--batches"},
      {"sample --run " + q(run.string()) + " --top-k 0", "--top-k"},
      {"sample --run " + q(run.string()) + " --scale 0", "--scale"},
      {"experiment --quick --seeds a,b --out " + q((dir / "bad").string()), "--seeds"},
      {"experiment --quick --layers 4 --separated 2 --out " + q((dir / "bad").string()), "--separated"},
      {"train --quick --checkpoint-steps 0,999 --out " + q((dir / "bad").string()), "--checkpoint-steps"},
      {"nonsense", "unknown subcommand"},
      {"train --quick --dataset mnist --out " + q((dir / "bad").string()), "--dataset"},
      {"eval --run " + q(run.string()) + " --device tpu", "tpu"},
  };
  for (const auto& bad_case : bad) {
    const std::string& args = bad_case.first;  // not a structured binding: clang < 16 cannot capture one
    const std::string& part = bad_case.second;
    CAPTURE(args);
    std::string stderr_text;
    CHECK(run_loupe_command(program, "unix", args + data, dir, nullptr, &stderr_text) == 1);
    CHECK_MESSAGE(contains(stderr_text, part), stderr_text);
  }
  // Fashion-MNIST (14x14, 16 levels) where its files are: train, eval reproduces, 112x112 samples.
  const std::string fashion = "/usr/share/datasets/fashion-mnist";
  if (fs::exists(fs::path(fashion) / "train-images-idx3-ubyte.gz")) {
    const fs::path frun = dir / "fashion";
    REQUIRE(run_loupe_command(program, "unix", "train --quick --dataset fashion-mnist --fashion-limit 200 --steps 4 "
                                               "--eval-sequences 16 --out " + q(frun.string()), dir, &out, &err) == 0);
    const std::string fmetrics = read_text(frun / "metrics.json");
    CHECK(contains(fmetrics, "\"dataset\": \"fashion-mnist\""));
    CHECK(json_value(fmetrics, "seq_len") > 200);  // 196 pixels per image
    REQUIRE(run_loupe_command(program, "unix", "eval --json --fashion-limit 200 --run " + q(frun.string()), dir, &out) == 0);
    CHECK(json_value(losses_of(out), "image") == doctest::Approx(json_value(losses_of(fmetrics), "image")).epsilon(1e-7));
    REQUIRE(run_loupe_command(program, "unix", "sample --caption 'a picture of a bag.' --run " + q(frun.string()) +
                                                   " --out " + q((dir / "fs").string()), dir) == 0);
    CHECK(loupe::nn::load_image((dir / "fs" / "caption0_sample0.png").string()).shape() == loupe::Shape{1, 112, 112});
  } else {
    MESSAGE("Fashion-MNIST part skipped: no files in ", fashion);
  }

  for (const char* sub : {"eval", "conflict", "sample", "experiment"}) {
    REQUIRE(run_loupe_command(program, "unix", std::string(sub) + " --help", dir, &out) == 0);
    CHECK((contains(out, "--run") || contains(out, "--seeds")));
  }
  fs::remove_all(dir);
}
