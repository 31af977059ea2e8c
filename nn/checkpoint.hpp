// Training checkpoints: one safetensors file holding everything a run needs to continue or to be
// used for prediction and explanation.
//
// Layout (documented here so other tools can read it):
//   tensors   "model.<state-dict key>"       the model's parameters and persistent buffers
//             "optimizer.<name>"             optimiser state (written by the training code)
//   metadata  "loupe.format"        "checkpoint-1"
//             "loupe.model"         zoo name, e.g. "resnet18" (nn/models/zoo.hpp)
//             "loupe.num_classes", "loupe.in_channels", "loupe.image_size"
//             "loupe.labels"        class / label names, comma-separated
//             "loupe.multilabel"    "1" for sigmoid outputs (BCE), "0" for softmax (cross-entropy)
//             "loupe.mean", "loupe.std"   per-channel normalisation, comma-separated
//             "loupe.small_input", "loupe.width"   ResNet variant (nn/models/resnet.hpp); optional,
//                                   absent = torchvision's model ("0", "64")
//             plus any "train.*" keys the training code adds (nn/training.hpp lists them: global
//             step, data-loader epoch and batch, generator state, best metric, ...)
// Tests: tests/nn/test_checkpoint.cpp
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace loupe::nn {

// What a checkpoint says about its model and inputs.
struct ModelInfo {
  std::string model;  // zoo name
  int64_t num_classes = 0;
  int64_t in_channels = 3;
  int64_t image_size = 224;
  std::vector<std::string> labels;
  bool multilabel = false;
  std::vector<double> mean{0.0};
  std::vector<double> std{1.0};
  bool small_input = false;  // ResNet only: 3x3 stride-1 stem
  int64_t width = 64;        // ResNet only: channels of layer1

  std::map<std::string, std::string> to_metadata() const;
  static ModelInfo from_metadata(const std::map<std::string, std::string>& metadata, const std::string& path);
};

struct Checkpoint {
  ModelInfo info;
  std::map<std::string, Tensor> tensors;          // every tensor in the file, by full name
  std::map<std::string, std::string> metadata;    // every metadata entry
};

// Writes the model (under "model.") plus `extra_tensors` and `extra_metadata`, atomically.
void save_checkpoint(const std::string& path, const Module& model, const ModelInfo& info,
                     const std::map<std::string, Tensor>& extra_tensors = {},
                     const std::map<std::string, std::string>& extra_metadata = {});
Checkpoint read_checkpoint(const std::string& path);
// The zoo model `info` describes (with its ResNet variant), freshly initialised from `generator`.
std::shared_ptr<Module> build_model(const ModelInfo& info, Generator* generator = nullptr);
// Loads the checkpoint's "model." tensors into `model` (strict: every name and shape must match);
// `path` is named in the error. load_model is read_checkpoint + build_model + this.
void load_checkpoint_weights(Module& model, const Checkpoint& checkpoint, const std::string& path);
// Builds the zoo model the checkpoint names and loads its weights (strict). Eval mode.
std::shared_ptr<Module> load_model(const std::string& path, ModelInfo* info = nullptr);

}  // namespace loupe::nn
