// The train / evaluate / predict commands end to end on a tiny image folder (a ResNet18 layout at
// width 4 on 16x16 images, a few seconds), their output files, resuming through the command line,
// and their argument errors. The chest X-ray preset is checked on ../shared/data/cxr when present.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/train_common.hpp"
#include "nn/data/image.hpp"
#include "nn/training.hpp"
#include "tensor/cuda/backend.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// root/{train,test}/{bright,dark}/<n>.png, 16x16 grey: the classes differ in brightness.
void write_folder(const std::string& root) {
  Generator g(3);
  for (const std::string split : {"train", "test"}) {
    for (int c = 0; c < 2; ++c) {
      for (int i = 0; i < (split == "train" ? 6 : 3); ++i) {
        Tensor noise = uniform({1, 16, 16}, 0.0, 0.3, DType::f32, &g);
        Tensor image = ops::add(noise, c == 0 ? 0.6 : 0.05);
        const std::string folder = root + "/" + split + "/" + (c == 0 ? "bright" : "dark");
        std::filesystem::create_directories(folder);
        nn::save_image(folder + "/" + std::to_string(i) + ".png", image);
      }
    }
  }
}

int run(int (*command)(int, char**), std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), {"loupe", "command"});
  std::vector<char*> argv;
  for (std::string& a : arguments) argv.push_back(a.data());
  return command(static_cast<int>(argv.size()), argv.data());
}

std::vector<std::string> tiny_run(const std::string& data, const std::string& out, int epochs) {
  return {"--data", data, "--model", "resnet18", "--small-input", "--width", "4", "--image-size", "16",
          "--in-channels", "1", "--epochs", std::to_string(epochs), "--batch-size", "4", "--workers", "1",
          "--schedule", "step", "--step-size", "2", "--gamma", "0.5", "--warmup", "2", "--clip", "1", "--out", out, "--seed", "3"};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t count_lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

}  // namespace

TEST_CASE("loupe train: metrics.csv, metrics.json, last and best checkpoints; resume matches a straight run") {
  ScratchDir dir("cli-train");
  const std::string data = dir.file("data");
  write_folder(data);

  CHECK(run(cli::run_train, tiny_run(data, dir.file("straight"), 3)) == 0);
  const std::string csv = read_file(dir.file("straight/metrics.csv"));
  CHECK(count_lines(csv) == 4);  // header + 3 epochs
  CHECK(csv.rfind("epoch,step,lr,train_loss,test_loss,test_accuracy,test_micro_f1,test_macro_f1,test_macro_auroc,"
                  "epoch_seconds,images_per_second,f1_bright,f1_dark\n", 0) == 0);
  CHECK(csv.find("\n3,9,") != std::string::npos);  // epoch 3 ends at step 9 (12 images, batch 4)
  const std::string json = read_file(dir.file("straight/metrics.json"));
  CHECK(json.find("\"model\": \"resnet18\"") != std::string::npos);
  CHECK(json.find("\"epoch\": 3") != std::string::npos);
  CHECK(json.find("\"test_f1\": {\"bright\": ") != std::string::npos);
  CHECK(std::filesystem::exists(dir.file("straight/last.safetensors")));
  CHECK(std::filesystem::exists(dir.file("straight/best.safetensors")));
  const nn::Checkpoint last = nn::read_checkpoint(dir.file("straight/last.safetensors"));
  CHECK(last.info.small_input);
  CHECK(last.info.width == 4);
  CHECK(last.info.labels == std::vector<std::string>{"bright", "dark"});
  CHECK(last.metadata.at("train.global_step") == "9");

  // The same run in two pieces: 1 epoch, then --resume to 3 epochs.
  CHECK(run(cli::run_train, tiny_run(data, dir.file("pieces"), 1)) == 0);
  auto resume = tiny_run(data, dir.file("pieces"), 3);
  resume.insert(resume.end(), {"--resume", dir.file("pieces/last.safetensors")});
  CHECK(run(cli::run_train, resume) == 0);
  const nn::Checkpoint pieces = nn::read_checkpoint(dir.file("pieces/last.safetensors"));
  for (const auto& named : last.tensors) {
    const std::string& name = named.first;  // not a structured binding: doctest's macros capture it
    const Tensor& tensor = named.second;
    INFO(name);
    CHECK(to_vector<double>(ops::to_dtype(tensor, DType::f64)) ==
          to_vector<double>(ops::to_dtype(pieces.tensors.at(name), DType::f64)));
  }
  // The resumed run's metrics files hold all 3 epochs, the first from the first piece.
  CHECK(count_lines(read_file(dir.file("pieces/metrics.csv"))) == 4);
  CHECK(nn::read_metrics_csv(dir.file("pieces/metrics.csv"), 3, 2).size() == 3);

  // evaluate (table + JSON, two checkpoints = ensembles) and predict.
  CHECK(run(cli::run_evaluate, {"--model", dir.file("straight/last.safetensors") + "," + dir.file("pieces/best.safetensors"),
                                "--data", data, "--json", dir.file("eval.json")}) == 0);
  const std::string eval = read_file(dir.file("eval.json"));
  CHECK(eval.find("\"ensemble_average\"") != std::string::npos);
  CHECK(eval.find("\"ensemble_vote\"") != std::string::npos);
  CHECK(run(cli::run_predict, {"--model", dir.file("straight/best.safetensors"), "--input",
                               data + "/test/dark/0.png", data + "/test/bright/1.png", "--json"}) == 0);
}

TEST_CASE("metrics files: CSV and JSON rows, NaN as empty / null, read back up to an epoch") {
  nn::EpochMetrics a;
  a.epoch = 1;
  a.step = 10;
  a.lr = 0.001;
  a.train_loss = 0.5;
  a.accuracy = 0.75;
  a.class_f1 = {0.5, 1.0};
  nn::EpochMetrics b = a;
  b.epoch = 2;
  b.step = 20;
  const std::string csv = nn::metrics_csv({a, b}, {"x", "y"});
  CHECK(csv ==
        "epoch,step,lr,train_loss,test_loss,test_accuracy,test_micro_f1,test_macro_f1,test_macro_auroc,epoch_seconds,"
        "images_per_second,f1_x,f1_y\n1,10,0.001,0.5,,0.75,,,,0,0,0.5,1\n2,20,0.001,0.5,,0.75,,,,0,0,0.5,1\n");
  const std::string json = nn::metrics_json({a}, {"x", "y"}, "m");
  CHECK(json.find("\"test_loss\": null") != std::string::npos);
  CHECK(json.find("\"test_f1\": {\"x\": 0.5, \"y\": 1}") != std::string::npos);
  ScratchDir dir("metrics");
  write_text(dir.file("m.csv"), csv);
  const auto rows = nn::read_metrics_csv(dir.file("m.csv"), 1, 2);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].step == 10);
  CHECK(rows[0].accuracy == 0.75);
  CHECK(std::isnan(rows[0].test_loss));
  CHECK(rows[0].class_f1 == std::vector<double>{0.5, 1.0});
  CHECK(nn::read_metrics_csv(dir.file("missing.csv"), 5, 2).empty());
}

TEST_CASE("loupe train / evaluate / predict: argument errors") {
  ScratchDir dir("cli-errors");
  const std::string data = dir.file("data");
  write_folder(data);
  auto with = [&](std::vector<std::string> extra) {
    auto a = tiny_run(data, dir.file("out"), 1);
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--bogus", "1"})), doctest::Contains("--bogus"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--epochs", "0"})), doctest::Contains("--epochs"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--epochs", "two"})), doctest::Contains("integer"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--optimizer", "rmsprop"})), doctest::Contains("rmsprop"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--device", "gpu0"})), doctest::Contains("gpu0"), Error);
  if (!cuda::is_available()) {
    CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--device", "cuda"})), doctest::Contains("--device 'cuda'"), Error);
  }
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--in-channels", "2"})), doctest::Contains("--in-channels"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--schedule", "exp"})), doctest::Contains("exp"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--model", "vgg"})), doctest::Contains("vgg"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--on-bad-image", "ignore"})), doctest::Contains("--on-bad-image"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--preset", "imagenet"})), doctest::Contains("preset"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--data", dir.file("nothing")})), doctest::Contains("nothing"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--data", dir.file("x.csv")})), doctest::Contains("--label-columns"),
                       Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, {"--data", data}), doctest::Contains("--out"), Error);
  CHECK_THROWS_AS(run(cli::run_train, with({"--resume", dir.file("none.safetensors")})), Error);
  // A checkpoint of another model cannot be resumed with these options.
  REQUIRE(run(cli::run_train, with({})) == 0);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--width", "8", "--resume", dir.file("out/last.safetensors")})),
                       doctest::Contains("--resume"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_train, with({"--optimizer", "sgd", "--resume", dir.file("out/last.safetensors")})),
                       doctest::Contains("sgd"), Error);
  CHECK(run(cli::run_train, {"--help"}) == 0);

  CHECK_THROWS_WITH_AS(run(cli::run_evaluate, {"--data", data}), doctest::Contains("--model"), Error);
  CHECK_THROWS_WITH_AS(run(cli::run_evaluate, {"--model", dir.file("out/last.safetensors"), "--data", data, "--where",
                                               "population"}),
                       doctest::Contains("--where"), Error);
  CHECK(run(cli::run_evaluate, {"--help"}) == 0);
  CHECK_THROWS_WITH_AS(run(cli::run_predict, {"--model", dir.file("out/last.safetensors")}), doctest::Contains("--input"),
                       Error);
  CHECK_THROWS_WITH_AS(run(cli::run_predict, {"--model", dir.file("out/last.safetensors"), "--input"}),
                       doctest::Contains("--input"), Error);
  CHECK_THROWS_AS(run(cli::run_predict, {"--model", dir.file("out/last.safetensors"), "--input", dir.file("no.png")}),
                  Error);
  CHECK(run(cli::run_predict, {"--help"}) == 0);
}

TEST_CASE("--preset cxr expands to the study's settings, and later options override it") {
  std::vector<std::string> a = {"loupe", "train", "--preset", "cxr", "--batch-size", "4"};
  cli::apply_preset(a, 2);
  const std::string line = [&] {
    std::string s;
    for (const auto& x : a) s += x + " ";
    return s;
  }();
  CHECK(line.find("--multilabel --label-columns covid19,pneumonia,no_finding") != std::string::npos);
  CHECK(line.find("--weight-decay 0.0001 --batch-size 8") != std::string::npos);
  CHECK(a.back() == "4");  // the user's --batch-size comes last and wins

  const std::string cxr = cxr_dir();
  if (cxr.empty()) {
    MESSAGE("skipped: the chest X-ray data (../shared/data/cxr or $LOUPE_DATA_DIR/cxr) is not there");
    return;
  }
  nn::DataSpec spec;
  spec.source = cxr + "/labels.csv";
  spec.label_columns = {"covid19", "pneumonia", "no_finding"};
  CHECK(nn::open_split(spec, "train").dataset->size() == 526);
  CHECK(nn::open_split(spec, "test").dataset->size() == 221);
  spec.filters = {{"population", "adult"}};
  const nn::DataSplit adult = nn::open_split(spec, "test");
  CHECK(adult.dataset->size() > 0);
  CHECK(adult.dataset->size() < 221);
  nn::ModelInfo info;
  info.image_size = 64;
  info.in_channels = 3;
  info.mean = {0.5};
  info.std = {0.25};
  Generator g;
  const Tensor x = nn::image_transform(info)(adult.dataset->get(0).image, g);
  CHECK(x.shape() == Shape{3, 64, 64});
}

}  // namespace loupe::test
