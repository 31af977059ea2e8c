// `loupe evaluate`: metrics of one or more checkpoints on a data split: the metrics table, the
// confusion matrix (single-label) or per-label counts (multilabel), and with several checkpoints
// their ensembles (probability averaging and majority vote). --json FILE writes all of it.
//   loupe evaluate --model runs/r18/best.safetensors,runs/d121/best.safetensors
//                  --data ../shared/data/cxr/labels.csv --where population=adult --json adult.json
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/train_common.hpp"
#include "nn/metrics/ensemble.hpp"
#include "tensor/ops.hpp"

namespace loupe::cli {

namespace {

const std::vector<OptionSpec> kEvaluateOptions = {
    {"model", "CKPT[,CKPT]", "", "checkpoint(s) written by loupe train; several = also their ensemble"},
    {"data", "SRC", "", "fashion-mnist, a folder with <split>/<class> folders, or a CSV"},
    {"fashion-mnist-dir", "DIR", "/usr/share/datasets/fashion-mnist", "folder of the Fashion-MNIST .gz files"},
    {"image-dir", "DIR", "", "CSV: folder the file column is relative to"},
    {"label-columns", "A,B,..", "", "CSV: label columns (default: the checkpoint's labels)"},
    {"split-column", "NAME", "split", "CSV: column naming the split"},
    {"split", "NAME", "test", "which split to evaluate (empty = every row / the folder itself)"},
    {"where", "COL=VAL,..", "", "CSV: keep only rows with these values, e.g. population=adult"},
    {"batch-size", "N", "32", "images per forward pass"},
    {"workers", "N", "2", "data-loading threads"},
    {"threshold", "P", "0.5", "multilabel decision threshold"},
    {"device", "NAME", "cpu", "cpu, cuda or cuda:N (a GPU needs a build with the CUDA backend)"},
    {"on-bad-image", "POLICY", "stop", "stop or skip unreadable images"},
    {"json", "FILE", "", "also write the reports as JSON"},
};

std::string counts_table(const nn::MetricsReport& report) {
  std::ostringstream out;
  if (report.confusion.defined()) {
    out << "confusion matrix (rows: true class, columns: predicted)\n";
    const int64_t k = report.confusion.size(0);
    const std::vector<int64_t> cells = to_vector<int64_t>(report.confusion);
    size_t width = 8;
    for (const auto& c : report.classes) width = std::max(width, c.name.size() + 1);
    auto pad = [&](const std::string& s) { return s + std::string(width > s.size() ? width - s.size() : 1, ' '); };
    out << pad("");
    for (const auto& c : report.classes) out << pad(c.name);
    out << "\n";
    for (int64_t i = 0; i < k; ++i) {
      out << pad(report.classes[static_cast<size_t>(i)].name);
      for (int64_t j = 0; j < k; ++j) out << pad(std::to_string(cells[static_cast<size_t>(i * k + j)]));
      out << "\n";
    }
  } else {
    out << "per-label counts (threshold " << report.threshold << ")\n";
    for (const auto& c : report.classes) {
      out << "  " << c.name << ": tp " << c.counts.tp << "  fp " << c.counts.fp << "  fn " << c.counts.fn << "  tn "
          << c.counts.tn << "\n";
    }
  }
  return out.str();
}

void print_report(const std::string& title, const nn::MetricsReport& report) {
  std::cout << "== " << title << "\n" << report.table() << counts_table(report) << "\n";
}

}  // namespace

int run_evaluate(int argc, char** argv) {
  const Args args(kEvaluateOptions, argc, argv, 2);
  if (args.help()) {
    std::cout << usage("evaluate", "Metrics of checkpoints on a data split (table, confusion matrix, ensembles).",
                       kEvaluateOptions);
    return 0;
  }
  const Device device = parse_device_option(args.get("device"));
  const std::vector<std::string> paths = split_list(args.get("model"));
  LOUPE_CHECK(!paths.empty(), "evaluate: --model CKPT is required");
  const int64_t batch_size = args.get_int("batch-size");
  LOUPE_CHECK(batch_size > 0, "evaluate: --batch-size must be positive, got ", batch_size);
  const double threshold = args.get_double("threshold");

  std::vector<nn::Predictions> all;
  std::vector<nn::MetricsReport> reports;
  nn::ModelInfo first_info;
  std::ostringstream json;
  json << "{\"models\": [";
  for (size_t m = 0; m < paths.size(); ++m) {
    nn::ModelInfo info;
    std::shared_ptr<nn::Module> model = nn::load_model(paths[m], &info);
    model->to(device);
    nn::DataSpec spec = data_spec(args);
    if (spec.label_columns.empty()) spec.label_columns = info.labels;
    nn::DataSplit split = nn::open_split(spec, args.get("split"));
    LOUPE_CHECK(split.dataset->size() > 0, "evaluate: the selected split has no examples");
    LOUPE_CHECK(static_cast<int64_t>(split.label_names.size()) == info.num_classes, "evaluate: the data has ",
                split.label_names.size(), " classes / labels but '", paths[m], "' has ", info.num_classes, " outputs");
    if (m == 0) {
      first_info = info;
    } else {
      LOUPE_CHECK(info.multilabel == first_info.multilabel && info.labels == first_info.labels, "evaluate: '", paths[m],
                  "' predicts other labels than '", paths[0], "': they cannot form an ensemble");
    }
    nn::LoaderOptions o;
    o.batch_size = batch_size;
    o.num_workers = static_cast<int>(args.get_int("workers"));
    nn::DataLoader loader(split.dataset, o, nn::image_transform(info));
    nn::Predictions predictions = nn::predict(*model, loader, info.multilabel);
    nn::MetricsReport report = nn::report(predictions, info.multilabel, info.labels, threshold);
    std::ostringstream title;
    title << paths[m] << " (" << info.model << ", " << report.examples << " images, split '" << args.get("split") << "'"
          << (args.get("where").empty() ? "" : ", " + args.get("where")) << ")";
    print_report(title.str(), report);
    json << (m ? ", " : "") << "{\"checkpoint\": \"" << paths[m] << "\", \"model\": \"" << info.model
         << "\", \"loss\": " << predictions.loss << ", \"report\": " << report.json() << "}";
    all.push_back(std::move(predictions));
    reports.push_back(std::move(report));
  }
  json << "]";
  if (all.size() > 1) {
    std::vector<Tensor> probabilities;
    for (const auto& p : all) {
      LOUPE_CHECK(p.indices == all[0].indices, "evaluate: the models saw different examples");
      probabilities.push_back(p.probabilities);
    }
    nn::Predictions average = all[0], vote = all[0];
    average.probabilities = nn::average_probabilities(probabilities);
    if (first_info.multilabel) {
      vote.probabilities = nn::majority_vote(probabilities, threshold);
    } else {
      // One-hot rows of the voted classes, so the vote goes through the same report.
      vote.probabilities = ops::to_dtype(
          ops::one_hot(nn::majority_vote_classes(probabilities, first_info.num_classes), first_info.num_classes), DType::f32);
    }
    const nn::MetricsReport average_report = nn::report(average, first_info.multilabel, first_info.labels, threshold);
    // A vote is already 0 / 1: any threshold in (0, 1) reads it the same.
    const nn::MetricsReport vote_report = nn::report(vote, first_info.multilabel, first_info.labels, 0.5);
    print_report("ensemble of " + std::to_string(all.size()) + " models: probability averaging", average_report);
    print_report("ensemble of " + std::to_string(all.size()) + " models: majority vote (AUROC of the votes)", vote_report);
    json << ", \"ensemble_average\": " << average_report.json() << ", \"ensemble_vote\": " << vote_report.json();
  }
  json << "}\n";
  if (!args.get("json").empty()) write_text_atomic(args.get("json"), json.str());
  return 0;
}

}  // namespace loupe::cli
