// `loupe study cxr` with tiny settings on the real chest X-ray data (two small ResNets, 32 px,
// 16 training images): it runs end to end, a stop request mid-training exits 128 + SIGINT with
// the position saved, the same command continues and ends with the same model and predictions
// as a run that never stopped, a finished run is only re-reported, and other settings in the same
// run folder are refused. Skipped (with a message) when the data is not there.
#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.hpp"
#include "tensor/error.hpp"
#include "tensor/io/json.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/io/safetensors.hpp"
#include "tensor/ops.hpp"
#include "tests/nn/data/helpers.hpp"

namespace loupe::test {

namespace {

int study(std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), {"loupe", "study"});
  std::vector<char*> argv;
  for (std::string& a : arguments) argv.push_back(a.data());
  return cli::run_study(static_cast<int>(argv.size()), argv.data());
}

std::vector<std::string> tiny(const std::string& data, const std::string& out) {
  return {"cxr", "--data", data, "--out", out, "--models", "resnet18,resnet34", "--width", "4", "--image-size", "32",
          "--epochs", "2", "--limit-train", "16", "--limit-eval", "24", "--explain-images", "2", "--steps", "2",
          "--bootstrap", "20", "--workers", "0"};
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void check_same_tensors(const std::string& a, const std::string& b) {
  const auto x = load_safetensors(a), y = load_safetensors(b);
  REQUIRE(x.size() == y.size());
  for (const auto& named : x) {
    INFO(named.first);
    CHECK(to_vector<double>(ops::to_dtype(named.second, DType::f64)) ==
          to_vector<double>(ops::to_dtype(y.at(named.first), DType::f64)));
  }
}

const json::Value& at(const json::Value& v, const std::string& key) {
  const json::Value* found = v.find(key);
  if (found == nullptr) throw Error("summary.json: no key '" + key + "'");
  return *found;
}

double number_at(const json::Value& v, const std::string& key) { return std::stod(at(v, key).text); }

}  // namespace

TEST_CASE("study cxr: --help, and bad options named before any work") {
  CHECK(study({"--help"}) == 0);
  CHECK(study({"cxr", "--help"}) == 0);
  CHECK_THROWS_WITH_AS(study({"mnist"}), doctest::Contains("unknown study 'mnist'"), Error);
  CHECK_THROWS_WITH_AS(study({"cxr", "--out", "x"}), doctest::Contains("--data"), Error);
  CHECK_THROWS_WITH_AS(study({"cxr", "--data", "x.csv", "--out", "x", "--inception-size", "40"}),
                       doctest::Contains("--inception-size must be in [75"), Error);
  CHECK_THROWS_WITH_AS(study({"cxr", "--data", "x.csv", "--out", "x", "--methods", "nonsense"}),
                       doctest::Contains("nonsense"), Error);
}

TEST_CASE("study cxr: tiny run end to end, stopped mid-training and continued by the same command") {
  const std::string cxr = cxr_dir();
  if (cxr.empty()) {
    MESSAGE("chest X-ray data not found; study test skipped");
    return;
  }
  const std::string data = cxr + "/labels.csv";
  ScratchDir dir("study");
  const std::string straight = dir.file("straight"), stopped = dir.file("stopped");
  REQUIRE(study(tiny(data, straight)) == 0);

  // Stop at step 3 of resnet18 (epoch 2 of 2, two steps per epoch), through the real handler.
  ::setenv("LOUPE_TEST_INTERRUPT_AFTER_STEP", "3", 1);
  const int code = study(tiny(data, stopped));
  ::unsetenv("LOUPE_TEST_INTERRUPT_AFTER_STEP");
  CHECK(code == 128 + SIGINT);
  CHECK(std::filesystem::exists(stopped + "/models/resnet18/last.safetensors"));
  CHECK_FALSE(std::filesystem::exists(stopped + "/models/resnet18/trained"));
  CHECK(load_safetensors_metadata(stopped + "/models/resnet18/last.safetensors").at("train.global_step") == "3");
  CHECK_FALSE(std::filesystem::exists(stopped + "/report.html"));
  REQUIRE(study(tiny(data, stopped)) == 0);

  // The continued run ends where the straight one did.
  for (const std::string model : {"resnet18", "resnet34"}) {
    INFO(model);
    check_same_tensors(straight + "/models/" + model + "/best.safetensors", stopped + "/models/" + model + "/best.safetensors");
    const Tensor a = load_npy(straight + "/models/" + model + "/test_probabilities.npy");
    const Tensor b = load_npy(stopped + "/models/" + model + "/test_probabilities.npy");
    CHECK(to_vector<float>(a) == to_vector<float>(b));
    CHECK(std::filesystem::exists(stopped + "/models/" + model + "/trained"));
    CHECK(std::filesystem::exists(stopped + "/explain/" + model + "/attributions.tsv"));
    CHECK(std::filesystem::exists(stopped + "/profiles/" + model + "/profiles.html"));
  }
  CHECK(read(straight + "/split.csv") == read(stopped + "/split.csv"));
  CHECK(read(straight + "/split.csv").find(",val\n") != std::string::npos);

  // The summary: two models and two ensembles, test and adult numbers.
  const json::Value summary = json::parse(read(stopped + "/summary.json"));
  CHECK(at(summary, "stopped").boolean == false);
  const auto& systems = at(summary, "systems").items;
  REQUIRE(systems.size() == 4);
  CHECK(at(systems[2], "name").text == "ensemble: probability mean");
  CHECK(at(systems[3], "name").text == "ensemble: majority vote");
  CHECK(number_at(at(systems[0], "test"), "images") == 24);
  CHECK(number_at(at(systems[0], "adult_test"), "images") > 0);
  CHECK(number_at(at(summary, "images"), "validation") == 24);

  // One report with every method of every model for the same images.
  const std::string html = read(stopped + "/report.html");
  for (const char* part : {"ensemble: majority vote", "adults only", "occlusion", "saliency", "ixg", "guided",
                           "ig", "deeplift", "explain/resnet34/", "profiles/resnet18/", "outside the lung box"}) {
    INFO(part);
    CHECK(html.find(part) != std::string::npos);
  }

  // A finished run is only re-reported; other settings in its folder are refused.
  CHECK(study(tiny(data, stopped)) == 0);
  std::vector<std::string> other = tiny(data, stopped);
  other[std::find(other.begin(), other.end(), "--epochs") - other.begin() + 1] = "3";
  CHECK_THROWS_WITH_AS(study(other), doctest::Contains("epochs: '2' in the run, '3' now"), Error);
}

}  // namespace loupe::test
