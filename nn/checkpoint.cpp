// Training checkpoints. See checkpoint.hpp for the file layout.
#include "nn/checkpoint.hpp"

#include <cmath>
#include <sstream>

#include "nn/models/zoo.hpp"
#include "tensor/io/safetensors.hpp"

namespace loupe::nn {

namespace {

const char* kModelPrefix = "model.";

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> items;
  if (text.empty()) return items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) items.push_back(item);
  return items;
}

std::string join_numbers(const std::vector<double>& values) {
  std::ostringstream out;
  out.precision(17);
  for (size_t i = 0; i < values.size(); ++i) out << (i ? "," : "") << values[i];
  return out.str();
}

const std::string& required(const std::map<std::string, std::string>& metadata, const std::string& key,
                            const std::string& path) {
  auto it = metadata.find(key);
  LOUPE_CHECK(it != metadata.end(), "checkpoint: '", path, "' has no '", key, "' entry (not a loupe checkpoint?)");
  return it->second;
}

int64_t parse_int(const std::string& text, const std::string& key, const std::string& path) {
  try {
    size_t used = 0;
    const int64_t value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (...) {
  }
  throw Error("checkpoint: '" + path + "': '" + key + "' is not an integer: '" + text + "'");
}

std::vector<double> parse_numbers(const std::string& text, const std::string& key, const std::string& path) {
  std::vector<double> values;
  for (const std::string& item : split(text)) {
    try {
      size_t used = 0;
      values.push_back(std::stod(item, &used));
      if (used == item.size()) continue;
    } catch (...) {
    }
    throw Error("checkpoint: '" + path + "': '" + key + "' holds a non-number '" + item + "'");
  }
  return values;
}

}  // namespace

std::map<std::string, std::string> ModelInfo::to_metadata() const {
  std::map<std::string, std::string> metadata{{"loupe.format", "checkpoint-1"},
          {"loupe.model", model},
          {"loupe.num_classes", std::to_string(num_classes)},
          {"loupe.in_channels", std::to_string(in_channels)},
          {"loupe.image_size", std::to_string(image_size)},
          {"loupe.labels", join(labels)},
          {"loupe.multilabel", multilabel ? "1" : "0"},
          {"loupe.mean", join_numbers(mean)},
          {"loupe.std", join_numbers(std)}};
  // The variant keys only when they differ from torchvision's model, so plain checkpoints keep
  // exactly the documented key set.
  // (Not = "1": GCC 12 gives a -Wrestrict false positive for it.)
  if (small_input) metadata.insert_or_assign("loupe.small_input", std::string(1, '1'));
  if (width != 64) metadata["loupe.width"] = std::to_string(width);
  return metadata;
}

ModelInfo ModelInfo::from_metadata(const std::map<std::string, std::string>& metadata, const std::string& path) {
  LOUPE_CHECK(required(metadata, "loupe.format", path) == "checkpoint-1", "checkpoint: '", path,
              "' has an unknown format '", metadata.at("loupe.format"), "'");
  ModelInfo info;
  info.model = required(metadata, "loupe.model", path);
  info.num_classes = parse_int(required(metadata, "loupe.num_classes", path), "loupe.num_classes", path);
  info.in_channels = parse_int(required(metadata, "loupe.in_channels", path), "loupe.in_channels", path);
  info.image_size = parse_int(required(metadata, "loupe.image_size", path), "loupe.image_size", path);
  info.labels = split(required(metadata, "loupe.labels", path));
  info.multilabel = required(metadata, "loupe.multilabel", path) == "1";
  info.mean = parse_numbers(required(metadata, "loupe.mean", path), "loupe.mean", path);
  info.std = parse_numbers(required(metadata, "loupe.std", path), "loupe.std", path);
  if (auto it = metadata.find("loupe.small_input"); it != metadata.end()) info.small_input = it->second == "1";
  if (auto it = metadata.find("loupe.width"); it != metadata.end()) {
    info.width = parse_int(it->second, "loupe.width", path);
  }
  // A corrupt or hostile file must not make build_model allocate without bound or divide by zero.
  auto check_range = [&](int64_t value, int64_t lo, int64_t hi, const char* key) {
    LOUPE_CHECK(value >= lo && value <= hi, "checkpoint: '", path, "': '", key, "' is ", value, ", outside [", lo, ", ",
                hi, "]");
  };
  check_range(info.num_classes, 1, 1'000'000, "loupe.num_classes");
  check_range(info.in_channels, 1, 64, "loupe.in_channels");
  check_range(info.image_size, 1, 65536, "loupe.image_size");
  check_range(info.width, 1, 512, "loupe.width");
  LOUPE_CHECK(!info.mean.empty() && info.mean.size() == info.std.size(), "checkpoint: '", path,
              "': 'loupe.mean' and 'loupe.std' must hold the same, non-zero number of values");
  for (size_t c = 0; c < info.std.size(); ++c) {
    LOUPE_CHECK(std::isfinite(info.mean[c]) && std::isfinite(info.std[c]) && info.std[c] > 0, "checkpoint: '", path,
                "': normalisation mean ", info.mean[c], " / std ", info.std[c], " is not finite with a positive std");
  }
  return info;
}

void save_checkpoint(const std::string& path, const Module& model, const ModelInfo& info,
                     const std::map<std::string, Tensor>& extra_tensors,
                     const std::map<std::string, std::string>& extra_metadata) {
  // Files hold CPU tensors: a model or optimiser state on a GPU is copied back first.
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, tensor] : extra_tensors) tensors[name] = ops::to_device(tensor, Device::cpu());
  for (const auto& [name, tensor] : model.state_dict()) {
    tensors[kModelPrefix + name] = ops::to_device(tensor, Device::cpu());
  }
  std::map<std::string, std::string> metadata = extra_metadata;
  for (const auto& [key, value] : info.to_metadata()) metadata[key] = value;
  save_safetensors(path, tensors, metadata);
}

Checkpoint read_checkpoint(const std::string& path) {
  SafetensorsReader reader(path);
  Checkpoint checkpoint;
  checkpoint.metadata = reader.metadata();
  checkpoint.info = ModelInfo::from_metadata(checkpoint.metadata, path);  // refuses a foreign file first
  checkpoint.tensors = reader.read_tensors();
  return checkpoint;
}

std::shared_ptr<Module> build_model(const ModelInfo& info, Generator* generator) {
  const bool variant = info.small_input || info.width != 64;
  if (variant && (info.model == "resnet18" || info.model == "resnet34")) {
    const ModelOptions options{info.num_classes, info.in_channels, generator};
    const ResNetVariant resnet_variant{info.small_input, info.width};
    return info.model == "resnet18" ? std::shared_ptr<Module>(resnet18(options, resnet_variant))
                                    : std::shared_ptr<Module>(resnet34(options, resnet_variant));
  }
  LOUPE_CHECK(!variant, "build_model: small_input and width apply only to resnet18 and resnet34, not '", info.model, "'");
  return make_model(info.model, info.num_classes, info.in_channels, generator);
}

void load_checkpoint_weights(Module& model, const Checkpoint& checkpoint, const std::string& path) {
  StateDict state;
  const std::string prefix = kModelPrefix;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    if (name.rfind(prefix, 0) == 0) state[name.substr(prefix.size())] = tensor;
  }
  try {
    model.load_state_dict(state, /*strict=*/true);
  } catch (const Error& error) {
    throw Error("checkpoint: '" + path + "': " + error.what());
  }
}

std::shared_ptr<Module> load_model(const std::string& path, ModelInfo* info_out) {
  const Checkpoint checkpoint = read_checkpoint(path);
  const ModelInfo& info = checkpoint.info;
  std::shared_ptr<Module> model;
  try {
    model = build_model(info);
  } catch (const Error& error) {
    throw Error("checkpoint: '" + path + "': " + error.what());
  }
  load_checkpoint_weights(*model, checkpoint, path);
  model->eval();
  if (info_out) *info_out = info;
  return model;
}

}  // namespace loupe::nn
