// What `loupe train`, `evaluate` and `predict` share: the --preset expansion, the data options, the
// model description and the schedule built from the options. Header-only (inline) helpers.
#pragma once

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli/args.hpp"
#include "nn/training.hpp"
#include "tensor/cuda/backend.hpp"

namespace loupe::cli {

inline std::vector<std::string> split_list(const std::string& text, char separator = ',') {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, separator)) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

// "--preset cxr" inserts the study's options right after the subcommand, so that any option the
// user gives (which comes later on the line) overrides them.
inline void apply_preset(std::vector<std::string>& arguments, size_t first) {
  std::string preset;
  for (size_t i = first; i < arguments.size(); ++i) {
    if (arguments[i] == "--preset" && i + 1 < arguments.size()) preset = arguments[i + 1];
    if (arguments[i].rfind("--preset=", 0) == 0) preset = arguments[i].substr(9);
  }
  if (preset != "cxr") return;  // an unknown name is reported by the command
  const std::vector<std::string> cxr = {"--multilabel", "--label-columns", "covid19,pneumonia,no_finding",
                                        "--split-column", "split", "--optimizer", "adam", "--lr", "0.001",
                                        "--weight-decay", "0.0001", "--batch-size", "8", "--in-channels", "3",
                                        "--image-size", "224", "--threshold", "0.5"};
  arguments.insert(arguments.begin() + static_cast<std::ptrdiff_t>(first), cxr.begin(), cxr.end());
}

// --device: "cpu", "cuda" or "cuda:N"; a GPU device must exist in this build and on this machine.
inline Device parse_device_option(const std::string& text) {
  const Device device = Device::parse(text);
  if (device.is_cuda()) {
    LOUPE_CHECK(cuda::is_built(), "--device '", text, "': this build of loupe has no CUDA backend");
    LOUPE_CHECK(device.index < cuda::device_count(), "--device '", text, "': ", cuda::device_count(),
                " CUDA device(s) visible");
  }
  return device;
}

inline nn::OnBadFile bad_file_policy(const std::string& name) {
  LOUPE_CHECK(name == "stop" || name == "skip", "--on-bad-image must be stop or skip, got '", name, "'");
  return name == "skip" ? nn::OnBadFile::skip : nn::OnBadFile::stop;
}

// The data options (--data, --image-dir, --label-columns, --split-column, --where, --on-bad-image).
inline nn::DataSpec data_spec(const Args& args) {
  nn::DataSpec spec;
  spec.source = args.get("data");
  LOUPE_CHECK(!spec.source.empty(), "--data is required (fashion-mnist, a folder or a CSV)");
  if (!args.get("fashion-mnist-dir").empty()) spec.fashion_mnist_dir = args.get("fashion-mnist-dir");
  spec.image_dir = args.get("image-dir");
  spec.label_columns = split_list(args.get("label-columns"));
  spec.split_column = args.get("split-column");
  for (const std::string& filter : split_list(args.get("where"))) {
    const size_t eq = filter.find('=');
    LOUPE_CHECK(eq != std::string::npos && eq > 0, "--where expects column=value[,column=value], got '", filter, "'");
    spec.filters.emplace_back(filter.substr(0, eq), filter.substr(eq + 1));
  }
  spec.on_bad_file = bad_file_policy(args.get("on-bad-image").empty() ? "stop" : args.get("on-bad-image"));
  return spec;
}

// The model and input description a training run stores in its checkpoints.
inline nn::ModelInfo model_info(const Args& args, const nn::DataSpec& spec, const std::vector<std::string>& labels,
                                bool multilabel) {
  nn::ModelInfo info;
  info.model = args.get("model");
  info.num_classes = static_cast<int64_t>(labels.size());
  LOUPE_CHECK(info.num_classes >= 1, "train: the data has no classes / labels");
  info.in_channels = args.get_int("in-channels");
  LOUPE_CHECK(info.in_channels == 1 || info.in_channels == 3, "--in-channels must be 1 or 3, got ", info.in_channels);
  info.image_size = args.get_int("image-size");
  if (info.image_size == 0) info.image_size = spec.source == "fashion-mnist" ? 28 : 224;
  LOUPE_CHECK(info.image_size >= 8 && info.image_size <= 4096, "--image-size must be in [8, 4096], got ", info.image_size);
  info.labels = labels;
  info.multilabel = multilabel;
  const auto [mean, std] = nn::default_normalisation(spec);
  info.mean = {mean};
  info.std = {std};
  info.small_input = args.flag("small-input");
  info.width = args.get_int("width");
  return info;
}

// Names every field in which the checkpoint's model differs from the one the options describe
// (a message that printed only some fields once read "holds a resnet18 ... but the options
// describe a resnet18 ..." when only --width differed).
inline void check_same_model(const nn::ModelInfo& saved, const nn::ModelInfo& now, const std::string& path) {
  std::ostringstream differences;
  auto compare = [&](const char* what, const auto& in_file, const auto& in_options) {
    if (in_file == in_options) return;
    differences << (differences.tellp() > 0 ? "; " : "") << what << ": " << in_file << " in the checkpoint, "
                << in_options << " from the options";
  };
  compare("model (--model)", saved.model, now.model);
  compare("outputs (classes in --data / --label-columns)", saved.num_classes, now.num_classes);
  compare("--in-channels", saved.in_channels, now.in_channels);
  compare("--image-size", saved.image_size, now.image_size);
  compare("--small-input", saved.small_input, now.small_input);
  compare("--width", saved.width, now.width);
  compare("--multilabel", saved.multilabel, now.multilabel);
  LOUPE_CHECK(differences.tellp() == 0, "--resume: '", path, "' holds another model than the options describe (",
              differences.str(), "); give the run's own options");
}

// The learning-rate schedule of the options, counted in optimiser steps.
inline nn::Schedule schedule_from(const Args& args, int64_t steps_per_epoch) {
  nn::Schedule s;
  s.kind = nn::Schedule::parse_kind(args.get("schedule"));
  s.base_lr = args.get_double("lr");
  s.warmup = args.get_int("warmup");
  LOUPE_CHECK(s.warmup >= 0, "--warmup must be >= 0, got ", s.warmup);
  s.step_size = std::max<int64_t>(1, args.get_int("step-size") * steps_per_epoch);
  s.gamma = args.get_double("gamma");
  s.total = std::max<int64_t>(1, args.get_int("epochs") * steps_per_epoch - s.warmup);
  return s;
}

inline void make_directories(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  LOUPE_CHECK(!error, "cannot create the folder '", path, "': ", error.message());
}

}  // namespace loupe::cli
