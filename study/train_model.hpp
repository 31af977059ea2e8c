// Training one model of the chest X-ray study with the epoch chosen on the validation split.
//
// Uses the library's Trainer (nn/training.hpp) as `loupe train` does, with the study's settings
// (BCE with logits, Adam, weight decay, batch 8, no augmentation), but it evaluates on the
// validation split after every epoch and keeps
//   <folder>/last.safetensors    the latest position (after every epoch, and on a stop request)
//   <folder>/best.safetensors    the epoch with the best validation micro-F1 (ties: the earlier)
//   <folder>/validation.csv      one row per epoch: train loss, validation loss / micro-F1 /
//                                macro-F1 / macro AUROC, seconds
//   <folder>/trained             written last: the model is done (best epoch, seconds)
// A folder that has last.safetensors but no `trained` marker is resumed from it (byte for byte
// on the CPU, as `loupe train --resume`). Test-split images are never seen here.
// Tests: tests/study/test_study_cli.cpp
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/checkpoint.hpp"
#include "nn/data/dataset.hpp"
#include "tensor/device.hpp"

namespace loupe::study {

struct TrainSettings {
  int64_t epochs = 5;
  int64_t batch_size = 8;
  double lr = 1e-3;
  double weight_decay = 1e-4;
  uint64_t seed = 0;
  int workers = 1;
  Device device = Device::cpu();
};

struct TrainedModel {
  int64_t best_epoch = 0;
  double best_val_micro_f1 = 0.0;
  int64_t epochs = 0;
  double seconds = 0.0;  // training time over all epochs (a resumed run adds its part)
  bool resumed = false;  // this call continued an earlier, unfinished run
};

// Returns std::nullopt-like `stopped` = true when should_stop() asked to stop (after saving the
// position). `log` gets one line per epoch.
struct TrainOutcome {
  TrainedModel model;
  bool stopped = false;
};

TrainOutcome train_on_validation(const nn::ModelInfo& info, std::shared_ptr<nn::Dataset> train,
                                 std::shared_ptr<nn::Dataset> validation, const TrainSettings& settings,
                                 const std::string& folder, const std::function<bool(int64_t step)>& should_stop,
                                 const std::function<void(const std::string&)>& log);

// The `trained` marker of a finished model (reads best epoch, micro-F1, epochs and seconds).
bool read_trained_marker(const std::string& folder, TrainedModel* out);

}  // namespace loupe::study
