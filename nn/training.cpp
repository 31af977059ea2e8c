// Training and evaluation loops. See training.hpp.
#include "nn/training.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <sstream>

#include "autograd/autograd.hpp"
#include "nn/data/idx.hpp"
#include "nn/models/inception_v3.hpp"
#include "tensor/ops.hpp"

namespace loupe::nn {

namespace {

const char* kOptimizerPrefix = "optimizer.";

std::string optimizer_kind(const Optimizer& optimizer) {
  if (dynamic_cast<const SGD*>(&optimizer)) return "sgd";
  if (dynamic_cast<const Adam*>(&optimizer)) return "adam";
  return "unknown";
}

// Doubles in metadata: 17 significant digits read back as the same bits.
std::string exact(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

std::string generator_text(const Generator& generator) {
  return std::to_string(generator.seed()) + "," + std::to_string(generator.offset());
}

const std::string& entry(const std::map<std::string, std::string>& metadata, const std::string& key,
                         const std::string& path) {
  auto it = metadata.find(key);
  LOUPE_CHECK(it != metadata.end(), "resume: '", path, "' has no '", key, "' entry (a checkpoint without training state?)");
  return it->second;
}

int64_t entry_int(const std::map<std::string, std::string>& metadata, const std::string& key, const std::string& path) {
  const std::string& text = entry(metadata, key, path);
  try {
    size_t used = 0;
    const int64_t value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (...) {
  }
  throw Error("resume: '" + path + "': '" + key + "' is not an integer: '" + text + "'");
}

double entry_double(const std::map<std::string, std::string>& metadata, const std::string& key, const std::string& path) {
  const std::string& text = entry(metadata, key, path);
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (...) {
  }
  throw Error("resume: '" + path + "': '" + key + "' is not a number: '" + text + "'");
}

void restore_generator(Generator& generator, const std::string& text, const std::string& key, const std::string& path) {
  const size_t comma = text.find(',');
  try {
    LOUPE_CHECK(comma != std::string::npos, "");
    generator.set_state(std::stoull(text.substr(0, comma)), std::stoull(text.substr(comma + 1)));
  } catch (...) {
    throw Error("resume: '" + path + "': '" + key + "' is not 'seed,offset': '" + text + "'");
  }
}

// Single-label targets as (N,) int64: one-hot (N, K) rows (a CSV's label columns) become classes.
Tensor class_targets(const Tensor& labels) {
  if (labels.dim() == 2) return ops::argmax(labels, 1);
  return labels.dtype() == DType::i64 ? labels : ops::to_dtype(labels, DType::i64);
}

}  // namespace

Tensor classification_loss(const Tensor& logits, const Tensor& labels, bool multilabel) {
  if (multilabel) {
    LOUPE_CHECK(labels.dim() == 2 && labels.shape() == logits.shape(), "classification_loss: multilabel logits ",
                shape_str(logits.shape()), " need (N, K) multi-hot labels of the same shape, got ", shape_str(labels.shape()));
    const Tensor target = labels.dtype() == logits.dtype() ? labels : ops::to_dtype(labels, logits.dtype());
    return binary_cross_entropy_with_logits(logits, target);
  }
  return cross_entropy(logits, class_targets(labels));
}

Trainer::Trainer(std::shared_ptr<Module> model, std::shared_ptr<Optimizer> optimizer, std::shared_ptr<DataLoader> loader,
                 TrainOptions options, Generator* generator)
    : model_(std::move(model)), optimizer_(std::move(optimizer)), loader_(std::move(loader)), options_(options),
      generator_(generator) {
  LOUPE_CHECK(model_ && optimizer_ && loader_, "Trainer: model, optimizer and loader must be given");
  LOUPE_CHECK(options_.clip >= 0, "Trainer: clip must be >= 0, got ", options_.clip);
  if (options_.communicator && options_.communicator->size() > 1) {
    // Every rank starts from rank 0's model (they are seeded alike; this makes it certain).
    std::vector<Tensor> state;
    for (const auto& [name, t] : model_->named_parameters()) state.push_back(t);
    for (const auto& [name, t] : model_->named_buffers()) state.push_back(t);
    distributed::broadcast_tensors(*options_.communicator, state);
    reducer_ = std::make_unique<distributed::GradientReducer>(optimizer_->parameters(), options_.communicator,
                                                              options_.bucket_bytes);
  }
}

double Trainer::train_step(const Batch& cpu_batch) {
  model_->train();
  // The loader makes batches on the CPU; they follow the model to its device.
  const Device device = model_->device();
  Batch batch = cpu_batch;
  batch.images = ops::to_device(cpu_batch.images, device);
  batch.labels = ops::to_device(cpu_batch.labels, device);
  const double lr = options_.schedule.lr_at(global_step_);
  optimizer_->set_learning_rate(lr);
  optimizer_->zero_grad();
  Tensor loss;
  if (auto* inception = dynamic_cast<InceptionV3*>(model_.get())) {
    auto [logits, aux] = inception->forward_with_aux(batch.images);
    loss = classification_loss(logits, batch.labels, options_.multilabel);
    if (aux.defined()) {
      loss = add(loss, mul(classification_loss(aux, batch.labels, options_.multilabel), options_.aux_loss_weight));
    }
  } else {
    loss = classification_loss((*model_)(batch.images), batch.labels, options_.multilabel);
  }
  double loss_value = ops::to_device(loss, Device::cpu()).item();
  const int64_t images = batch.images.size(0);
  if (reducer_) {
    // The global batch: its size and the sum of its losses (each rank's loss is a mean over its shard).
    Tensor totals = from_values(std::vector<double>{static_cast<double>(images), loss_value * static_cast<double>(images)},
                                {2}, DType::f64);
    options_.communicator->all_reduce_sum(totals);
    const double global_images = totals.data<double>()[0];
    LOUPE_CHECK(global_images > 0, "train: the global batch is empty");
    loss_value = totals.data<double>()[1] / global_images;
    last_step_images_ = static_cast<int64_t>(global_images);
    // d(global mean)/d(this rank's mean) = n_rank / n: the reducer's sum is then the global gradient.
    reducer_->backward(mul(loss, static_cast<double>(images) / global_images));
  } else {
    last_step_images_ = images;
    backward(loss);
  }
  if (options_.clip > 0) clip_grad_norm(optimizer_->parameters(), options_.clip);
  optimizer_->step();
  ++global_step_;
  return loss_value;
}

EpochStats Trainer::train_epoch(const std::function<void(const StepInfo&)>& on_step, int64_t max_steps) {
  if (epoch_finished_) {  // the previous call ended an epoch: start the next one's totals
    loss_sum_ = 0.0;
    images_ = 0;
    batches_ = 0;
    seconds_ = 0.0;
    epoch_finished_ = false;
  }
  const auto start = std::chrono::steady_clock::now();
  const int64_t epoch = loader_->state().epoch;
  int64_t taken = 0;
  int64_t images_here = 0;
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  while (max_steps < 0 || taken < max_steps) {
    std::optional<Batch> batch = loader_->next();
    if (!batch) {
      epoch_finished_ = true;
      break;
    }
    const double lr = options_.schedule.lr_at(global_step_);
    const double loss = train_step(*batch);
    const int64_t n = last_step_images_;
    loss_sum_ += loss * static_cast<double>(n);
    images_ += n;
    images_here += n;
    ++batches_;
    ++taken;
    if (on_step) {
      StepInfo info;
      info.epoch = epoch;
      info.batch = loader_->state().batch;
      info.batches_per_epoch = loader_->batches_per_epoch();
      info.loss = loss;
      info.mean_loss = loss_sum_ / static_cast<double>(images_);
      info.lr = lr;
      info.images_per_second = static_cast<double>(images_here) / std::max(seconds(), 1e-9);
      on_step(info);
    }
  }
  EpochStats stats;
  stats.epoch = epoch;
  stats.loss = images_ > 0 ? loss_sum_ / static_cast<double>(images_) : 0.0;
  stats.images = images_;
  stats.batches = batches_;
  seconds_ += seconds();
  stats.seconds = seconds_;
  return stats;
}

std::map<std::string, Tensor> Trainer::state_tensors() const {
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, tensor] : optimizer_->state_dict()) tensors[kOptimizerPrefix + name] = tensor;
  return tensors;
}

std::map<std::string, std::string> Trainer::state_metadata() const {
  const LoaderState position = loader_->state();
  return {{"train.optimizer", optimizer_kind(*optimizer_)},
          {"train.global_step", std::to_string(global_step_)},
          {"train.loader_epoch", std::to_string(position.epoch)},
          {"train.loader_batch", std::to_string(position.batch)},
          {"train.generator", generator_text(generator_ ? *generator_ : default_generator())},
          {"train.default_generator", generator_text(default_generator())},
          {"train.epoch_loss_sum", exact(epoch_finished_ ? 0.0 : loss_sum_)},
          {"train.epoch_images", std::to_string(epoch_finished_ ? 0 : images_)},
          {"train.epoch_batches", std::to_string(epoch_finished_ ? 0 : batches_)},
          {"train.epoch_seconds", exact(epoch_finished_ ? 0.0 : seconds_)}};
}

void Trainer::save_checkpoint(const std::string& path, const ModelInfo& info,
                              const std::map<std::string, std::string>& extra_metadata) const {
  std::map<std::string, std::string> metadata = extra_metadata;
  for (const auto& [key, value] : state_metadata()) metadata[key] = value;
  nn::save_checkpoint(path, *model_, info, state_tensors(), metadata);
}

void Trainer::load_checkpoint(const Checkpoint& checkpoint, const std::string& path) {
  const auto& metadata = checkpoint.metadata;
  const std::string kind = entry(metadata, "train.optimizer", path);
  LOUPE_CHECK(kind == optimizer_kind(*optimizer_), "resume: '", path, "' holds the state of a ", kind,
              " optimiser, but this run uses ", optimizer_kind(*optimizer_));
  StateDict model_state;
  std::map<std::string, Tensor> optimizer_state;
  const std::string model_prefix = "model.";
  const std::string optimizer_prefix = kOptimizerPrefix;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    if (name.rfind(model_prefix, 0) == 0) model_state[name.substr(model_prefix.size())] = tensor;
    if (name.rfind(optimizer_prefix, 0) == 0) optimizer_state[name.substr(optimizer_prefix.size())] = tensor;
  }
  const int64_t global_step = entry_int(metadata, "train.global_step", path);
  const LoaderState position{entry_int(metadata, "train.loader_epoch", path), entry_int(metadata, "train.loader_batch", path)};
  LOUPE_CHECK(global_step >= 0 && position.epoch >= 0 && position.batch >= 0, "resume: '", path,
              "' holds a negative step or loader position");
  const double loss_sum = entry_double(metadata, "train.epoch_loss_sum", path);
  const int64_t images = entry_int(metadata, "train.epoch_images", path);
  const int64_t batches = entry_int(metadata, "train.epoch_batches", path);
  // Timing only: absent in the first checkpoints written, so not required.
  const double seconds = metadata.count("train.epoch_seconds") ? entry_double(metadata, "train.epoch_seconds", path) : 0.0;
  Generator generator, default_state;
  restore_generator(generator, entry(metadata, "train.generator", path), "train.generator", path);
  restore_generator(default_state, entry(metadata, "train.default_generator", path), "train.default_generator", path);
  try {
    model_->load_state_dict(model_state, /*strict=*/true);
    optimizer_->load_state_dict(optimizer_state);
  } catch (const Error& error) {
    throw Error("resume: '" + path + "': " + error.what());
  }
  // Everything was read and checked: now change the run's state.
  global_step_ = global_step;
  loader_->set_state(position);
  loss_sum_ = loss_sum;
  images_ = images;
  batches_ = batches;
  seconds_ = seconds;
  epoch_finished_ = false;
  default_generator().set_state(default_state.seed(), default_state.offset());
  if (generator_) generator_->set_state(generator.seed(), generator.offset());
}

Predictions predict(Module& model, DataLoader& loader, bool multilabel,
                    const std::function<void(int64_t done, int64_t total)>& on_batch) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<Tensor> probabilities, labels;
  Predictions out;
  double loss_sum = 0.0;
  int64_t count = 0;
  const int64_t total = loader.batches_per_epoch();
  loader.start_epoch(0);
  int64_t done = 0;
  const Device device = model.device();
  while (auto batch = loader.next()) {
    const Tensor logits = model(ops::to_device(batch->images, device));  // (N, K)
    const int64_t n = logits.size(0);
    const Tensor loss = classification_loss(logits, ops::to_device(batch->labels, device), multilabel);
    loss_sum += ops::to_device(loss, Device::cpu()).item() * static_cast<double>(n);
    count += n;
    Tensor p = ops::to_device(multilabel ? ops::sigmoid(logits) : ops::softmax(logits, 1), Device::cpu());
    probabilities.push_back(p.dtype() == DType::f32 ? p : ops::to_dtype(p, DType::f32));
    labels.push_back(batch->labels);
    out.indices.insert(out.indices.end(), batch->indices.begin(), batch->indices.end());
    if (on_batch) on_batch(++done, total);
  }
  model.train(was_training);
  LOUPE_CHECK(count > 0, "predict: the data set gave no examples");
  out.probabilities = ops::cat(probabilities, 0);
  out.labels = ops::cat(labels, 0);
  out.loss = loss_sum / static_cast<double>(count);
  return out;
}

MetricsReport report(const Predictions& predictions, bool multilabel, const std::vector<std::string>& label_names,
                     double threshold) {
  if (multilabel) return evaluate_multilabel(predictions.probabilities, predictions.labels, threshold, label_names);
  return evaluate_single_label(predictions.probabilities, class_targets(predictions.labels), label_names);
}

std::shared_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, std::vector<Tensor> parameters) {
  LOUPE_CHECK(config.lr > 0, "make_optimizer: the learning rate must be positive, got ", config.lr);
  LOUPE_CHECK(config.weight_decay >= 0, "make_optimizer: weight decay must be >= 0, got ", config.weight_decay);
  if (config.name == "sgd") {
    SgdOptions o;
    o.lr = config.lr;
    o.momentum = config.momentum;
    o.weight_decay = config.weight_decay;
    o.nesterov = config.nesterov;
    return std::make_shared<SGD>(std::move(parameters), o);
  }
  if (config.name == "adam" || config.name == "adamw") {
    AdamOptions o;
    o.lr = config.lr;
    o.weight_decay = config.weight_decay;
    o.decoupled_weight_decay = config.name == "adamw";
    return std::make_shared<Adam>(std::move(parameters), o);
  }
  LOUPE_CHECK(false, "make_optimizer: unknown optimizer '", config.name, "' (known: sgd, adam, adamw)");
  return nullptr;
}

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string folder_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool is_directory(const std::string& path) { return std::filesystem::is_directory(path); }

std::shared_ptr<Dataset> fashion_mnist(const std::string& folder, const std::string& split) {
  LOUPE_CHECK(split == "train" || split == "test", "data: Fashion-MNIST has the splits train and test, not '", split, "'");
  const std::string prefix = folder + "/" + (split == "train" ? "train" : "t10k");
  Tensor images = load_idx(prefix + "-images-idx3-ubyte.gz", DType::f32);  // (N, 28, 28) in 0..255
  Tensor labels = load_idx(prefix + "-labels-idx1-ubyte.gz", DType::i64);  // (N)
  LOUPE_CHECK(images.dim() == 3 && labels.dim() == 1 && images.size(0) == labels.size(0), "data: '", folder,
              "' holds images ", shape_str(images.shape()), " and labels ", shape_str(labels.shape()));
  images = ops::contiguous(ops::div(ops::unsqueeze(images, 1), 255.0));  // (N, 1, 28, 28) in [0, 1]
  return std::make_shared<TensorDataset>(images, labels);
}

class PrefixDataset : public Dataset {
 public:
  PrefixDataset(std::shared_ptr<Dataset> base, int64_t n) : base_(std::move(base)), n_(std::min(n, base_->size())) {}
  int64_t size() const override { return n_; }
  Example get(int64_t index) const override {
    check_index(index, "first_examples");
    return base_->get(index);
  }
  std::string describe(int64_t index) const override { return base_->describe(index); }
  OnBadFile on_bad_file() const override { return base_->on_bad_file(); }
  const std::vector<SkippedFile>& skipped() const override { return base_->skipped(); }

 private:
  std::shared_ptr<Dataset> base_;
  int64_t n_;
};

}  // namespace

namespace {

std::string number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream out;
  out.precision(6);
  out << v;
  return out.str();
}

std::string json_number(double v) { return std::isnan(v) ? "null" : number(v); }

}  // namespace

std::string metrics_csv(const std::vector<EpochMetrics>& rows, const std::vector<std::string>& labels) {
  std::ostringstream out;
  out << "epoch,step,lr,train_loss,test_loss,test_accuracy,test_micro_f1,test_macro_f1,test_macro_auroc,"
         "epoch_seconds,images_per_second";
  for (const std::string& label : labels) out << ",f1_" << label;
  out << "\n";
  for (const EpochMetrics& r : rows) {
    out << r.epoch << "," << r.step << "," << number(r.lr) << "," << number(r.train_loss) << "," << number(r.test_loss)
        << "," << number(r.accuracy) << "," << number(r.micro_f1) << "," << number(r.macro_f1) << ","
        << number(r.macro_auroc) << "," << number(r.seconds) << "," << number(r.images_per_second);
    for (size_t k = 0; k < labels.size(); ++k) out << "," << (k < r.class_f1.size() ? number(r.class_f1[k]) : "");
    out << "\n";
  }
  return out.str();
}

std::string metrics_json(const std::vector<EpochMetrics>& rows, const std::vector<std::string>& labels,
                      const std::string& model) {
  std::ostringstream out;
  out << "{\"model\": \"" << model << "\", \"epochs\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const EpochMetrics& r = rows[i];
    out << (i ? ",\n  " : "\n  ") << "{\"epoch\": " << r.epoch << ", \"step\": " << r.step << ", \"lr\": " << json_number(r.lr)
        << ", \"train_loss\": " << json_number(r.train_loss) << ", \"test_loss\": " << json_number(r.test_loss)
        << ", \"test_accuracy\": " << json_number(r.accuracy) << ", \"test_micro_f1\": " << json_number(r.micro_f1)
        << ", \"test_macro_f1\": " << json_number(r.macro_f1) << ", \"test_macro_auroc\": " << json_number(r.macro_auroc)
        << ", \"epoch_seconds\": " << json_number(r.seconds)
        << ", \"images_per_second\": " << json_number(r.images_per_second) << ", \"test_f1\": {";
    for (size_t k = 0; k < labels.size() && k < r.class_f1.size(); ++k) {
      out << (k ? ", " : "") << "\"" << labels[k] << "\": " << json_number(r.class_f1[k]);
    }
    out << "}}";
  }
  out << "\n]}\n";
  return out.str();
}

std::vector<EpochMetrics> read_metrics_csv(const std::string& path, int64_t last_epoch, size_t labels) {
  std::vector<EpochMetrics> rows;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return rows;  // header
  while (std::getline(in, line)) {
    std::vector<double> v;
    std::stringstream cells(line);
    std::string cell;
    while (std::getline(cells, cell, ',')) v.push_back(cell.empty() ? NAN : std::atof(cell.c_str()));
    while (v.size() < 11 + labels) v.push_back(NAN);
    EpochMetrics r;
    r.epoch = static_cast<int64_t>(v[0]);
    if (r.epoch > last_epoch) break;
    r.step = static_cast<int64_t>(v[1]);
    r.lr = v[2], r.train_loss = v[3], r.test_loss = v[4], r.accuracy = v[5], r.micro_f1 = v[6], r.macro_f1 = v[7];
    r.macro_auroc = v[8], r.seconds = v[9], r.images_per_second = v[10];
    r.class_f1.assign(v.begin() + 11, v.begin() + 11 + static_cast<int64_t>(labels));
    rows.push_back(r);
  }
  return rows;
}

std::shared_ptr<Dataset> first_examples(std::shared_ptr<Dataset> dataset, int64_t n) {
  LOUPE_CHECK(dataset != nullptr && n >= 0, "first_examples: needs a dataset and n >= 0, got ", n);
  return std::make_shared<PrefixDataset>(std::move(dataset), n);
}

DataSplit open_split(const DataSpec& spec, const std::string& split) {
  DataSplit out;
  if (spec.source == "fashion-mnist") {
    out.dataset = fashion_mnist(spec.fashion_mnist_dir, split);
    out.label_names = {"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"};
    return out;
  }
  if (ends_with(spec.source, ".csv")) {
    LOUPE_CHECK(!spec.label_columns.empty(), "data: a CSV source needs --label-columns");
    CsvImageOptions options;
    options.image_dir = spec.image_dir;
    if (options.image_dir.empty()) {
      // The CSV's folder, or its images/ subfolder (the chest X-ray layout).
      const std::string folder = folder_of(spec.source);
      options.image_dir = is_directory(folder + "/images") ? folder + "/images" : folder;
    }
    options.label_columns = spec.label_columns;
    if (!split.empty() && !spec.split_column.empty()) options.filters.emplace_back(spec.split_column, split);
    for (const auto& filter : spec.filters) options.filters.push_back(filter);
    options.on_bad_file = spec.on_bad_file;
    out.dataset = std::make_shared<CsvImageDataset>(spec.source, options);
    out.label_names = spec.label_columns;
    return out;
  }
  LOUPE_CHECK(is_directory(spec.source), "data: '", spec.source,
              "' is neither fashion-mnist, a .csv file nor a folder of class folders");
  LOUPE_CHECK(spec.filters.empty(), "data: row filters apply only to a CSV source");
  const std::string root = split.empty() ? spec.source : spec.source + "/" + split;
  LOUPE_CHECK(is_directory(root), "data: '", spec.source, "' has no '", split, "' folder (expected <folder>/", split,
              "/<class>/<image>)");
  ImageFolderOptions options;
  options.on_bad_file = spec.on_bad_file;
  auto dataset = std::make_shared<ImageFolderDataset>(root, options);
  out.label_names = dataset->classes();
  out.dataset = dataset;
  return out;
}

std::pair<double, double> default_normalisation(const DataSpec& spec) {
  if (spec.source == "fashion-mnist") return {0.2860, 0.3530};
  return {0.5, 0.25};
}

Compose image_transform(const ModelInfo& info) {
  const int64_t size = info.image_size;
  const std::vector<double> mean = info.mean, std = info.std;
  const bool rgb = info.in_channels == 3;
  return Compose({[](const Tensor& image, Generator&) { return to_grey(image); },
                  [size](const Tensor& image, Generator&) {
                    // An image already at the size (Fashion-MNIST at 28) is left untouched.
                    if (image.size(1) == size && image.size(2) == size) return image;
                    return resize_pad(image, size);
                  },
                  [mean, std](const Tensor& image, Generator&) { return normalize(image, mean, std); },
                  [rgb](const Tensor& image, Generator&) { return rgb ? to_rgb(image) : image; }});
}

}  // namespace loupe::nn
