// `loupe train`: trains a model of the zoo on Fashion-MNIST, a folder of class folders or a CSV of
// image files, evaluates it on the test split after every epoch, and writes into --out:
//   metrics.csv, metrics.json   one row per epoch (rewritten atomically after each epoch)
//   last.safetensors            the latest checkpoint (model + optimiser + schedule + data order)
//   best.safetensors            the checkpoint of the best test accuracy (single-label) or
//                               micro-F1 (multilabel) so far
// --resume CKPT continues a run exactly where the checkpoint left it (nn/training.hpp).
// The chest X-ray study in one line: loupe train --preset cxr --data <cxr>/labels.csv --out DIR
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "cli/train_common.hpp"
#include "nn/training.hpp"
#include "tensor/parallel.hpp"

namespace loupe::cli {

namespace {

const std::vector<OptionSpec> kTrainOptions = {
    {"preset", "NAME", "", "cxr: the chest X-ray study's settings (see above); later options override it"},
    {"model", "NAME", "resnet18", "resnet18, resnet34, densenet121, densenet161, inception_v3, inception_resnet_v2"},
    {"small-input", "", "", "ResNet: 3x3 stride-1 stem for small images (e.g. 28x28)"},
    {"width", "N", "64", "ResNet: channels of the first stage"},
    {"data", "SRC", "fashion-mnist", "fashion-mnist, a folder with train/ and test/ class folders, or a CSV"},
    {"fashion-mnist-dir", "DIR", "/usr/share/datasets/fashion-mnist", "folder of the Fashion-MNIST .gz files"},
    {"image-dir", "DIR", "", "CSV: folder the file column is relative to (default: the CSV's folder or its images/)"},
    {"label-columns", "A,B,..", "", "CSV: label columns (multi-hot with --multilabel, else one-hot)"},
    {"split-column", "NAME", "split", "CSV: column holding train / test"},
    {"multilabel", "", "", "sigmoid outputs and BCE loss (else softmax and cross-entropy)"},
    {"epochs", "N", "10", "training epochs"},
    {"batch-size", "N", "32", "images per step"},
    {"limit-train", "N", "0", "use only the first N training examples (0 = all)"},
    {"optimizer", "NAME", "adam", "sgd, adam or adamw"},
    {"lr", "RATE", "0.001", "learning rate"},
    {"weight-decay", "W", "0", "weight decay (decoupled for adamw)"},
    {"momentum", "M", "0.9", "sgd momentum"},
    {"nesterov", "", "", "sgd: Nesterov momentum"},
    {"schedule", "NAME", "constant", "constant, step or cosine (over all steps after warm-up)"},
    {"step-size", "EPOCHS", "10", "step schedule: multiply the rate by --gamma every this many epochs"},
    {"gamma", "G", "0.1", "step schedule factor"},
    {"warmup", "STEPS", "0", "linear warm-up steps"},
    {"clip", "NORM", "0", "clip the gradient 2-norm to this (0 = off)"},
    {"image-size", "N", "0", "input size (0 = 28 for Fashion-MNIST, 224 otherwise)"},
    {"in-channels", "N", "3", "1 (grey) or 3 (grey repeated)"},
    {"device", "NAME", "cpu", "cpu, cuda or cuda:N (a GPU needs a build with the CUDA backend)"},
    {"seed", "N", "0", "seed for initialisation, shuffling and dropout"},
    {"workers", "N", "2", "data-loading threads"},
    {"threshold", "P", "0.5", "multilabel decision threshold"},
    {"checkpoint-every", "STEPS", "0", "also write last.safetensors every this many steps (0 = per epoch)"},
    {"out", "DIR", "", "output folder (created)"},
    {"resume", "CKPT", "", "continue the run saved in this checkpoint"},
    {"on-bad-image", "POLICY", "stop", "stop or skip unreadable images"},
};

const char* kSummary =
    "Train a model of the zoo and keep its metrics and checkpoints.\n\n"
    "--preset cxr = --multilabel --label-columns covid19,pneumonia,no_finding --split-column split\n"
    "  --optimizer adam --lr 0.001 --weight-decay 0.0001 --batch-size 8 --in-channels 3 --image-size 224\n"
    "  --threshold 0.5 (the study's settings; grey image, aspect-preserving resize with zero padding,\n"
    "  intensity normalisation, channel repeated to 3, BCE with logits)\n"
    "Example: loupe train --preset cxr --data ../shared/data/cxr/labels.csv --epochs 20 --out runs/cxr";

std::string number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream out;
  out.precision(6);
  out << v;
  return out.str();
}

}  // namespace

int run_train(int argc, char** argv) {
  std::vector<std::string> arguments(argv, argv + argc);
  apply_preset(arguments, 2);
  std::vector<char*> pointers;
  for (std::string& a : arguments) pointers.push_back(a.data());
  const Args args(kTrainOptions, static_cast<int>(pointers.size()), pointers.data(), 2);
  if (args.help()) {
    std::cout << usage("train", kSummary, kTrainOptions);
    return 0;
  }
  LOUPE_CHECK(args.get("preset").empty() || args.get("preset") == "cxr", "train: unknown --preset '", args.get("preset"),
              "' (known: cxr)");
  const Device device = parse_device_option(args.get("device"));
  const std::string out_dir = args.get("out");
  LOUPE_CHECK(!out_dir.empty(), "train: --out DIR is required");
  const int64_t epochs = args.get_int("epochs");
  const int64_t batch_size = args.get_int("batch-size");
  const int64_t workers = args.get_int("workers");
  LOUPE_CHECK(epochs > 0, "train: --epochs must be positive, got ", epochs);
  LOUPE_CHECK(batch_size > 0, "train: --batch-size must be positive, got ", batch_size);
  LOUPE_CHECK(workers >= 0 && workers <= 64, "train: --workers must be in [0, 64], got ", workers);
  const bool multilabel = args.flag("multilabel");
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed"));

  // Data.
  nn::DataSpec spec = data_spec(args);
  nn::DataSplit train_split = nn::open_split(spec, "train");
  if (args.get_int("limit-train") > 0) {
    train_split.dataset = nn::first_examples(train_split.dataset, args.get_int("limit-train"));
  }
  std::optional<nn::DataSplit> test_split;
  try {
    test_split = nn::open_split(spec, "test");
    if (test_split->dataset->size() == 0) test_split.reset();
  } catch (const Error& error) {
    std::cerr << "train: no test split (" << error.what() << "); metrics come from the training loss only\n";
  }

  // Model.
  nn::ModelInfo info = model_info(args, spec, train_split.label_names, multilabel);
  Generator generator(seed);
  std::shared_ptr<nn::Module> model = nn::build_model(info, &generator);
  model->to(device);
  // Training repeats the same shapes for thousands of steps: timing cuDNN's algorithms once per
  // shape pays for itself (22% on ResNet18, benchmarks/RESULTS.md).
  if (device.is_cuda()) cuda::set_cudnn_benchmark(true);
  nn::OptimizerConfig optimizer_config;
  optimizer_config.name = args.get("optimizer");
  optimizer_config.lr = args.get_double("lr");
  optimizer_config.weight_decay = args.get_double("weight-decay");
  optimizer_config.momentum = args.get_double("momentum");
  optimizer_config.nesterov = args.flag("nesterov");
  std::shared_ptr<nn::Optimizer> optimizer = nn::make_optimizer(optimizer_config, model->parameters());

  nn::LoaderOptions loader_options;
  loader_options.batch_size = batch_size;
  loader_options.shuffle = true;
  loader_options.seed = seed;
  loader_options.num_workers = static_cast<int>(workers);
  auto train_loader = std::make_shared<nn::DataLoader>(train_split.dataset, loader_options, nn::image_transform(info));
  LOUPE_CHECK(train_loader->batches_per_epoch() > 0, "train: the training split is empty");
  std::shared_ptr<nn::DataLoader> test_loader;
  if (test_split) {
    nn::LoaderOptions o;
    o.batch_size = std::max<int64_t>(batch_size, 32);
    o.num_workers = static_cast<int>(workers);
    test_loader = std::make_shared<nn::DataLoader>(test_split->dataset, o, nn::image_transform(info));
  }

  nn::TrainOptions train_options;
  train_options.multilabel = multilabel;
  train_options.clip = args.get_double("clip");
  train_options.schedule = schedule_from(args, train_loader->batches_per_epoch());
  nn::Trainer trainer(model, optimizer, train_loader, train_options, &generator);

  make_directories(out_dir);
  const std::string last_path = out_dir + "/last.safetensors", best_path = out_dir + "/best.safetensors";
  std::vector<nn::EpochMetrics> rows;
  double best = -INFINITY;
  int64_t best_epoch = 0;
  if (!args.get("resume").empty()) {
    const nn::Checkpoint checkpoint = nn::read_checkpoint(args.get("resume"));
    check_same_model(checkpoint.info, info, args.get("resume"));
    trainer.load_checkpoint(checkpoint, args.get("resume"));
    if (auto it = checkpoint.metadata.find("train.best_metric"); it != checkpoint.metadata.end()) {
      best = std::atof(it->second.c_str());
      best_epoch = std::atoll(checkpoint.metadata.at("train.best_epoch").c_str());
    }
    rows = nn::read_metrics_csv(out_dir + "/metrics.csv", trainer.epoch(), info.labels.size());
    std::printf("resumed from %s at epoch %lld, step %lld\n", args.get("resume").c_str(),
                static_cast<long long>(trainer.epoch() + 1), static_cast<long long>(trainer.global_step()));
  }

  std::printf("train: %s%s, %lld parameters, %lld training and %lld test images (%lldx%lld, %lld channels), %s lr %g, "
              "batch %lld, %d threads\n",
              info.model.c_str(), info.small_input ? " (small-input stem)" : "",
              static_cast<long long>(model->parameter_count()), static_cast<long long>(train_split.dataset->size()),
              static_cast<long long>(test_split ? test_split->dataset->size() : 0), static_cast<long long>(info.image_size),
              static_cast<long long>(info.image_size), static_cast<long long>(info.in_channels),
              optimizer_config.name.c_str(), optimizer_config.lr, static_cast<long long>(batch_size), num_threads());
  std::fflush(stdout);

  const int64_t checkpoint_every = args.get_int("checkpoint-every");
  auto metadata = [&] {
    return std::map<std::string, std::string>{{"train.best_metric", std::to_string(best)},
                                              {"train.best_epoch", std::to_string(best_epoch)}};
  };
  while (trainer.epoch() < epochs) {
    const int64_t epoch = trainer.epoch();
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs), train_loader->batches_per_epoch());
    nn::EpochStats stats;
    do {
      stats = trainer.train_epoch(
          [&](const nn::StepInfo& s) {
            std::ostringstream status;
            status << "loss " << number(s.mean_loss) << "  " << static_cast<int64_t>(s.images_per_second) << " img/s";
            bar.update(s.batch, status.str());
          },
          checkpoint_every > 0 ? checkpoint_every : -1);
      if (!trainer.epoch_finished()) trainer.save_checkpoint(last_path, info, metadata());
    } while (!trainer.epoch_finished());
    bar.finish();

    nn::EpochMetrics row;
    row.epoch = epoch + 1;
    row.step = trainer.global_step();
    row.lr = train_options.schedule.lr_at(trainer.global_step() - 1);
    row.train_loss = stats.loss;
    row.seconds = stats.seconds;
    row.images_per_second = static_cast<double>(stats.images) / std::max(stats.seconds, 1e-9);
    double metric = -stats.loss;
    if (test_loader) {
      const nn::Predictions predictions = nn::predict(*model, *test_loader, multilabel);
      const nn::MetricsReport report = nn::report(predictions, multilabel, info.labels, args.get_double("threshold"));
      row.test_loss = predictions.loss;
      row.accuracy = report.accuracy;
      row.micro_f1 = report.micro_f1;
      row.macro_f1 = report.macro_f1;
      row.macro_auroc = report.macro_auroc;
      for (const auto& c : report.classes) row.class_f1.push_back(c.f1);
      metric = multilabel ? report.micro_f1 : report.accuracy;
    }
    rows.push_back(row);
    write_text_atomic(out_dir + "/metrics.csv", nn::metrics_csv(rows, info.labels));
    write_text_atomic(out_dir + "/metrics.json", nn::metrics_json(rows, info.labels, info.model));
    const bool improved = metric > best;
    if (improved) {
      best = metric;
      best_epoch = epoch + 1;
    }
    trainer.save_checkpoint(last_path, info, metadata());
    if (improved) trainer.save_checkpoint(best_path, info, metadata());
    std::printf("epoch %lld/%lld  loss %.4f  test loss %s  %s %s  %.0f s  %.0f img/s%s\n",
                static_cast<long long>(epoch + 1), static_cast<long long>(epochs), stats.loss,
                number(row.test_loss).c_str(), multilabel ? "micro-F1" : "accuracy",
                number(multilabel ? row.micro_f1 : row.accuracy).c_str(), stats.seconds, row.images_per_second,
                improved ? "  (best)" : "");
    std::fflush(stdout);
  }
  std::printf("best epoch %lld (%s %s); checkpoints in %s\n", static_cast<long long>(best_epoch),
              multilabel ? "micro-F1" : "accuracy", number(best).c_str(), out_dir.c_str());
  return 0;
}

}  // namespace loupe::cli
