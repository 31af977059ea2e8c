// One model of the chest X-ray study, trained with the epoch chosen on validation. See train_model.hpp.
#include "study/train_model.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "nn/training.hpp"
#include "report/files.hpp"
#include "report/html.hpp"
#include "study/models.hpp"
#include "tensor/error.hpp"

namespace loupe::study {

namespace fs = std::filesystem;

namespace {

// Nine significant digits: state files read back on resume round-trip a float exactly.
std::string number(double v) { return report::format_number(v, 9); }

std::map<std::string, std::string> read_key_values(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

struct EpochRow {
  int64_t epoch = 0;
  double train_loss = 0, val_loss = 0, micro_f1 = 0, macro_f1 = 0, macro_auroc = 0, seconds = 0;
};

std::string rows_csv(const std::vector<EpochRow>& rows) {
  std::string text = "epoch,train_loss,val_loss,val_micro_f1,val_macro_f1,val_macro_auroc,epoch_seconds\n";
  for (const EpochRow& r : rows) {
    text += std::to_string(r.epoch) + "," + number(r.train_loss) + "," + number(r.val_loss) + "," + number(r.micro_f1) +
            "," + number(r.macro_f1) + "," + number(r.macro_auroc) + "," + number(r.seconds) + "\n";
  }
  return text;
}

// The rows of validation.csv up to epoch `last` (a resumed run goes on from there).
std::vector<EpochRow> read_rows(const std::string& path, int64_t last) {
  std::vector<EpochRow> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    EpochRow r;
    if (std::sscanf(line.c_str(), "%lld,%lf,%lf,%lf,%lf,%lf,%lf", reinterpret_cast<long long*>(&r.epoch), &r.train_loss,
                    &r.val_loss, &r.micro_f1, &r.macro_f1, &r.macro_auroc, &r.seconds) == 7 &&
        r.epoch <= last)
      rows.push_back(r);
  }
  return rows;
}

}  // namespace

bool read_trained_marker(const std::string& folder, TrainedModel* out) {
  const std::string path = folder + "/trained";
  if (!fs::is_regular_file(path)) return false;
  const auto kv = read_key_values(path);
  LOUPE_CHECK(kv.count("best_epoch") && kv.count("seconds"), "study: the marker '", path,
              "' is incomplete; delete it to train this model again");
  out->best_epoch = std::atoll(kv.at("best_epoch").c_str());
  out->best_val_micro_f1 = kv.count("best_val_micro_f1") ? std::atof(kv.at("best_val_micro_f1").c_str()) : NAN;
  out->epochs = kv.count("epochs") ? std::atoll(kv.at("epochs").c_str()) : 0;
  out->seconds = std::atof(kv.at("seconds").c_str());
  return true;
}

TrainOutcome train_on_validation(const nn::ModelInfo& info, std::shared_ptr<nn::Dataset> train,
                                 std::shared_ptr<nn::Dataset> validation, const TrainSettings& settings,
                                 const std::string& folder, const std::function<bool(int64_t step)>& should_stop,
                                 const std::function<void(const std::string&)>& log) {
  TrainOutcome outcome;
  fs::create_directories(folder);
  Generator generator(settings.seed);
  std::shared_ptr<nn::Module> model = build_study_model(info, &generator);
  model->to(settings.device);
  nn::OptimizerConfig optimizer_config;
  optimizer_config.name = "adam";
  optimizer_config.lr = settings.lr;
  optimizer_config.weight_decay = settings.weight_decay;
  std::shared_ptr<nn::Optimizer> optimizer = nn::make_optimizer(optimizer_config, model->parameters());

  nn::LoaderOptions loader_options;
  loader_options.batch_size = settings.batch_size;
  loader_options.shuffle = true;
  loader_options.seed = settings.seed;
  loader_options.num_workers = settings.workers;
  auto train_loader = std::make_shared<nn::DataLoader>(train, loader_options, nn::image_transform(info));
  LOUPE_CHECK(train_loader->batches_per_epoch() > 0, "study: the training split is empty");
  nn::LoaderOptions eval_options;
  eval_options.batch_size = std::max<int64_t>(settings.batch_size, 32);
  eval_options.num_workers = settings.workers;
  nn::DataLoader val_loader(validation, eval_options, nn::image_transform(info));

  nn::TrainOptions train_options;
  train_options.multilabel = true;
  train_options.schedule.base_lr = settings.lr;  // constant rate, as the study's preset
  nn::Trainer trainer(model, optimizer, train_loader, train_options, &generator);

  const std::string last_path = folder + "/last.safetensors", best_path = folder + "/best.safetensors";
  double best = -INFINITY;
  int64_t best_epoch = 0;
  std::vector<EpochRow> rows;
  if (fs::is_regular_file(last_path)) {
    const nn::Checkpoint checkpoint = nn::read_checkpoint(last_path);
    LOUPE_CHECK(checkpoint.info.model == info.model && checkpoint.info.image_size == info.image_size, "study: '",
                last_path, "' holds a ", checkpoint.info.model, " at ", checkpoint.info.image_size,
                " px, not the ", info.model, " at ", info.image_size, " px of these settings");
    trainer.load_checkpoint(checkpoint, last_path);
    best = std::atof(checkpoint.metadata.at("study.best_val_micro_f1").c_str());
    best_epoch = std::atoll(checkpoint.metadata.at("study.best_epoch").c_str());
    rows = read_rows(folder + "/validation.csv", trainer.epoch());
    outcome.model.resumed = true;
    log("resumed " + info.model + " from " + last_path + " at epoch " + std::to_string(trainer.epoch() + 1) +
        ", step " + std::to_string(trainer.global_step()));
  }
  auto metadata = [&] {
    return std::map<std::string, std::string>{{"study.best_val_micro_f1", number(best)},
                                              {"study.best_epoch", std::to_string(best_epoch)},
                                              {"study.aux_logits", uses_aux_head(info) ? "1" : "0"}};
  };
  double seconds = 0.0;
  for (const EpochRow& r : rows) seconds += r.seconds;
  while (trainer.epoch() < settings.epochs) {
    const int64_t epoch = trainer.epoch();
    nn::EpochStats stats;
    do {  // one step per call, so that a stop request is seen after every step
      if (should_stop && should_stop(trainer.global_step())) {
        trainer.save_checkpoint(last_path, info, metadata());
        outcome.stopped = true;
        return outcome;
      }
      stats = trainer.train_epoch({}, 1);
    } while (!trainer.epoch_finished());
    const nn::Predictions predictions = nn::predict(*model, val_loader, true);
    const nn::MetricsReport report = nn::report(predictions, true, info.labels, 0.5);
    EpochRow row{epoch + 1, stats.loss, predictions.loss, report.micro_f1, report.macro_f1, report.macro_auroc,
                 stats.seconds};
    rows.push_back(row);
    seconds += stats.seconds;
    const bool improved = report.micro_f1 > best;
    if (improved) {
      best = report.micro_f1;
      best_epoch = epoch + 1;
    }
    trainer.save_checkpoint(last_path, info, metadata());
    if (improved) trainer.save_checkpoint(best_path, info, metadata());
    report::write_text_atomic(folder + "/validation.csv", rows_csv(rows));
    char line[240];
    std::snprintf(line, sizeof line, "%s epoch %lld/%lld  loss %.4f  val loss %.4f  val micro-F1 %.3f  %.0f s%s",
                  info.model.c_str(), static_cast<long long>(epoch + 1), static_cast<long long>(settings.epochs),
                  stats.loss, predictions.loss, report.micro_f1, stats.seconds, improved ? "  (best)" : "");
    log(line);
  }
  outcome.model.best_epoch = best_epoch;
  outcome.model.best_val_micro_f1 = best;
  outcome.model.epochs = settings.epochs;
  outcome.model.seconds = seconds;
  report::write_text_atomic(folder + "/trained", "best_epoch=" + std::to_string(best_epoch) +
                                                    "\nbest_val_micro_f1=" + number(best) + "\nepochs=" +
                                                    std::to_string(settings.epochs) + "\nseconds=" + number(seconds) + "\n");
  return outcome;
}

}  // namespace loupe::study
