// The chest X-ray study's orchestration: split, train, evaluate, explain, profile, report.
// See study.hpp.
#include "study/study.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "explain/activation_profiles.hpp"
#include "nn/data/csv.hpp"
#include "nn/metrics/ensemble.hpp"
#include "nn/training.hpp"
#include "report/files.hpp"
#include "report/html.hpp"
#include "study/explain_models.hpp"
#include "study/models.hpp"
#include "study/report_page.hpp"
#include "study/split.hpp"
#include "tensor/error.hpp"
#include "tensor/io/json.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/ops.hpp"

namespace loupe::study {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kLabels = {"covid19", "pneumonia", "no_finding"};
const char* kGroups = "covid19,pneumonia,pneumonia-covid19,no_finding";

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Nine significant digits: state files read back on resume round-trip a float exactly.
std::string number(double v) { return report::format_number(v, 9); }

bool is_inception(const std::string& model) { return model == "inception_v3" || model == "inception_resnet_v2"; }

std::string methods_text(const explain::ReportOptions& o) {
  std::string text;
  for (explain::MethodKind k : o.methods) text += (text.empty() ? "" : ",") + explain::method_info(k).name;
  return text;
}

// The options that shape the results, one "key=value" a line.
std::string settings_text(const StudyOptions& o) {
  std::ostringstream s;
  std::string models;
  for (const std::string& m : o.models) models += (models.empty() ? "" : ",") + m;
  s << "data=" << fs::absolute(o.data).lexically_normal().string() << "\nmodels=" << models
    << "\nimage_size=" << o.image_size << "\ninception_size=" << o.inception_size << "\nwidth=" << o.width
    << "\nepochs=" << o.train.epochs << "\nbatch_size=" << o.train.batch_size << "\nlr=" << number(o.train.lr)
    << "\nweight_decay=" << number(o.train.weight_decay) << "\nseed=" << o.train.seed
    << "\nval_fraction=" << number(o.val_fraction) << "\nsplit_seed=" << o.split_seed
    << "\nlimit_train=" << o.limit_train << "\nlimit_eval=" << o.limit_eval << "\nexplain_images=" << o.explain_images
    << "\nmethods=" << methods_text(o.explain) << "\nig_steps=" << o.explain.steps << "\nwindow=" << o.explain.window
    << "\nstride=" << o.explain.stride << "\noutput=" << (o.explain.output ? static_cast<int>(*o.explain.output) : -1) << "\nbootstrap=" << o.bootstrap << "\nprofile_top=" << o.profile_top << "\n";
  return s.str();
}

void check_settings(const StudyOptions& o) {
  const std::string path = o.out + "/settings.txt", now = settings_text(o);
  if (fs::is_regular_file(path)) {
    std::ifstream in(path);
    std::stringstream old;
    old << in.rdbuf();
    if (old.str() == now) return;
    std::map<std::string, std::string> a, b;
    auto parse = [](const std::string& text, std::map<std::string, std::string>& out) {
      std::stringstream lines(text);
      std::string line;
      while (std::getline(lines, line))
        if (const size_t eq = line.find('='); eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    };
    parse(old.str(), a);
    parse(now, b);
    std::string differences;
    for (const auto& [key, value] : b)
      if (a[key] != value) differences += (differences.empty() ? "" : "; ") + key + ": '" + a[key] + "' in the run, '" + value + "' now";
    throw Error("study: the run folder '" + o.out + "' was started with other settings (" + differences +
                "); give the same options to continue it, or another --out");
  }
  report::write_text_atomic(path, now);
}

std::map<std::string, double> read_times(const std::string& path) {
  std::map<std::string, double> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (const size_t eq = line.find('='); eq != std::string::npos) out[line.substr(0, eq)] = std::atof(line.substr(eq + 1).c_str());
  return out;
}

void write_time(const std::string& path, const std::string& key, double seconds) {
  std::map<std::string, double> times = read_times(path);
  times[key] = seconds;
  std::string text;
  for (const auto& [k, v] : times) text += k + "=" + number(v) + "\n";
  report::write_text_atomic(path, text);
}

struct SplitData {
  nn::DataSpec spec;
  std::shared_ptr<nn::Dataset> train, val, test;
  std::vector<int64_t> adult_test_rows;   // rows of the test set with population == adult
  std::vector<ExplainImage> explain;       // the test images every model explains
};

// n indices spread evenly over [0, size) (all of them when n is 0 or at least size): a limited
// run still sees every class, where the first n rows of the file would be one source only.
std::vector<int64_t> spread_indices(int64_t size, int64_t n) {
  std::vector<int64_t> out;
  const int64_t m = n > 0 && n < size ? n : size;
  for (int64_t i = 0; i < m; ++i) out.push_back(i * size / m);
  return out;
}

// A view of some examples of a dataset, by index.
class IndexedDataset : public nn::Dataset {
 public:
  IndexedDataset(std::shared_ptr<nn::Dataset> base, std::vector<int64_t> indices)
      : base_(std::move(base)), indices_(std::move(indices)) {}
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  nn::Example get(int64_t index) const override {
    check_index(index, "study subset");
    return base_->get(indices_[static_cast<size_t>(index)]);
  }
  std::string describe(int64_t index) const override { return base_->describe(indices_[static_cast<size_t>(index)]); }
  nn::OnBadFile on_bad_file() const override { return base_->on_bad_file(); }

 private:
  std::shared_ptr<nn::Dataset> base_;
  std::vector<int64_t> indices_;
};

std::shared_ptr<nn::Dataset> limited(std::shared_ptr<nn::Dataset> d, int64_t n) {
  if (n <= 0 || n >= d->size()) return d;
  return std::make_shared<IndexedDataset>(d, spread_indices(d->size(), n));
}

SplitData prepare_split(const StudyOptions& o, const std::function<void(const std::string&)>& log) {
  const std::string split_path = o.out + "/split.csv";
  const nn::CsvTable source = nn::read_csv(o.data);
  if (!fs::is_regular_file(split_path)) {
    SplitOptions so;
    so.fraction = o.val_fraction;
    so.seed = o.split_seed;
    SplitCounts c;
    const nn::CsvTable table = carve_validation(source, so, &c);
    report::write_text_atomic(split_path, csv_text(table));
    log("split: " + std::to_string(c.train) + " train (" + std::to_string(c.train_patients) + " patients), " +
        std::to_string(c.val) + " validation (" + std::to_string(c.val_patients) + "), " + std::to_string(c.test) +
        " test (" + std::to_string(c.test_patients) + ") -> " + split_path);
  }
  SplitData d;
  d.spec.source = split_path;
  const fs::path folder = fs::path(o.data).parent_path();
  d.spec.image_dir = fs::is_directory(folder / "images") ? (folder / "images").string() : folder.string();
  if (d.spec.image_dir.empty()) d.spec.image_dir = ".";
  d.spec.label_columns = kLabels;
  d.spec.split_column = "study_split";
  d.train = limited(nn::open_split(d.spec, "train").dataset, o.limit_train);
  d.val = limited(nn::open_split(d.spec, "val").dataset, o.limit_eval);
  d.test = limited(nn::open_split(d.spec, "test").dataset, o.limit_eval);
  LOUPE_CHECK(d.train->size() > 0 && d.val->size() > 0 && d.test->size() > 0, "study: a split is empty (train ",
              d.train->size(), ", validation ", d.val->size(), ", test ", d.test->size(), ")");

  // The test rows in the data set's order (CsvImageDataset keeps the file's order).
  const nn::CsvTable table = nn::read_csv(split_path);
  const size_t split = table.column("study_split"), population = table.column("population"),
               file = table.column("file"), covid = table.column("covid19"), pneumonia = table.column("pneumonia");
  std::vector<const std::vector<std::string>*> test_rows;
  for (const auto& r : table.rows)
    if (r[split] == "test") test_rows.push_back(&r);
  std::vector<ExplainImage> candidates[3];
  int64_t row = 0;
  for (int64_t index : spread_indices(static_cast<int64_t>(test_rows.size()), o.limit_eval)) {
    const std::vector<std::string>& r = *test_rows[static_cast<size_t>(index)];
    if (r[population] == "adult") d.adult_test_rows.push_back(row);
    const int group = r[covid] == "1" ? 0 : r[pneumonia] == "1" ? 1 : 2;
    ExplainImage image;
    image.path = d.spec.image_dir + "/" + r[file];
    image.name = fs::path(r[file]).stem().string();
    image.group = confusion_rows()[static_cast<size_t>(group)];
    image.target = kLabels[static_cast<size_t>(group)];
    image.population = r[population];
    candidates[group].push_back(image);
    ++row;
  }
  // The explained images: the classes in turn (COVID-19, other pneumonia, no finding), each in a
  // seeded hash order of its files, until explain_images are taken.
  for (auto& list : candidates) {
    std::sort(list.begin(), list.end(), [&](const ExplainImage& a, const ExplainImage& b) {
      return fnv1a(std::to_string(o.split_seed) + ":" + a.name) < fnv1a(std::to_string(o.split_seed) + ":" + b.name);
    });
  }
  for (size_t i = 0; static_cast<int64_t>(d.explain.size()) < o.explain_images; ++i) {
    bool any = false;
    for (auto& list : candidates) {
      if (i < list.size() && static_cast<int64_t>(d.explain.size()) < o.explain_images) {
        d.explain.push_back(list[i]);
        any = true;
      }
    }
    if (!any) break;
  }
  return d;
}

nn::ModelInfo model_info(const StudyOptions& o, const std::string& model) {
  nn::ModelInfo info;
  info.model = model;
  info.num_classes = static_cast<int64_t>(kLabels.size());
  info.in_channels = 3;
  info.image_size = is_inception(model) ? o.inception_size : o.image_size;
  info.labels = kLabels;
  info.multilabel = true;
  info.mean = {0.5};
  info.std = {0.25};
  if (model == "resnet18" || model == "resnet34") info.width = o.width;
  return info;
}

struct Probabilities {
  Tensor val, val_labels, test, test_labels;
};

Probabilities evaluate_model(nn::Module& model, const nn::ModelInfo& info, const SplitData& d, const std::string& folder,
                             const TrainSettings& t) {
  Probabilities p;
  const std::string files[4] = {"val_probabilities.npy", "val_labels.npy", "test_probabilities.npy", "test_labels.npy"};
  bool have = true;
  for (const std::string& f : files) have = have && fs::is_regular_file(folder + "/" + f);
  if (have) {
    return {load_npy(folder + "/" + files[0]), load_npy(folder + "/" + files[1]), load_npy(folder + "/" + files[2]),
            load_npy(folder + "/" + files[3])};
  }
  nn::LoaderOptions lo;
  lo.batch_size = std::max<int64_t>(t.batch_size, 32);
  lo.num_workers = t.workers;
  nn::DataLoader val_loader(d.val, lo, nn::image_transform(info));
  nn::DataLoader test_loader(d.test, lo, nn::image_transform(info));
  const nn::Predictions v = nn::predict(model, val_loader, true);
  const nn::Predictions s = nn::predict(model, test_loader, true);
  p = {v.probabilities, v.labels, s.probabilities, s.labels};
  // Labels first, probabilities last: the probabilities' presence marks the stage done... all four
  // are checked above, so the order only matters for readers.
  save_npy(folder + "/" + files[1], p.val_labels);
  save_npy(folder + "/" + files[3], p.test_labels);
  save_npy(folder + "/" + files[0], p.val);
  save_npy(folder + "/" + files[2], p.test);
  return p;
}

void profile_model(nn::Module& model, const nn::ModelInfo& info, const SplitData& d, const StudyOptions& o,
                   const std::string& folder) {
  const std::vector<explain::ImageGroup> groups = explain::parse_groups(kGroups, info.labels, true);
  std::vector<std::string> names;
  for (const auto& g : groups) names.push_back(g.name);
  explain::ProfileAccumulator accumulator(model, {profile_layer(info.model)}, names);
  nn::LoaderOptions lo;
  lo.batch_size = 32;
  lo.num_workers = o.train.workers;
  nn::DataLoader loader(d.test, lo, nn::image_transform(info));
  loader.start_epoch(0);
  while (auto batch = loader.next())
    accumulator.add(batch->images, explain::group_membership(groups, batch->labels, info.num_classes));
  const explain::ActivationProfiles profiles = accumulator.result(o.profile_top);
  explain::write_profiles(profiles, folder, "loupe study: activation profiles of " + info.model,
                          info.model + " (best validation epoch), layer " + profile_layer(info.model) +
                              ", the study's test split");
}

}  // namespace

StudyResult run_study(const StudyOptions& o, const std::function<bool(int64_t)>& should_stop,
                      const std::function<void(const std::string&)>& log) {
  LOUPE_CHECK(!o.out.empty(), "study: --out DIR is required");
  LOUPE_CHECK(!o.models.empty(), "study: no models");
  for (const std::string& m : o.models) profile_layer(m);  // an unknown model fails before any work
  fs::create_directories(o.out);
  check_settings(o);
  StudyResult result;
  const SplitData d = prepare_split(o, log);
  result.train_images = d.train->size();
  result.val_images = d.val->size();
  result.test_images = d.test->size();
  result.adult_test_images = static_cast<int64_t>(d.adult_test_rows.size());

  // 1. Training, one model after the other.
  for (const std::string& name : o.models) {
    const nn::ModelInfo info = model_info(o, name);
    const std::string folder = o.out + "/models/" + name;
    ModelTimes times;
    times.model = name;
    times.image_size = info.image_size;
    if (!read_trained_marker(folder, &times.trained)) {
      log("training " + name + " at " + std::to_string(info.image_size) + " px");
      const TrainOutcome outcome = train_on_validation(info, d.train, d.val, o.train, folder, should_stop, log);
      if (outcome.stopped) {
        result.stopped = true;
        log("stopped while training " + name + "; run the same command again to continue");
        return result;
      }
      times.trained = outcome.model;
    }
    result.models.push_back(times);
  }

  // 2. Evaluation, explanations and profiles of each best checkpoint.
  std::vector<Probabilities> probabilities;
  std::vector<ModelExplanations> explanations;
  for (ModelTimes& times : result.models) {
    const std::string folder = o.out + "/models/" + times.model;
    nn::ModelInfo info;
    std::shared_ptr<nn::Module> model = load_study_model(folder + "/best.safetensors", &info);
    model->to(o.train.device);
    model->eval();
    times.parameters = model->parameter_count();
    const std::string times_path = folder + "/times.txt";
    auto start = std::chrono::steady_clock::now();
    const bool evaluated = fs::is_regular_file(folder + "/test_probabilities.npy");
    probabilities.push_back(evaluate_model(*model, info, d, folder, o.train));
    if (!evaluated) write_time(times_path, "eval_seconds", since(start));

    const std::string explain_folder = o.out + "/explain/" + times.model;
    const bool explained = fs::is_regular_file(explain_folder + "/attributions.tsv");
    if (!explained) log("explaining " + std::to_string(d.explain.size()) + " test images with " + times.model);
    start = std::chrono::steady_clock::now();
    explain::ReportOptions eo = o.explain;
    eo.checkpoint = folder + "/best.safetensors";
    explanations.push_back(explain_model(*model, info, d.explain, eo, explain_folder));
    if (!explained) write_time(times_path, "explain_seconds", since(start));

    const std::string profile_folder = o.out + "/profiles/" + times.model;
    if (!fs::is_regular_file(profile_folder + "/profiles.json")) {
      log("activation profiles of " + times.model);
      start = std::chrono::steady_clock::now();
      profile_model(*model, info, d, o, profile_folder);
      write_time(times_path, "profile_seconds", since(start));
    }
    const auto t = read_times(times_path);
    times.eval_seconds = t.count("eval_seconds") ? t.at("eval_seconds") : NAN;
    times.explain_seconds = t.count("explain_seconds") ? t.at("explain_seconds") : NAN;
    times.profile_seconds = t.count("profile_seconds") ? t.at("profile_seconds") : NAN;
  }

  // 3. Metrics of the models and the two ensembles (thresholds from validation only).
  BootstrapOptions bo;
  bo.resamples = o.bootstrap;
  bo.seed = o.split_seed;
  std::vector<Tensor> val_decisions, test_decisions, val_probs, test_probs;
  for (size_t i = 0; i < result.models.size(); ++i) {
    const Probabilities& p = probabilities[i];
    SystemRow row;
    row.name = result.models[i].model;
    row.thresholds = choose_thresholds(p.val, p.val_labels);
    const Tensor decisions = decide(p.test, row.thresholds);
    row.test = system_metrics(p.test, decisions, p.test_labels, bo);
    if (!d.adult_test_rows.empty()) row.adult = system_metrics(p.test, decisions, p.test_labels, bo, d.adult_test_rows);
    result.systems.push_back(row);
    val_decisions.push_back(decide(p.val, row.thresholds));
    test_decisions.push_back(decisions);
    val_probs.push_back(p.val);
    test_probs.push_back(p.test);
  }
  if (result.models.size() >= 2) {
    const Tensor& labels = probabilities[0].test_labels;
    SystemRow mean;
    mean.name = "ensemble: probability mean";
    mean.ensemble = true;
    const Tensor val_mean = nn::average_probabilities(val_probs), test_mean = nn::average_probabilities(test_probs);
    mean.thresholds = choose_thresholds(val_mean, probabilities[0].val_labels);
    const Tensor mean_decisions = decide(test_mean, mean.thresholds);
    mean.test = system_metrics(test_mean, mean_decisions, labels, bo);
    if (!d.adult_test_rows.empty()) mean.adult = system_metrics(test_mean, mean_decisions, labels, bo, d.adult_test_rows);
    result.systems.push_back(mean);

    // Each model votes with its own validation thresholds; a label is positive when more than half
    // vote for it (nn::majority_vote on the 0/1 votes). Its AUROC ranks the share of votes.
    SystemRow vote;
    vote.name = "ensemble: majority vote";
    vote.ensemble = true;
    const Tensor votes = nn::majority_vote(test_decisions, 0.5);
    const Tensor share = nn::average_probabilities(test_decisions);
    vote.test = system_metrics(share, votes, labels, bo);
    if (!d.adult_test_rows.empty()) vote.adult = system_metrics(share, votes, labels, bo, d.adult_test_rows);
    result.systems.push_back(vote);
  }

  // 4. The report.
  ReportData data{o, result, d.explain, explanations, kGroups};
  result.report_path = o.out + "/report.html";
  result.summary_path = o.out + "/summary.json";
  report::write_text_atomic(result.report_path, study_report_html(data));
  report::write_text_atomic(result.summary_path, summary_json(result, o));
  return result;
}

std::string summary_json(const StudyResult& r, const StudyOptions& o) {
  std::ostringstream s;
  auto num = [](double v) { return std::isfinite(v) ? number(v) : std::string("null"); };
  auto interval = [&](const Interval& i) {
    return "{\"value\": " + num(i.value) + ", \"low\": " + num(i.low) + ", \"high\": " + num(i.high) + "}";
  };
  auto metrics = [&](const SystemMetrics& m) {
    std::string text = "{\"images\": " + std::to_string(m.images) + ", \"micro_f1\": " + interval(m.micro_f1) +
                       ", \"macro_f1\": " + interval(m.macro_f1) + ", \"macro_auroc\": " + interval(m.macro_auroc) +
                       ", \"subset_accuracy\": " + interval(m.subset_accuracy) + ", \"f1\": {";
    for (size_t j = 0; j < m.f1.size(); ++j) text += (j ? ", " : "") + json::quote(kLabels[j]) + ": " + interval(m.f1[j]);
    text += "}, \"auroc\": {";
    for (size_t j = 0; j < m.auroc.size(); ++j)
      text += (j ? ", " : "") + json::quote(kLabels[j]) + ": " + interval(m.auroc[j]);
    return text + "}}";
  };
  s << "{\"stopped\": " << (r.stopped ? "true" : "false") << ", \"run\": " << json::quote(o.out)
    << ", \"report\": " << json::quote(r.report_path) << ", \"images\": {\"train\": " << r.train_images
    << ", \"validation\": " << r.val_images << ", \"test\": " << r.test_images << ", \"adult_test\": " << r.adult_test_images
    << "}, \"models\": [";
  for (size_t i = 0; i < r.models.size(); ++i) {
    const ModelTimes& m = r.models[i];
    s << (i ? ", " : "") << "{\"model\": " << json::quote(m.model) << ", \"image_size\": " << m.image_size
      << ", \"parameters\": " << m.parameters << ", \"best_epoch\": " << m.trained.best_epoch
      << ", \"best_val_micro_f1\": " << num(m.trained.best_val_micro_f1) << ", \"train_seconds\": " << num(m.trained.seconds)
      << ", \"eval_seconds\": " << num(m.eval_seconds) << ", \"explain_seconds\": " << num(m.explain_seconds)
      << ", \"profile_seconds\": " << num(m.profile_seconds) << "}";
  }
  s << "], \"systems\": [";
  for (size_t i = 0; i < r.systems.size(); ++i) {
    const SystemRow& row = r.systems[i];
    s << (i ? ", " : "") << "{\"name\": " << json::quote(row.name) << ", \"thresholds\": [";
    for (size_t j = 0; j < row.thresholds.size(); ++j) s << (j ? ", " : "") << num(row.thresholds[j]);
    s << "], \"test\": " << metrics(row.test);
    if (row.adult.images > 0) s << ", \"adult_test\": " << metrics(row.adult);
    s << "}";
  }
  s << "]}\n";
  return s.str();
}

}  // namespace loupe::study
