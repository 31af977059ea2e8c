// `loupe demo`: trains a small ResNet on Fashion-MNIST with loupe's autograd, evaluates it and keeps
// the checkpoint for the explanation demo:
//   ResNet18 layout with the small-input stem (3x3 stride 1, nn/models/resnet.hpp) at width 16
//   (16-32-64-128 channels, 0.7 M parameters), Adam lr 1e-3 with a cosine schedule, 2 epochs on
//   the first 20000 training images (about --limit-train), batch 64; prints the loss per epoch,
//   the test accuracy on all 10000 test images, and writes <out>/model.safetensors.
// `loupe demo --mlp` is the previous demo (the first issue's acceptance run): an MLP
// (784-256-128-10, ReLU) on the full Fashion-MNIST with Adam.
// The data comes from Debian's dataset-fashion-mnist package (IDX files, gzip-compressed).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

#include "cli/args.hpp"
#include "cli/demo_explain.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "cli/train_common.hpp"
#include "explain/baselines.hpp"
#include "nn/data/idx.hpp"
#include "nn/layers/basic.hpp"
#include "nn/optim/optimizer.hpp"
#include "nn/training.hpp"

namespace loupe::cli {

namespace {

const std::vector<OptionSpec> kDemoOptions = {
    {"mlp", "", "", "the previous demo instead: an MLP 784-256-128-10 trained with Adam"},
    {"data", "DIR", "/usr/share/datasets/fashion-mnist", "folder with the four Fashion-MNIST .gz files"},
    {"epochs", "N", "", "training epochs (default 2; MLP 15)"},
    {"batch-size", "N", "", "images per step (default 64; MLP 128)"},
    {"lr", "RATE", "0.001", "Adam learning rate"},
    {"width", "N", "16", "ResNet: channels of the first stage"},
    {"limit-train", "N", "20000", "ResNet: train on the first N of the 60000 training images (0 = all)"},
    {"out", "DIR", "out/demo", "ResNet: folder for the checkpoint and metrics"},
    {"seed", "N", "0", "seed for initialisation and shuffling"},
    {"json", "FILE", "", "also write the results as JSON"},
    {"baseline", "B", "black", "explanations: black (pixel 0), zeros (0 after normalisation), blur, uniform, mean"},
};

// Fashion-MNIST's pixel mean and standard deviation (of x / 255) over the training set.
constexpr double kPixelMean = 0.2860;
constexpr double kPixelStd = 0.3530;

struct Split {
  Tensor images;  // (N, 784) float32, normalised
  Tensor labels;  // (N) int64
};

Split load_split(const std::string& folder, const std::string& prefix) {
  Tensor images = nn::load_idx(folder + "/" + prefix + "-images-idx3-ubyte.gz", DType::f32);
  Tensor labels = nn::load_idx(folder + "/" + prefix + "-labels-idx1-ubyte.gz", DType::i64);
  LOUPE_CHECK(images.dim() == 3 && labels.dim() == 1 && images.size(0) == labels.size(0), "demo: '", folder,
              "' holds images ", shape_str(images.shape()), " and labels ", shape_str(labels.shape()));
  images = ops::reshape(images, {images.size(0), -1});
  images = ops::div(ops::sub(ops::div(images, 255.0), kPixelMean), kPixelStd);
  return {images, labels};
}

// Rows `order[first .. first + count)` of a split, copied into one contiguous batch.
Split gather_batch(const Split& split, const std::vector<int64_t>& order, int64_t first, int64_t count) {
  const int64_t width = split.images.size(1);
  Split batch{Tensor::empty({count, width}, DType::f32), Tensor::empty({count}, DType::i64)};
  const float* src = split.images.data<float>();
  const int64_t* labels = split.labels.data<int64_t>();
  float* dst = batch.images.data<float>();
  int64_t* dst_labels = batch.labels.data<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t row = order[static_cast<size_t>(first + i)];
    std::memcpy(dst + i * width, src + row * width, sizeof(float) * static_cast<size_t>(width));
    dst_labels[i] = labels[row];
  }
  return batch;
}

double accuracy(nn::Module& model, const Split& split) {
  NoGradGuard no_grad;
  model.eval();
  const int64_t n = split.images.size(0);
  int64_t correct = 0;
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t first = 0; first < n; first += 1000) {
    const Split batch = gather_batch(split, order, first, std::min<int64_t>(1000, n - first));
    const Tensor predicted = ops::argmax(model(batch.images), 1);
    const Tensor hits = ops::sum(ops::eq(predicted, batch.labels));
    correct += static_cast<int64_t>(hits.item());
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace

int run_mlp_demo(const Args& args) {
  const int64_t epochs = args.get("epochs").empty() ? 15 : args.get_int("epochs");
  const int64_t batch_size = args.get("batch-size").empty() ? 128 : args.get_int("batch-size");
  LOUPE_CHECK(epochs > 0 && batch_size > 0, "demo: --epochs and --batch-size must be positive");
  Generator generator(static_cast<uint64_t>(args.get_int("seed")));

  const auto start = std::chrono::steady_clock::now();
  const Split train = load_split(args.get("data"), "train");
  const Split test = load_split(args.get("data"), "t10k");
  std::cout << "Fashion-MNIST: " << train.images.size(0) << " training and " << test.images.size(0)
            << " test images, " << num_threads() << " threads\n";

  nn::Sequential model({std::make_shared<nn::Linear>(784, 256, true, &generator), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(256, 128, true, &generator), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(128, 10, true, &generator)});
  std::cout << "model: MLP 784-256-128-10, " << model.parameter_count() << " parameters, Adam lr "
            << args.get_double("lr") << ", batch " << batch_size << "\n";
  nn::AdamOptions adam;
  adam.lr = args.get_double("lr");
  nn::Adam optimizer(model.parameters(), adam);

  std::ostringstream epochs_json;
  const int64_t n = train.images.size(0);
  const int64_t steps = (n + batch_size - 1) / batch_size;
  for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
    const std::vector<int64_t> order = to_vector<int64_t>(permutation(n, &generator));
    ProgressBar bar("epoch " + std::to_string(epoch) + "/" + std::to_string(epochs), steps);
    double loss_sum = 0.0;
    for (int64_t step = 0; step < steps; ++step) {
      const int64_t first = step * batch_size;
      const Split batch = gather_batch(train, order, first, std::min(batch_size, n - first));
      optimizer.zero_grad();
      const Tensor loss = cross_entropy(model(batch.images), batch.labels);
      backward(loss);
      optimizer.step();
      loss_sum += loss.item();
      std::ostringstream status;
      status << "loss " << loss_sum / static_cast<double>(step + 1) << "  "
             << static_cast<int64_t>(static_cast<double>(first + batch.images.size(0)) / bar.elapsed_seconds())
             << " img/s";
      bar.update(step + 1, status.str());
    }
    bar.finish();
    const double epoch_loss = loss_sum / static_cast<double>(steps);
    std::printf("epoch %lld/%lld  loss %.4f  %.1f s\n", static_cast<long long>(epoch), static_cast<long long>(epochs),
                epoch_loss, bar.elapsed_seconds());
    std::fflush(stdout);
    epochs_json << (epoch > 1 ? ", " : "") << "{\"epoch\": " << epoch << ", \"loss\": " << epoch_loss << "}";
  }
  const double test_accuracy = accuracy(model, test);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("test accuracy %.4f (%lld images), total time %.1f s\n", test_accuracy,
              static_cast<long long>(test.images.size(0)), seconds);
  if (!args.get("json").empty()) {
    std::ostringstream json;
    json << "{\"model\": \"mlp-784-256-128-10\", \"test_accuracy\": " << test_accuracy << ", \"seconds\": " << seconds
         << ", \"threads\": " << num_threads() << ", \"epochs\": [" << epochs_json.str() << "]}\n";
    write_text_atomic(args.get("json"), json.str());
  }
  return 0;
}


namespace {

// Trains the demo ResNet and writes its checkpoint; prints one line per epoch.
std::string train_demo_model(const Args& args, const nn::DataSpec& spec, const std::string& out_dir) {
  const int64_t epochs = args.get("epochs").empty() ? 2 : args.get_int("epochs");
  const int64_t batch_size = args.get("batch-size").empty() ? 64 : args.get_int("batch-size");
  LOUPE_CHECK(epochs > 0 && batch_size > 0, "demo: --epochs and --batch-size must be positive");
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed"));

  nn::DataSplit train = nn::open_split(spec, "train");
  nn::ModelInfo info;
  info.model = "resnet18";
  info.small_input = true;
  info.width = args.get_int("width");
  info.num_classes = 10;
  info.in_channels = 1;
  info.image_size = 28;
  info.labels = train.label_names;
  const auto [mean, std] = nn::default_normalisation(spec);
  info.mean = {mean};
  info.std = {std};

  // The first N images (Fashion-MNIST's training file is not sorted by class).
  const int64_t limit = args.get_int("limit-train");
  std::shared_ptr<nn::Dataset> dataset = limit > 0 ? nn::first_examples(train.dataset, limit) : train.dataset;
  Generator generator(seed);
  std::shared_ptr<nn::Module> model = nn::build_model(info, &generator);
  nn::OptimizerConfig adam;
  adam.name = "adam";
  adam.lr = args.get_double("lr");
  std::shared_ptr<nn::Optimizer> optimizer = nn::make_optimizer(adam, model->parameters());
  nn::LoaderOptions loader_options;
  loader_options.batch_size = batch_size;
  loader_options.shuffle = true;
  loader_options.seed = seed;
  auto loader = std::make_shared<nn::DataLoader>(dataset, loader_options,
                                                 nn::image_transform(info));
  nn::TrainOptions options;
  options.schedule.kind = nn::ScheduleKind::cosine;
  options.schedule.base_lr = adam.lr;
  options.schedule.total = epochs * loader->batches_per_epoch();
  nn::Trainer trainer(model, optimizer, loader, options, &generator);
  std::printf("model: ResNet18 layout, small-input stem, width %lld, %lld parameters; Adam lr %g (cosine), batch %lld, "
              "%lld training images, %d threads\n",
              static_cast<long long>(info.width), static_cast<long long>(model->parameter_count()), adam.lr,
              static_cast<long long>(batch_size), static_cast<long long>(loader->dataset().size()), num_threads());
  std::fflush(stdout);
  while (trainer.epoch() < epochs) {
    ProgressBar bar("epoch " + std::to_string(trainer.epoch() + 1) + "/" + std::to_string(epochs),
                    loader->batches_per_epoch());
    const nn::EpochStats stats = trainer.train_epoch([&](const nn::StepInfo& s) {
      std::ostringstream status;
      status << "loss " << s.mean_loss << "  " << static_cast<int64_t>(s.images_per_second) << " img/s";
      bar.update(s.batch, status.str());
    });
    bar.finish();
    std::printf("epoch %lld/%lld  loss %.4f  %.1f s  %.0f img/s\n", static_cast<long long>(stats.epoch + 1),
                static_cast<long long>(epochs), stats.loss, stats.seconds,
                static_cast<double>(stats.images) / std::max(stats.seconds, 1e-9));
    std::fflush(stdout);
  }
  make_directories(out_dir);
  const std::string path = out_dir + "/model.safetensors";
  trainer.save_checkpoint(path, info);
  return path;
}

// Test accuracy of a checkpoint on the whole Fashion-MNIST test split.
double evaluate_demo_model(const std::string& checkpoint, const nn::DataSpec& spec) {
  nn::ModelInfo info;
  std::shared_ptr<nn::Module> model = nn::load_model(checkpoint, &info);
  nn::LoaderOptions o;
  o.batch_size = 500;
  nn::DataLoader loader(nn::open_split(spec, "test").dataset, o, nn::image_transform(info));
  const nn::Predictions predictions = nn::predict(*model, loader, false);
  return nn::report(predictions, false, info.labels).accuracy;
}

// The explanation step: every attribution method on the first six test images, each explained
// for its true class, as heatmaps, .npy files and report.html (cli/demo_explain.hpp).
void explain_test_images(const std::string& checkpoint, const nn::DataSpec& spec, const std::string& out_dir,
                         const std::string& baseline) {
  nn::ModelInfo info = nn::read_checkpoint(checkpoint).info;
  nn::LoaderOptions o;
  o.batch_size = 6;
  nn::DataLoader loader(nn::open_split(spec, "test").dataset, o, nn::image_transform(info));
  const std::optional<nn::Batch> batch = loader.next();
  if (!batch) return;
  explain_demo(checkpoint, batch->images, to_vector<int64_t>(batch->labels), out_dir, baseline);
}

}  // namespace

int run_demo(int argc, char** argv) {
  const Args args(kDemoOptions, argc, argv, 2);
  if (args.help()) {
    std::cout << usage("demo",
                       "Train a small ResNet on Fashion-MNIST, report its test accuracy and keep the checkpoint\n"
                       "(--mlp: the MLP demo of the first issue).",
                       kDemoOptions);
    return 0;
  }
  if (args.flag("mlp")) return run_mlp_demo(args);
  const auto start = std::chrono::steady_clock::now();
  nn::DataSpec spec;
  spec.source = "fashion-mnist";
  spec.fashion_mnist_dir = args.get("data");
  const std::string out_dir = args.get("out");
  const std::string baseline = args.get("baseline");
  explain::parse_baseline(baseline);  // a bad name fails before training
  const std::string checkpoint = train_demo_model(args, spec, out_dir);
  const double test_accuracy = evaluate_demo_model(checkpoint, spec);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("test accuracy %.4f (10000 images), total time %.1f s\n", test_accuracy, seconds);
  std::printf("checkpoint: %s\n", checkpoint.c_str());
  std::fflush(stdout);
  explain_test_images(checkpoint, spec, out_dir + "/explain", baseline);
  if (!args.get("json").empty()) {
    std::ostringstream json;
    json << "{\"model\": \"resnet18-small-input-w" << args.get_int("width") << "\", \"test_accuracy\": " << test_accuracy
         << ", \"seconds\": " << seconds << ", \"threads\": " << num_threads() << ", \"checkpoint\": \"" << checkpoint
         << "\"}\n";
    write_text_atomic(args.get("json"), json.str());
  }
  return 0;
}

}  // namespace loupe::cli
