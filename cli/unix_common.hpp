// Shared bits of the `loupe unix ...` subcommands (cli/unix_*.cpp): the data options every one of
// them takes, loading the data of a run's seed, loading a saved run's model, and JSON numbers.
// Tests: tests/unix/test_unix_cli.cpp (runs the program).
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli/args.hpp"
#include "cli/train_common.hpp"
#include "nn/serialization.hpp"
#include "tensor/error.hpp"
#include "tensor/io/json.hpp"
#include "unix/data.hpp"
#include "unix/model.hpp"
#include "unix/run.hpp"

namespace loupe::cli {

int run_unix_train(int argc, char** argv);       // cli/unix_train.cpp
int run_unix_eval(int argc, char** argv);        // cli/unix_eval.cpp
int run_unix_conflict(int argc, char** argv);    // cli/unix_conflict.cpp
int run_unix_sample(int argc, char** argv);      // cli/unix_sample.cpp
int run_unix_experiment(int argc, char** argv);  // cli/unix_experiment.cpp

namespace unix_cli {

inline const std::vector<OptionSpec> kDataOptions = {
    {"digits", "FILE", "", "sklearn's digits.csv.gz (default: $LOUPE_DIGITS_CSV or the copy ./run extracts)"},
    {"fashion-dir", "DIR", "/usr/share/datasets/fashion-mnist", "Fashion-MNIST's IDX files (--dataset fashion-mnist)"},
    {"fashion-limit", "N", "-1", "Fashion-MNIST: at most N training images (-1: all 60000)"},
    {"text-dir", "DIR", "/usr/share/common-licenses", "folder of the text stream"},
    {"device", "D", "cpu", "cpu, cuda or cuda:N"},
};

inline std::vector<OptionSpec> with_data_options(std::vector<OptionSpec> specs) {
  specs.insert(specs.end(), kDataOptions.begin(), kDataOptions.end());
  return specs;
}

// The data config from the options; `dataset` "digits" or "fashion-mnist".
inline unix::DataConfig data_config(const Args& args, const std::string& dataset) {
  unix::DataConfig config;
  config.source = dataset;
  config.fashion_dir = args.get("fashion-dir");
  config.fashion_limit = args.get_int("fashion-limit");
  LOUPE_CHECK(config.fashion_limit == -1 || config.fashion_limit >= 1,
              "option --fashion-limit must be -1 or positive, got ", config.fashion_limit);
  if (dataset == "fashion-mnist") {
    LOUPE_CHECK(std::filesystem::is_directory(config.fashion_dir), "option --fashion-dir: '", config.fashion_dir,
                "' is not a folder (Fashion-MNIST's IDX files)");
  }
  config.text_dir = args.get("text-dir");
  config.digits_path = args.get("digits");
  if (!config.digits_path.empty()) {
    LOUPE_CHECK(std::filesystem::is_regular_file(config.digits_path), "option --digits: '", config.digits_path,
                "' (sklearn's digits.csv.gz) does not exist");
  }
  LOUPE_CHECK(std::filesystem::is_directory(config.text_dir), "option --text-dir: '", config.text_dir,
              "' is not a folder");
  return config;
}

// The experiment's data for `seed` (the digits split and sequence orders depend on it).
inline unix::UnixData load_data(const Args& args, uint64_t seed, const std::string& dataset) {
  unix::DataConfig config = data_config(args, dataset);
  config.seed = seed;
  return unix::load_unix_data(config);
}

// --device: the model (and so every batch) goes there.
inline Device device_option(const Args& args) { return parse_device_option(args.get("device")); }

// DIR/model.safetensors, or FILE itself when --run names a file.
inline std::string run_model_path(const std::string& run) {
  LOUPE_CHECK(!run.empty(), "option --run must name a run folder (written by loupe unix train) or its model file");
  const std::filesystem::path p(run);
  const std::string path = std::filesystem::is_directory(p) ? (p / "model.safetensors").string() : run;
  LOUPE_CHECK(std::filesystem::is_regular_file(path), "option --run: '", path, "' does not exist");
  return path;
}

// A saved run's model, loaded strictly into the UnixLM its metadata describes.
struct LoadedRun {
  unix::RunConfig run;
  int64_t vocab_size = 0;
  std::shared_ptr<unix::UnixLM> lm;
};
inline LoadedRun load_run(const std::string& model_path) {
  LoadedRun out;
  out.run = unix::load_run_config(model_path, &out.vocab_size);
  out.lm = std::make_shared<unix::UnixLM>(unix::model_config(out.run, out.vocab_size));
  nn::load_state_dict(*out.lm, model_path, true);
  out.lm->eval();
  return out;
}

inline void check_vocab(const unix::UnixData& data, int64_t vocab_size, const std::string& model_path) {
  LOUPE_CHECK(data.vocab.size() == vocab_size, "unix: '", model_path, "' was trained with a vocabulary of ", vocab_size,
              " tokens, the data gives ", data.vocab.size(), " (another --text-dir or --digits?)");
}

inline std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.9g", v);
  return buffer;
}

// {"image": x, "caption": y, "text": z} of the losses or the token counts.
inline std::string heldout_json(const std::map<unix::Modality, unix::HeldoutLoss>& held, bool tokens) {
  std::string out = "{";
  const char* sep = "";
  for (const auto& [m, h] : held) {
    out += std::string(sep) + "\"" + unix::modality_name(m) + "\": " + json_number(tokens ? h.tokens : h.loss);
    sep = ", ";
  }
  return out + "}";
}

// "0,100,200" -> {0, 100, 200}; the option name goes into the error.
inline std::vector<int64_t> parse_int_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    LOUPE_CHECK(!item.empty() && used == item.size() && v >= 0, "option --", option,
                " must be a comma-separated list of integers >= 0, got '", text, "'");
    out.push_back(v);
  }
  return out;
}

}  // namespace unix_cli
}  // namespace loupe::cli
