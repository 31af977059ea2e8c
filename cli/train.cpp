// `loupe train`: trains a model of the zoo on Fashion-MNIST, a folder of class folders or a CSV of
// image files, evaluates it on the test split after every epoch, and writes into --out:
//   metrics.csv, metrics.json   one row per epoch (rewritten atomically after each epoch)
//   last.safetensors            the latest checkpoint (model + optimiser + schedule + data order)
//   best.safetensors            the checkpoint of the best test accuracy (single-label) or
//                               micro-F1 (multilabel) so far
// --resume CKPT continues a run exactly where the checkpoint left it (nn/training.hpp). Every
// checkpoint stores the run's options as metadata "cli.train.<option>" (all but --out, --resume and
// --preset), so `loupe train --resume RUN/last.safetensors` needs nothing else: the options come
// from the checkpoint, --out defaults to the checkpoint's folder, and only the options in
// kMayChangeOnResume may be given with another value (--epochs to train longer; where the data is;
// workers and device); any other differing option is refused, naming it.
// SIGINT / SIGTERM stop the run between two steps with a resumable checkpoint (train_interrupt.hpp).
// The chest X-ray study in one line: loupe train --preset cxr --data <cxr>/labels.csv --out DIR
// Data-parallel: `mpirun -np N loupe train ...` trains one model on N processes (docs/distributed.md):
// each rank loads its shard of every batch of --batch-size (the global batch, the same batches as
// one process), gradients are summed by bucketed all-reduce during backward, --sync-bn makes batch
// norm use the global batch's statistics; rank 0 alone evaluates, prints and writes the files, and
// any rank count resumes any checkpoint. An error on one rank ends all of them (MPI_Abort).
// Tests: tests/nn/train/test_commands.cpp, tests/cli/test_resume_options.cpp, tests/cli/test_interrupt.cpp
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "cli/train_common.hpp"
#include "cli/train_interrupt.hpp"
#include "distributed/communicator.hpp"
#include "nn/layers/norm.hpp"
#include "nn/training.hpp"
#include "tensor/cuda/backend.hpp"
#include "tensor/io/safetensors.hpp"
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
    {"limit-test", "N", "0", "evaluate on only the first N test examples (0 = all)"},
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
    {"sync-bn", "", "", "under mpirun: batch norm statistics of the global batch (default: each rank's shard)"},
};

const char* kSummary =
    "Train a model of the zoo and keep its metrics and checkpoints.\n\n"
    "--preset cxr = --multilabel --label-columns covid19,pneumonia,no_finding --split-column split\n"
    "  --optimizer adam --lr 0.001 --weight-decay 0.0001 --batch-size 8 --in-channels 3 --image-size 224\n"
    "  --threshold 0.5 (the study's settings; grey image, aspect-preserving resize with zero padding,\n"
    "  intensity normalisation, channel repeated to 3, BCE with logits)\n"
    "Example: loupe train --preset cxr --data ../shared/data/cxr/labels.csv --epochs 20 --out runs/cxr\n"
    "Data-parallel: mpirun -np 2 loupe train ... --sync-bn (each rank takes its shard of every batch;\n"
    "  --batch-size is the global batch; one thread pool per rank of cores / ranks threads)";

constexpr const char* kOptionPrefix = "cli.train.";
// Options a resumed run may give with a new value: how long to train, where the data is, how it
// is loaded and on which device (results do not depend on workers or device placement of data).
const std::set<std::string> kMayChangeOnResume = {"epochs", "workers", "device", "checkpoint-every",
                                                  "fashion-mnist-dir", "image-dir", "on-bad-image", "sync-bn",
                                                  "limit-test"};
// Options that say where this invocation reads and writes, never stored in a checkpoint.
const std::set<std::string> kNotStored = {"out", "resume", "preset"};

// Paths are stored absolute, so that a run can be resumed from another working folder.
std::string stored_value(const std::string& name, const std::string& value) {
  const bool path = (name == "data" && value != "fashion-mnist") || name == "fashion-mnist-dir" || name == "image-dir";
  if (!path || value.empty()) return value;
  return std::filesystem::absolute(value).lexically_normal().string();
}

// Equal as text, or as numbers written differently ("1e-3" and "0.001").
bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char* end_a = nullptr;
  char* end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  return !a.empty() && !b.empty() && *end_a == '\0' && *end_b == '\0' && x == y;
}

std::string option_text(const OptionSpec& spec, const std::string& value) {
  if (spec.value.empty()) return std::string("--") + spec.name + (value == "1" ? " (set)" : " (not set)");
  return "--" + spec.name + " '" + value + "'";
}

// The options of a run as checkpoint metadata.
std::map<std::string, std::string> stored_options(const Args& args) {
  std::map<std::string, std::string> out;
  for (const OptionSpec& spec : kTrainOptions) {
    if (!kNotStored.count(spec.name)) out[kOptionPrefix + spec.name] = stored_value(spec.name, args.get(spec.name));
  }
  return out;
}

// Takes the run's options from a checkpoint that stores them (false when it does not: a checkpoint
// of an older loupe, whose options must then be given again). A given option that differs from
// the stored one is refused unless kMayChangeOnResume lists it.
bool take_options_from_checkpoint(Args& args, const std::map<std::string, std::string>& metadata, const std::string& path) {
  if (!metadata.count(std::string(kOptionPrefix) + "model")) return false;
  std::string allowed;
  for (const std::string& name : kMayChangeOnResume) allowed += (allowed.empty() ? "--" : ", --") + name;
  for (const OptionSpec& spec : kTrainOptions) {
    auto it = metadata.find(kOptionPrefix + spec.name);
    if (kNotStored.count(spec.name) || it == metadata.end()) continue;
    const std::string& saved = it->second;
    if (!args.given(spec.name)) {
      args.set(spec.name, saved);
    } else if (!kMayChangeOnResume.count(spec.name) &&
               !same_value(stored_value(spec.name, args.get(spec.name)), saved)) {
      throw Error("--resume: '" + path + "' was trained with " + option_text(spec, saved) + " but this command gives " +
                  option_text(spec, args.get(spec.name)) + ". A resumed run takes its options from the checkpoint; " +
                  "only " + allowed + " may change (leave --" + spec.name + " out, or start a new run in another --out)");
    }
  }
  return true;
}

std::string number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream out;
  out.precision(6);
  out << v;
  return out.str();
}

}  // namespace

namespace {

Args parse_train_args(int argc, char** argv, bool expand_preset) {
  std::vector<std::string> arguments(argv, argv + argc);
  if (expand_preset) apply_preset(arguments, 2);
  std::vector<char*> pointers;
  for (std::string& a : arguments) pointers.push_back(a.data());
  return Args(kTrainOptions, static_cast<int>(pointers.size()), pointers.data(), 2);
}

// Nonsense numbers are refused before any data is read, naming the option.
void check_numeric_options(const Args& args) {
  auto in_range = [&](const char* name, int64_t lo, int64_t hi) {
    const int64_t v = args.get_int(name);
    LOUPE_CHECK(v >= lo && v <= hi, "train: --", name, " must be in [", lo, ", ", hi, "], got ", v);
  };
  in_range("epochs", 1, 1'000'000);
  in_range("batch-size", 1, 65536);
  in_range("workers", 0, 64);
  in_range("limit-train", 0, INT64_MAX);
  in_range("limit-test", 0, INT64_MAX);
  in_range("step-size", 1, 1'000'000);
  in_range("warmup", 0, INT64_MAX);
  in_range("checkpoint-every", 0, INT64_MAX);
  in_range("width", 1, 512);
  in_range("seed", 0, INT64_MAX);
  auto positive = [&](const char* name, bool zero_ok) {
    const double v = args.get_double(name);  // finite: Args refuses NaN and infinities
    LOUPE_CHECK(v > 0 || (zero_ok && v == 0), "train: --", name, " must be ", zero_ok ? ">= 0" : "> 0", ", got ", v);
  };
  positive("lr", false);
  positive("gamma", false);
  positive("weight-decay", true);
  positive("clip", true);
  const double momentum = args.get_double("momentum"), threshold = args.get_double("threshold");
  LOUPE_CHECK(momentum >= 0 && momentum < 1, "train: --momentum must be in [0, 1), got ", momentum);
  LOUPE_CHECK(threshold > 0 && threshold < 1, "train: --threshold must be in (0, 1), got ", threshold);
}

}  // namespace

namespace {

// The device of this rank: under mpirun, --device cuda means one GPU per process (its local rank).
Device rank_device(Device device) {
  if (!device.is_cuda() || distributed::launched_size() == 1 || cuda::device_count() == 0) return device;
  return Device::cuda(distributed::local_rank() % cuda::device_count());
}

int train_command(int argc, char** argv);

}  // namespace

int run_train(int argc, char** argv) {
  if (!distributed::launched_by_mpi()) return train_command(argc, argv);
  // One rank's error would leave the others waiting in a collective: end them all.
  try {
    return train_command(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "loupe train: rank %d of %d: %s\n", distributed::world()->rank(), distributed::world()->size(),
                 error.what());
    std::fflush(stderr);
    distributed::world()->abort(1);
  }
  return 1;  // not reached: abort() ends the process
}

namespace {

int train_command(int argc, char** argv) {
  Args args = parse_train_args(argc, argv, /*expand_preset=*/true);
  if (args.help()) {
    std::cout << usage("train", kSummary, kTrainOptions);
    return 0;
  }
  LOUPE_CHECK(args.get("preset").empty() || args.get("preset") == "cxr", "train: unknown --preset '", args.get("preset"),
              "' (known: cxr)");
  const std::string resume_path = args.get("resume");
  if (!resume_path.empty()) {
    // The checkpoint's stored options replace --preset's (its values would count as given).
    Args plain = parse_train_args(argc, argv, /*expand_preset=*/false);
    if (take_options_from_checkpoint(plain, load_safetensors_metadata(resume_path), resume_path)) args = plain;
  }
  check_numeric_options(args);
  const Device device = rank_device(parse_device_option(args.get("device")));
  const std::shared_ptr<distributed::Communicator> comm = distributed::world(device);
  const int rank = comm->rank(), ranks = comm->size();
  const bool root = rank == 0;
  if (ranks > 1) distributed::share_cores_between_ranks();
  std::string out_dir = args.get("out");
  if (out_dir.empty() && !resume_path.empty()) out_dir = std::filesystem::path(resume_path).parent_path().string();
  if (out_dir.empty() && !resume_path.empty()) out_dir = ".";
  LOUPE_CHECK(!out_dir.empty(), "train: --out DIR is required");
  const int64_t epochs = args.get_int("epochs");
  const int64_t batch_size = args.get_int("batch-size");
  const int64_t workers = args.get_int("workers");
  const bool multilabel = args.flag("multilabel");
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed"));
  LOUPE_CHECK(batch_size >= ranks, "train: --batch-size ", batch_size, " is smaller than the ", ranks,
              " ranks that share each batch");

  // Data.
  nn::DataSpec spec = data_spec(args);
  nn::DataSplit train_split = nn::open_split(spec, "train");
  if (args.get_int("limit-train") > 0) {
    train_split.dataset = nn::first_examples(train_split.dataset, args.get_int("limit-train"));
  }
  std::optional<nn::DataSplit> test_split;
  try {
    test_split = nn::open_split(spec, "test");
    if (args.get_int("limit-test") > 0) {
      test_split->dataset = nn::first_examples(test_split->dataset, args.get_int("limit-test"));
    }
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
  loader_options.shard = rank;
  loader_options.shards = ranks;
  // A last batch smaller than the rank count would leave a rank without images: it is left out.
  const int64_t last_batch = train_split.dataset->size() % batch_size;
  loader_options.drop_last = last_batch != 0 && last_batch < ranks;
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
  train_options.communicator = comm;
  if (ranks > 1 && args.flag("sync-bn")) nn::set_sync_batch_norm(*model, comm);
  nn::Trainer trainer(model, optimizer, train_loader, train_options, &generator);

  if (root) make_directories(out_dir);
  const std::string last_path = out_dir + "/last.safetensors", best_path = out_dir + "/best.safetensors";
  std::vector<nn::EpochMetrics> rows;
  double best = -INFINITY;
  int64_t best_epoch = 0;
  if (!resume_path.empty()) {
    const nn::Checkpoint checkpoint = nn::read_checkpoint(resume_path);
    check_same_model(checkpoint.info, info, resume_path);
    trainer.load_checkpoint(checkpoint, resume_path);
    if (auto it = checkpoint.metadata.find("train.best_metric"); it != checkpoint.metadata.end()) {
      best = std::atof(it->second.c_str());
      best_epoch = std::atoll(checkpoint.metadata.at("train.best_epoch").c_str());
    }
    rows = nn::read_metrics_csv(out_dir + "/metrics.csv", trainer.epoch(), info.labels.size());
    if (!root) {
    } else if (trainer.epoch() >= epochs) {
      std::printf("%s: the run already has %lld epochs (step %lld); give --epochs N (more than %lld) to train longer\n",
                  resume_path.c_str(), static_cast<long long>(trainer.epoch()),
                  static_cast<long long>(trainer.global_step()), static_cast<long long>(trainer.epoch()));
    } else {
      std::printf("resumed from %s at epoch %lld, step %lld\n", resume_path.c_str(),
                  static_cast<long long>(trainer.epoch() + 1), static_cast<long long>(trainer.global_step()));
    }
  }

  // Installed before the run's first line is printed: from then on a stop request is handled.
  const StopSignals stop_signals;
  if (root) std::printf("train: %s%s, %lld parameters, %lld training and %lld test images (%lldx%lld, %lld channels), %s lr %g, "
              "batch %lld, %d threads\n",
              info.model.c_str(), info.small_input ? " (small-input stem)" : "",
              static_cast<long long>(model->parameter_count()), static_cast<long long>(train_split.dataset->size()),
              static_cast<long long>(test_split ? test_split->dataset->size() : 0), static_cast<long long>(info.image_size),
              static_cast<long long>(info.image_size), static_cast<long long>(info.in_channels),
              optimizer_config.name.c_str(), optimizer_config.lr, static_cast<long long>(batch_size), num_threads());
  if (root && ranks > 1) {
    std::printf("train: data-parallel over %d ranks (%s), %lld images per rank per step, batch norm %s, %lld gradient "
                "buckets\n",
                ranks, comm->backend().c_str(), static_cast<long long>(batch_size / ranks),
                args.flag("sync-bn") ? "synchronised" : "per rank", static_cast<long long>(trainer.reducer()->bucket_count()));
  }
  std::fflush(stdout);
  // A stop request seen by any rank stops every rank at the same step (one tiny all-reduce).
  auto agreed_stop = [&](int signal) {
    if (ranks == 1) return signal;
    Tensor flag = from_values(std::vector<int64_t>{signal}, {1});
    comm->all_reduce_sum(flag);
    return flag.data<int64_t>()[0] == 0 ? 0 : (signal != 0 ? signal : SIGTERM);
  };

  const int64_t checkpoint_every = args.get_int("checkpoint-every");
  auto metadata = [&] {
    std::map<std::string, std::string> m = stored_options(args);
    m["train.best_metric"] = std::to_string(best);
    m["train.best_epoch"] = std::to_string(best_epoch);
    return m;
  };
  // A stop request: the position is saved (the latest checkpoint is kept when it already is that
  // position) and the command exits with 128 + the signal number.
  auto stop = [&](int signal, bool save) {
    if (!root) return 128 + signal;
    if (save) trainer.save_checkpoint(last_path, info, metadata());
    std::fprintf(stderr,
                 "%sloupe train: stopped by %s after step %lld; the run is saved in %s (continue with: loupe train "
                 "--resume %s)\n",
                 ::isatty(2) ? "\n" : "", signal_name(signal).c_str(), static_cast<long long>(trainer.global_step()), last_path.c_str(),
                 last_path.c_str());
    return 128 + signal;
  };
  while (trainer.epoch() < epochs) {
    if (const int signal = agreed_stop(stop_signals.stop_signal(trainer.global_step()))) return stop(signal, false);
    const int64_t epoch = trainer.epoch();
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs), train_loader->batches_per_epoch());
    nn::EpochStats stats;
    // One step per call, so that a stop request is seen after every step; images/s is this
    // process's rate over the epoch.
    const auto piece_start = std::chrono::steady_clock::now();
    int64_t piece_images = 0, since_checkpoint = 0;
    do {
      stats = trainer.train_epoch(
          [&](const nn::StepInfo& s) {
            piece_images += batch_size;  // the last batch may be smaller: a display figure only
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - piece_start).count();
            std::ostringstream status;
            status << "loss " << number(s.mean_loss) << "  "
                   << static_cast<int64_t>(static_cast<double>(piece_images) / std::max(seconds, 1e-9)) << " img/s";
            if (root) bar.update(s.batch, status.str());
          },
          1);
      if (trainer.epoch_finished()) break;
      if (const int signal = agreed_stop(stop_signals.stop_signal(trainer.global_step()))) return stop(signal, true);
      if (checkpoint_every > 0 && ++since_checkpoint == checkpoint_every) {
        if (root) trainer.save_checkpoint(last_path, info, metadata());
        since_checkpoint = 0;
      }
    } while (true);
    if (root) bar.finish();
    // Rank 0 evaluates and writes the epoch's files; the others go on to the next epoch's first
    // step and wait for it there.
    if (!root) continue;

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
    const bool improved = metric > best;
    if (improved) {
      best = metric;
      best_epoch = epoch + 1;
    }
    // The checkpoint first: when the disk is full, the run's files all stay at the previous epoch
    // (a resumed run reads metrics.csv only up to the checkpoint's epoch).
    trainer.save_checkpoint(last_path, info, metadata());
    if (improved) trainer.save_checkpoint(best_path, info, metadata());
    write_text_atomic(out_dir + "/metrics.csv", nn::metrics_csv(rows, info.labels));
    write_text_atomic(out_dir + "/metrics.json", nn::metrics_json(rows, info.labels, info.model));
    std::printf("epoch %lld/%lld  loss %.4f  test loss %s  %s %s  %.0f s  %.0f img/s%s\n",
                static_cast<long long>(epoch + 1), static_cast<long long>(epochs), stats.loss,
                number(row.test_loss).c_str(), multilabel ? "micro-F1" : "accuracy",
                number(multilabel ? row.micro_f1 : row.accuracy).c_str(), stats.seconds, row.images_per_second,
                improved ? "  (best)" : "");
    std::fflush(stdout);
  }
  if (root) std::printf("best epoch %lld (%s %s); checkpoints in %s\n", static_cast<long long>(best_epoch),
              multilabel ? "micro-F1" : "accuracy", number(best).c_str(), out_dir.c_str());
  return 0;
}

}  // namespace

}  // namespace loupe::cli
