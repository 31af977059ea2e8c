// Training and evaluation loops for the image classifiers of the zoo.
//
//   Trainer trainer(model, optimizer, loader, options, &generator);
//   while (trainer.epoch() < epochs) {
//     EpochStats stats = trainer.train_epoch(on_step);      // one pass over the loader
//     Predictions p = predict(*model, test_loader, multilabel);
//     MetricsReport r = report(p, multilabel, label_names);
//     trainer.save_checkpoint("last.safetensors", info);   // atomic; resumable
//   }
//
// Losses: single-label = cross-entropy on (N, K) logits and (N,) int64 classes (a (N, K) one-hot
// label is turned into its argmax); multilabel = binary cross-entropy with logits on (N, K)
// multi-hot labels. InceptionV3 in training adds aux_loss_weight (0.4) x the same loss on its
// auxiliary head's logits. Each optimiser step: lr = schedule.lr_at(global step), zero the
// gradients, forward, loss, backward, clip the gradient norm (if clip > 0), step.
//
// Resuming. A checkpoint (nn/checkpoint.hpp layout) holds
//   tensors   "model.*"                    the model's state dict
//             "optimizer.*"                the optimiser's state_dict() (nn/optim/optimizer.hpp)
//   metadata  "train.optimizer"            "sgd" or "adam" (checked on load)
//             "train.global_step"          optimiser steps taken (the schedule is a function of it)
//             "train.loader_epoch", "train.loader_batch"   where the data loader continues
//             "train.generator", "train.default_generator"  "seed,offset" of the trainer's
//                                          generator (dropout, ...) and of the process default
//             "train.epoch_loss_sum", "train.epoch_images", "train.epoch_batches",
//             "train.epoch_seconds"        the running totals of a checkpoint taken mid-epoch
// The loader's batches are a pure function of (seed, epoch, batch), the schedule of the step,
// and all kernels are thread-count independent, so on the CPU a run stopped and resumed from a
// checkpoint ends with the same bytes as one that never stopped (tests/nn/train/test_resume.cpp).
//
// Data-parallel training (docs/distributed.md). With TrainOptions::communicator of N > 1 ranks,
// each rank's loader gives its shard of every global batch (LoaderOptions::shard / shards), and
// each step: forward on the shard; one small all-reduce of (images, loss sum) gives the global
// batch size n and mean loss; backward of loss * n_rank / n through a GradientReducer
// (distributed/gradient_reducer.hpp), whose bucketed all-reduces sum the gradients while backward
// runs, so every rank holds the gradient of the global batch's mean loss; then the same optimiser
// step on every rank. The constructor copies rank 0's parameters and buffers to all ranks.
// Checkpoints hold no rank count: the CLI writes them from rank 0 and any number of ranks resumes.
#pragma once

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "distributed/gradient_reducer.hpp"
#include "nn/checkpoint.hpp"
#include "nn/data/loader.hpp"
#include "nn/metrics/report.hpp"
#include "nn/module.hpp"
#include "nn/optim/optimizer.hpp"
#include "nn/optim/schedule.hpp"

namespace loupe::nn {

struct TrainOptions {
  bool multilabel = false;
  double clip = 0.0;  // maximal gradient 2-norm; 0 = no clipping
  Schedule schedule;  // learning rate per optimiser step; base_lr is the rate
  double aux_loss_weight = 0.4;
  // Data parallelism (see above): null or one rank = this process alone.
  std::shared_ptr<distributed::Communicator> communicator;
  int64_t bucket_bytes = distributed::kDefaultBucketBytes;
};

// Totals of one epoch (or of the steps taken so far in it).
struct EpochStats {
  int64_t epoch = 0;  // 0-based
  double loss = 0.0;  // mean over images
  int64_t images = 0;
  int64_t batches = 0;
  double seconds = 0.0;  // training wall time of the epoch (over all calls; a resumed run adds its part)
};

// What a callback sees after each step.
struct StepInfo {
  int64_t epoch = 0;
  int64_t batch = 0;             // batches done in this epoch
  int64_t batches_per_epoch = 0;
  double loss = 0.0;             // this batch's loss
  double mean_loss = 0.0;        // the epoch's mean so far
  double lr = 0.0;
  double images_per_second = 0.0;  // this process's part of the epoch
};

// The loss of a batch of logits: cross-entropy (single-label) or BCE with logits (multilabel).
Tensor classification_loss(const Tensor& logits, const Tensor& labels, bool multilabel);

class Trainer {
 public:
  // `generator` is the one the model's random layers use (null: the default generator).
  Trainer(std::shared_ptr<Module> model, std::shared_ptr<Optimizer> optimizer, std::shared_ptr<DataLoader> loader,
          TrainOptions options, Generator* generator = nullptr);

  // One optimiser step on one batch (this rank's shard of it); returns the loss of the global batch.
  double train_step(const Batch& batch);
  // Steps through the rest of the current epoch (or at most `max_steps` steps, -1 = no limit).
  // Returns the epoch's totals when the epoch ended, and the running totals otherwise.
  EpochStats train_epoch(const std::function<void(const StepInfo&)>& on_step = {}, int64_t max_steps = -1);
  bool epoch_finished() const { return epoch_finished_; }
  // Images in the last step's global batch (all ranks together).
  int64_t last_step_images() const { return last_step_images_; }
  // The gradient reducer of a data-parallel run (null otherwise).
  const distributed::GradientReducer* reducer() const { return reducer_.get(); }

  int64_t global_step() const { return global_step_; }
  int64_t epoch() const { return loader_->state().epoch; }  // the epoch the next batch belongs to
  Module& model() { return *model_; }
  Optimizer& optimizer() { return *optimizer_; }

  // The optimiser state ("optimizer.*") and "train.*" metadata described above.
  std::map<std::string, Tensor> state_tensors() const;
  std::map<std::string, std::string> state_metadata() const;
  // Writes model + training state atomically; `extra_metadata` adds keys (e.g. the best metric).
  void save_checkpoint(const std::string& path, const ModelInfo& info,
                       const std::map<std::string, std::string>& extra_metadata = {}) const;
  // Restores model, optimiser, step, data-loader position and generators from a checkpoint.
  void load_checkpoint(const Checkpoint& checkpoint, const std::string& path = "checkpoint");

 private:
  std::shared_ptr<Module> model_;
  std::shared_ptr<Optimizer> optimizer_;
  std::shared_ptr<DataLoader> loader_;
  TrainOptions options_;
  Generator* generator_;
  int64_t global_step_ = 0;
  // Running totals of the current epoch.
  double loss_sum_ = 0.0;  // sum over images of the loss
  int64_t images_ = 0;
  int64_t batches_ = 0;
  double seconds_ = 0.0;
  bool epoch_finished_ = false;
  int64_t last_step_images_ = 0;
  std::unique_ptr<distributed::GradientReducer> reducer_;
};

// A model's outputs on a whole loader (one pass, in the loader's order, eval mode, no gradients).
struct Predictions {
  Tensor probabilities;  // (N, K) float32: softmax (single-label) or sigmoid (multilabel)
  Tensor labels;         // (N,) int64 or (N, K) float32, as the loader gives them
  std::vector<int64_t> indices;  // dataset index of each row
  double loss = 0.0;     // mean over examples
};
Predictions predict(Module& model, DataLoader& loader, bool multilabel,
                    const std::function<void(int64_t done, int64_t total)>& on_batch = {});
// Metrics of predictions (single-label labels may be (N, K) one-hot: their argmax is the class).
MetricsReport report(const Predictions& predictions, bool multilabel, const std::vector<std::string>& label_names,
                     double threshold = 0.5);

// The optimiser by name: "sgd" (momentum, nesterov), "adam", "adamw".
struct OptimizerConfig {
  std::string name = "adam";
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.9;  // sgd
  bool nesterov = false;  // sgd
};
std::shared_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, std::vector<Tensor> parameters);

// One line of a run's metrics.csv / metrics.json (NaN = not measured: written empty / null).
struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  int64_t step = 0;   // optimiser steps so far
  double lr = 0, train_loss = 0;
  double test_loss = NAN, accuracy = NAN, micro_f1 = NAN, macro_f1 = NAN, macro_auroc = NAN;
  double seconds = 0, images_per_second = 0;
  std::vector<double> class_f1;  // per class / label, in label order
};
// metrics.csv: a header "epoch,step,lr,train_loss,test_loss,test_accuracy,test_micro_f1,
// test_macro_f1,test_macro_auroc,epoch_seconds,images_per_second,f1_<label>..." and one row per epoch.
std::string metrics_csv(const std::vector<EpochMetrics>& rows, const std::vector<std::string>& labels);
// metrics.json: {"model": ..., "epochs": [{"epoch": 1, ..., "test_f1": {"<label>": ...}}, ...]}
std::string metrics_json(const std::vector<EpochMetrics>& rows, const std::vector<std::string>& labels,
                         const std::string& model);
// The rows of a metrics.csv written by metrics_csv up to epoch `last_epoch` (a resumed run goes on
// from there); none when the file is missing.
std::vector<EpochMetrics> read_metrics_csv(const std::string& path, int64_t last_epoch, size_t labels);

// Where the examples come from, for the command line (cli/train.cpp, evaluate.cpp):
//   "fashion-mnist"  the four IDX files in fashion_mnist_dir; splits "train" (60000) and "test" (10000)
//   a .csv file      CsvImageDataset: files relative to image_dir (default: the CSV's folder, then
//                    its images/ subfolder), label_columns, rows where split_column == split
//   a folder         ImageFolderDataset of <folder>/<split>/<class>/<image>
// Every split gets the pipeline of image_transform(): grey -> resize_pad(image_size) -> normalise
// -> channel repeated to 3 when in_channels is 3.
struct DataSpec {
  std::string source = "fashion-mnist";
  std::string fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
  std::string image_dir;
  std::vector<std::string> label_columns;
  std::string split_column = "split";
  std::vector<std::pair<std::string, std::string>> filters;  // more row filters (CSV only), e.g. population=adult
  OnBadFile on_bad_file = OnBadFile::stop;
};

struct DataSplit {
  std::shared_ptr<Dataset> dataset;
  std::vector<std::string> label_names;  // class names (single-label) or label columns (multilabel)
};
DataSplit open_split(const DataSpec& spec, const std::string& split);
// A view of the first n examples of a dataset (all of them when it has fewer).
std::shared_ptr<Dataset> first_examples(std::shared_ptr<Dataset> dataset, int64_t n);
// The normalisation a source is trained with: Fashion-MNIST's pixel statistics (0.2860, 0.3530),
// otherwise (0.5, 0.25) on [0, 1] grey values.
std::pair<double, double> default_normalisation(const DataSpec& spec);
// The evaluation / prediction pipeline of a model (image (C, H, W) in [0, 1] -> model input).
Compose image_transform(const ModelInfo& info);

}  // namespace loupe::nn
