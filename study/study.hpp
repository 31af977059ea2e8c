// The chest X-ray study end to end (`loupe study cxr`): a seeded patient-wise validation split,
// the five CNNs of the zoo trained with the epoch chosen on validation, per-label thresholds
// chosen on validation, every model and two ensembles evaluated on the test split (all images and
// adults only) with bootstrap intervals, the same test images explained by every method of every
// model, the share of attribution outside the lung box, neuron activation profiles per group, and
// one HTML report. Everything lives in one run folder:
//
//   settings.txt                 the options that shape the results (a rerun must give the same)
//   split.csv                    labels.csv plus the column study_split (train / val / test)
//   models/<model>/              last/best.safetensors, validation.csv, trained (train_model.hpp);
//                                {val,test}_probabilities.npy, {val,test}_labels.npy, times.txt
//   explain/<model>/             the attribution files of explain_to_folder + attributions.tsv
//   profiles/<model>/            profiles.json, profiles.html and the top-map PNGs
//   report.html, summary.json    rewritten at the end of every run
//
// Resuming: every stage of every model leaves its files by atomic rename, and a later run with
// the same settings skips what is there and continues an unfinished training from its last
// checkpoint. A stop request (should_stop) is honoured between training steps.
// Tests: tests/study/test_study_cli.cpp (quick mode with tiny settings, stop and resume).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "explain/report.hpp"
#include "study/metrics.hpp"
#include "study/train_model.hpp"

namespace loupe::study {

struct StudyOptions {
  std::string data;  // the data set's labels.csv (images/ beside it)
  std::string out;   // the run folder
  std::vector<std::string> models = {"resnet18", "resnet34", "densenet161", "inception_v3", "inception_resnet_v2"};
  int64_t image_size = 128;      // ResNet and DenseNet input
  int64_t inception_size = 75;   // InceptionV3 / InceptionResNetV2 input (their smallest is 75)
  int64_t width = 64;            // ResNet: channels of the first stage (smaller only for tests)
  TrainSettings train;
  double val_fraction = 0.2;
  uint64_t split_seed = 0;
  int64_t limit_train = 0;       // use only the first N training / validation / test images (0: all)
  int64_t limit_eval = 0;
  int64_t explain_images = 8;
  explain::ReportOptions explain;  // methods, IG steps, occlusion window, ...
  int64_t bootstrap = 1000;
  int64_t profile_top = 8;
  std::string command;           // the command line, shown in the report
};

struct SystemRow {
  std::string name;       // model or ensemble name
  bool ensemble = false;
  std::vector<double> thresholds;
  SystemMetrics test, adult;
};

struct ModelTimes {
  std::string model;
  int64_t image_size = 0;
  int64_t parameters = 0;
  TrainedModel trained;
  double eval_seconds = 0.0, explain_seconds = 0.0, profile_seconds = 0.0;
};

struct StudyResult {
  bool stopped = false;
  std::vector<ModelTimes> models;
  std::vector<SystemRow> systems;  // models in order, then "ensemble: probability mean", "ensemble: majority vote"
  std::string report_path, summary_path;
  int64_t train_images = 0, val_images = 0, test_images = 0, adult_test_images = 0;
};

// should_stop(global step of the model in training) is asked between training steps; log gets one
// line per event (progress is for people; the files are the results).
StudyResult run_study(const StudyOptions& options, const std::function<bool(int64_t)>& should_stop,
                      const std::function<void(const std::string&)>& log);

// The run's summary as JSON (what --json prints and summary.json holds).
std::string summary_json(const StudyResult& result, const StudyOptions& options);

}  // namespace loupe::study
